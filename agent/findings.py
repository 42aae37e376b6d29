"""Findings: what the verdicts say about each knob and each lane. Pure and deterministic.

Input is a list of `ProbeRecord`s in the order the probes finished: the change (knob ->
value), its lane and its verdict. When the same change appears more than once (a candidate and
its confirmation, or a replay), the last record wins: it is judged on more runs.

A finding is a claim about the model, so it is made only from confirmed or significant results
(seed 003's report called learning_rate "fragile" and "local optimum" from noise). The rule:

Let m be the number of judged probes: distinct changes whose last verdict is not a crash
(multi-knob changes included). The session-corrected level is lambda = session_alpha / m
(Bonferroni; session_alpha is the power report's, 5%). Each single-knob change is an
observation, and it is

- better: its verdict is `keep` -- a fresh-seed confirmation judged alone at the session's
  alpha-spending level, so P(any keep of a change that does nothing) <= session_alpha. A
  `candidate` is unconfirmed and is not evidence. A keep stands even when the target is
  underpowered: low power limits what a session can see, not the truth of what it confirmed;
- worse: not better, and Holm's procedure at level lambda over the probe's own p-values
    * "the target is not worse": p_worse (H0 delta >= 0), left out when the target is
      underpowered;
    * "guard g has not regressed": p_regress (H0 delta >= -tolerance), one per guard, left
      out for an underpowered guard;
    * "no new critical failures": critical_p;
  rejects at least one that the verdict agrees with: the target's always, a guard's when the
  verdict lists it in `regressed_guards`, the critical one when the verdict is `guard_fail`
  with at least one new critical failure per run;
  over the session this is Bonferroni over the m probes, so P(any "worse" claim about a change
  that does nothing) <= session_alpha;
- flat: everything else -- inside the noise. Crashes are not observations.

A worse observation from a guard or from critical failures is a *collapse*. A knob is then

- `untested` when every probe of it crashed;
- `fragile` when a small move (within `small_move` of the recipe value, relative; any choice
  of a categorical knob) collapsed;
- numeric knobs, per direction (up / down from the recipe value): better if a move that way
  was kept, else worse if one was worse, else flat if one was judged, else untried:
    * `mixed` when both directions are better (the recipe sits in a dip);
    * `monotone` when one direction is better and the other is not;
    * `local optimum` when both directions are worse;
    * `one-sided` when one direction is worse and the other flat or untried;
- categorical knobs (their choices come from `lanes_knobs`):
    * `better choice` when an alternative was kept;
    * `local optimum` only when the choices are known, every alternative to the recipe's was
      judged, and every one is worse;
    * `worse choice` when some alternative is worse (the others inside the noise or untried,
      which the detail names);
- `flat` when every observation is inside the noise, or `unresolved` instead when the target
  is underpowered (power.underpowered names it): then "inside the noise" says nothing.
Every detail ends with what the session resolves (the target MDE and the guard tolerances an
unchanged guard needs), so a flat reading is read against its resolution. Multi-knob changes
count for their lane (and for m) but are not attributed to a knob.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.stats import SESSION_ALPHA, PowerReport, holm
from agent.verdict import CategoryComparison, Verdict, VerdictStatus, signed

_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

LOCAL_OPTIMUM = "local optimum"
MONOTONE = "monotone"
FLAT = "flat"
FRAGILE = "fragile"
ONE_SIDED = "one-sided"
MIXED = "mixed"
BETTER_CHOICE = "better choice"
WORSE_CHOICE = "worse choice"
UNTESTED = "untested"
UNRESOLVED = "unresolved"

#: Classifications that claim something about the model (the rest say nothing was shown).
CLAIMS = frozenset(
    {LOCAL_OPTIMUM, MONOTONE, FRAGILE, ONE_SIDED, MIXED, BETTER_CHOICE, WORSE_CHOICE}
)


@dataclass(frozen=True)
class ProbeRecord:
    """One finished probe as findings see it."""

    changes: dict[str, Any]
    verdict: Verdict
    lane: str | None = None
    probe_id: str = ""


@dataclass(frozen=True)
class Observation:
    """One single-knob change and what its verdict shows."""

    value: Any
    direction: str  # "up", "down" or "choice"
    effect: str  # "better", "worse" or "flat"
    status: str
    target_delta: float | None
    ci_low: float | None
    ci_high: float | None
    worst_guard: str | None
    worst_guard_delta: float | None
    new_critical: float
    collapse: bool  # shown worse by a regressed guard or new critical failures
    relative_move: float | None  # |log(value / recipe)| for positive numbers, else None
    probe_id: str = ""
    evidence: str = ""  # why better or worse ("" when inside the noise)
    shown: tuple[str, ...] = ()  # worse by: "target", "guard", "critical"

    def describe(self, target: str) -> str:
        if self.target_delta is None:
            return f"{_fmt(self.value)}: {self.status}"
        text = (
            f"{_fmt(self.value)}: {target} {signed(self.target_delta)} "
            f"[{_num(self.ci_low)}, {_num(self.ci_high)}] {self.status}"
        )
        if self.worst_guard is not None and self.worst_guard_delta is not None:
            text += f", worst guard {self.worst_guard} {signed(self.worst_guard_delta)}"
        if self.new_critical >= 1.0:
            text += f", +{self.new_critical:.1f} critical"
        if self.evidence:
            text += f" ({self.evidence})"
        return text


@dataclass(frozen=True)
class KnobFinding:
    """The classification of one knob with the observations behind it."""

    knob: str
    lane: str | None
    recipe_value: Any
    classification: str
    detail: str
    best_value: Any = None
    best_delta: float | None = None
    observations: list[Observation] = field(default_factory=list)
    untried: list[str] = field(default_factory=list)  # directions / choices never judged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LaneSummary:
    """Per lane: probes tried, kept, and the best by target delta."""

    lane: str
    tried: int
    kept: int
    candidates: int
    guard_fails: int
    crashes: int
    best_change: dict[str, Any] | None
    best_delta: float | None
    best_status: str | None
    best_kept: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Resolution:
    """What the session can resolve, from its power report (None: not known)."""

    target: str = ""
    mde: float | None = None
    min_improvement: float | None = None
    guard_tolerance_needed: dict[str, float] = field(default_factory=dict)
    target_underpowered: bool = False
    underpowered_guards: frozenset[str] = frozenset()

    @classmethod
    def of(cls, power: PowerReport | None) -> Resolution:
        if power is None:
            return cls()
        guards = {g for reason in power.underpowered for g in _guard_names(reason)}
        guards |= {g for g, t in power.guard_tolerance_needed.items() if not math.isfinite(t)}
        target = not math.isfinite(power.mde) or any(
            r.startswith(f"target {power.target}") for r in power.underpowered
        )
        return cls(
            target=power.target,
            mde=power.mde,
            min_improvement=power.min_improvement,
            guard_tolerance_needed=dict(power.guard_tolerance_needed),
            target_underpowered=target,
            underpowered_guards=frozenset(guards),
        )

    def note(self) -> str:
        """'this session resolves facts effects >= 0.93; voice needs tolerance >= 0.42'."""
        if self.mde is None:
            return "no power estimate: what this session resolves is unknown"
        if not math.isfinite(self.mde):
            text = f"this session cannot resolve {self.target} effects"
        else:
            text = f"this session resolves {self.target} effects >= {self.mde:.2f}"
        if self.target_underpowered:
            text += " (underpowered)"
        guards = [
            f"{g} {t:.2f}" + (" (underpowered)" if g in self.underpowered_guards else "")
            for g, t in self.guard_tolerance_needed.items()
        ]
        if guards:
            text += "; guard tolerance needed: " + ", ".join(guards)
        return text


@dataclass(frozen=True)
class Findings:
    """Everything the report's findings section needs."""

    knobs: list[KnobFinding]
    lanes: list[LaneSummary]
    judged: int = 0  # m: probes judged (the Bonferroni divisor)
    level: float = SESSION_ALPHA  # lambda: the per-probe level of a "worse" claim
    resolution: Resolution = field(default_factory=Resolution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "knobs": [k.to_dict() for k in self.knobs],
            "lanes": [lane.to_dict() for lane in self.lanes],
            "judged": self.judged,
            "level": self.level,
        }


def _guard_names(reason: str) -> list[str]:
    # "guard voice: tolerance ..." / "guard voice has no scored prompts"
    if not reason.startswith("guard "):
        return []
    return [reason[len("guard ") :].split(":")[0].split(" ")[0]]


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _num(v: float | None) -> str:
    return "—" if v is None else signed(v)


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _spec(knob: Any, key: str) -> Any:
    if knob is None:
        return None
    if isinstance(knob, Mapping):
        return knob.get(key)
    return getattr(knob, key, None)


def _knob_specs(lanes_knobs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    return {k: spec for knobs in (lanes_knobs or {}).values() for k, spec in knobs.items()}


def _is_categorical(value: Any, base: Any, spec: Any) -> bool:
    if _spec(spec, "type") == "categorical":
        return True
    return not (_is_number(value) and _is_number(base))


def _p_worse(c: CategoryComparison) -> float | None:
    if c.p_worse is not None:
        return c.p_worse
    return c.test().p_below(0.0) if c.se > 0 else None


def _p_regress(c: CategoryComparison) -> float | None:
    if c.p_regress is not None:
        return c.p_regress
    if c.threshold is None or c.se <= 0:
        return None
    return c.test().p_below(c.threshold)


def judge(
    verdict: Verdict, level: float, resolution: Resolution
) -> tuple[str, tuple[str, ...], str]:
    """(effect, shown, evidence) of one verdict under the module's rule at level lambda;
    `shown` names what a worse verdict was shown worse by ("target", "guard", "critical")."""
    if verdict.status is VerdictStatus.KEEP:
        alpha = f" at one-sided {verdict.alpha:.3g}" if verdict.alpha else ""
        return "better", (), f"kept on a fresh-seed confirmation{alpha}"
    # Holm over every test the probe had (a hypothesis the verdict did not reject still
    # counts in the family), each counted only where the verdict agrees.
    tests: list[tuple[str, str, float, bool]] = []  # (kind, text, p, the verdict agrees)
    target = verdict.category(verdict.target)
    if target is not None and not resolution.target_underpowered:
        p = _p_worse(target)
        if p is not None:
            tests.append(("target", f"{verdict.target} shown worse", p, True))
    for c in verdict.categories:
        if c.role != "guard" or c.category in resolution.underpowered_guards:
            continue
        p = _p_regress(c)
        if p is not None:
            text = f"{c.category} regressed past {signed(c.threshold or 0.0)}"
            tests.append(("guard", text, p, c.category in verdict.regressed_guards))
    if verdict.critical_p is not None:
        agrees = verdict.status is VerdictStatus.GUARD_FAIL and verdict.new_critical >= 1.0
        text = f"+{verdict.new_critical:.1f} critical"
        tests.append(("critical", text, verdict.critical_p, agrees))
    if not tests:
        return "flat", (), ""
    rejected = holm([p for _k, _t, p, _a in tests], level)
    shown = [
        (k, t, p, lvl)
        for (k, t, p, agrees), (r, lvl) in zip(tests, rejected, strict=True)
        if r and agrees
    ]
    if not shown:
        return "flat", (), ""
    text = "; ".join(f"{t}: p={_p(p)} <= {lvl:.2g}" for _k, t, p, lvl in shown)
    return "worse", tuple(k for k, _t, _p2, _l in shown), text


def _last_per_change(records: Sequence[ProbeRecord]) -> list[ProbeRecord]:
    latest: dict[tuple[tuple[str, str], ...], ProbeRecord] = {}
    for r in records:
        key = tuple(sorted((k, repr(v)) for k, v in r.changes.items()))
        latest.pop(key, None)  # re-insert so order follows the last occurrence
        latest[key] = r
    return list(latest.values())


def untried_moves(
    records: Sequence[ProbeRecord],
    recipe: Mapping[str, Any],
    lanes_knobs: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[str]]:
    """knob -> the moves of it no single-knob probe judged (crashes do not count): "up" /
    "down" from the recipe value for numeric knobs (a direction the range leaves no room for
    is not needed), every other choice for categorical ones. Knobs tried every way are absent.
    """
    judged: dict[str, list[Any]] = {}
    for r in _last_per_change([r for r in records if r.changes]):
        if len(r.changes) == 1 and r.verdict.status is not VerdictStatus.CRASH:
            ((knob, value),) = r.changes.items()
            judged.setdefault(knob, []).append(value)
    out: dict[str, list[str]] = {}
    for knob, spec in _knob_specs(lanes_knobs).items():
        base: Any = recipe.get(knob)
        values = judged.get(knob, [])
        missing: list[str] = []
        if _spec(spec, "type") == "categorical" or not _is_number(base):
            choices = list(_spec(spec, "choices") or [])
            missing = [f"{knob}={_fmt(c)}" for c in choices if c != base and c not in values]
        else:
            low, high = _spec(spec, "low"), _spec(spec, "high")
            eps = 1e-9 * max(abs(float(base)), 1e-300)
            if (high is None or base < high - eps) and not any(v > base for v in values):
                missing.append(f"{knob} up")
            if (low is None or base > low + eps) and not any(v < base for v in values):
                missing.append(f"{knob} down")
        if missing:
            out[knob] = missing
    return out


def derive_findings(
    records: Sequence[ProbeRecord],
    recipe: Mapping[str, Any],
    *,
    lanes: Sequence[str] = (),
    small_move: float = 0.25,
    power: PowerReport | None = None,
    lanes_knobs: Mapping[str, Mapping[str, Any]] | None = None,
    session_alpha: float | None = None,
) -> Findings:
    """Classify every knob that was changed alone and summarize every lane (the rule is the
    module docstring's).

    `recipe` gives each knob's baseline value (to tell up from down); `lanes` lists lanes to
    report even when nothing was tried in them; `small_move` is the relative move (25%) within
    which a collapse makes a knob `fragile`. `power` (the session's power report) says what the
    session resolves and which categories are underpowered (None: unknown, nothing is taken as
    underpowered); `lanes_knobs` (lane -> knob -> Knob or its dict) gives each knob's type and
    choices; `session_alpha` overrides power.session_alpha (5%).
    """
    resolution = Resolution.of(power)
    alpha = (
        session_alpha
        if session_alpha is not None
        else power.session_alpha
        if power is not None
        else SESSION_ALPHA
    )
    specs = _knob_specs(lanes_knobs)
    final = _last_per_change([r for r in records if r.changes])
    judged = sum(r.verdict.status is not VerdictStatus.CRASH for r in final)
    level = alpha / max(1, judged)
    by_knob: dict[str, list[tuple[ProbeRecord, Observation]]] = {}
    for r in final:
        if len(r.changes) != 1 or r.verdict.status is VerdictStatus.CRASH:
            continue
        ((knob, value),) = r.changes.items()
        base: Any = recipe.get(knob)
        rel: float | None
        if not _is_categorical(value, base, specs.get(knob)):
            if value == base:
                continue  # the recipe value itself: no move, so no direction to learn about
            direction = "up" if value > base else "down"
            rel = (
                abs(math.log(value / base))
                if value > 0 and base > 0
                else abs(value - base) / abs(base)
                if base
                else None
            )
        else:
            direction, rel = "choice", None
        v = r.verdict
        effect, shown, evidence = judge(v, level, resolution)
        by_knob.setdefault(knob, []).append(
            (
                r,
                Observation(
                    value=value,
                    direction=direction,
                    effect=effect,
                    status=v.status.value,
                    target_delta=v.target_delta,
                    ci_low=v.ci_low,
                    ci_high=v.ci_high,
                    worst_guard=v.worst_guard,
                    worst_guard_delta=v.worst_guard_delta,
                    new_critical=v.new_critical,
                    collapse=any(k != "target" for k in shown),
                    relative_move=rel,
                    probe_id=r.probe_id,
                    evidence=evidence,
                    shown=shown,
                ),
            )
        )
    crashed = {
        next(iter(r.changes))
        for r in final
        if len(r.changes) == 1 and r.verdict.status is VerdictStatus.CRASH
    }
    missing = untried_moves(records, recipe, lanes_knobs) if lanes_knobs else {}
    knobs: list[KnobFinding] = []
    for knob in sorted(set(by_knob) | crashed):
        pairs = by_knob.get(knob, [])
        obs = sorted((o for _r, o in pairs), key=lambda o: (o.direction, repr(o.value)))
        lane = pairs[0][0].lane if pairs else None
        target = pairs[0][0].verdict.target if pairs else ""
        knobs.append(
            _classify(
                knob,
                lane,
                recipe.get(knob),
                obs,
                target,
                small_move,
                resolution,
                spec=specs.get(knob),
                untried=missing.get(knob, []) if lanes_knobs else None,
            )
        )

    lane_names = list(dict.fromkeys([*lanes, *(r.lane for r in final if r.lane)]))
    summaries = []
    for lane in lane_names:
        rs = [r for r in final if r.lane == lane]
        kept = [r for r in rs if r.verdict.status is VerdictStatus.KEEP]
        pool = kept or [
            r
            for r in rs
            if r.verdict.target_delta is not None
            and r.verdict.status is not VerdictStatus.GUARD_FAIL
        ]
        best = max(pool, key=lambda r: r.verdict.target_delta or -math.inf, default=None)
        summaries.append(
            LaneSummary(
                lane=lane,
                tried=len(rs),
                kept=len(kept),
                candidates=sum(r.verdict.status is VerdictStatus.CANDIDATE for r in rs),
                guard_fails=sum(r.verdict.status is VerdictStatus.GUARD_FAIL for r in rs),
                crashes=sum(r.verdict.status is VerdictStatus.CRASH for r in rs),
                best_change=dict(best.changes) if best else None,
                best_delta=best.verdict.target_delta if best else None,
                best_status=best.verdict.status.value if best else None,
                best_kept=bool(kept),
            )
        )
    return Findings(knobs=knobs, lanes=summaries, judged=judged, level=level, resolution=resolution)


def _classify(
    knob: str,
    lane: str | None,
    recipe_value: Any,
    obs: list[Observation],
    target: str,
    small_move: float,
    resolution: Resolution,
    *,
    spec: Any = None,
    untried: list[str] | None = None,
) -> KnobFinding:
    evidence = "; ".join(o.describe(target) for o in obs)
    power_note = resolution.note()
    best = max(
        (o for o in obs if o.effect == "better"),
        key=lambda o: o.target_delta or -math.inf,
        default=None,
    )
    common: dict[str, Any] = dict(
        knob=knob,
        lane=lane,
        recipe_value=recipe_value,
        observations=obs,
        best_value=best.value if best else None,
        best_delta=best.target_delta if best else None,
    )

    def finding(cls: str, note: str, missing: list[str]) -> KnobFinding:
        not_tried = f"; not tried: {', '.join(missing)}" if missing else ""
        return KnobFinding(
            classification=cls,
            detail=f"{note}{not_tried}. {evidence} ({power_note})",
            untried=list(missing),
            **common,
        )

    if not obs:
        return KnobFinding(classification=UNTESTED, detail="every probe crashed", **common)
    nothing = (
        (UNRESOLVED, f"nothing shown, and {resolution.target} is underpowered")
        if resolution.target_underpowered
        else (FLAT, "no move shown better or worse at the session-corrected level")
    )
    limit = math.log(1 + small_move)
    fragile = [
        o
        for o in obs
        if o.collapse
        # A move from 0 has no relative size: it is not "small", so never fragile.
        and (
            o.direction == "choice"
            or (o.relative_move is not None and o.relative_move <= limit + 1e-12)
        )
    ]
    if fragile:
        o = fragile[0]
        move = "" if o.relative_move is None else f" (a {math.exp(o.relative_move) - 1:.0%} move)"
        what = " and ".join(
            {"guard": "a guard below its tolerance", "critical": "new critical failures"}[k]
            for k in o.shown
            if k != "target"
        )
        return finding(
            FRAGILE,
            f"{_fmt(recipe_value)} -> {_fmt(o.value)}{move} was shown worse by {what}",
            list(untried or []),
        )
    if all(o.direction == "choice" for o in obs):
        choices = list(_spec(spec, "choices") or [])
        tried = {repr(o.value) for o in obs}
        missing = (
            list(untried)
            if untried is not None
            else [
                f"{knob}={_fmt(c)}" for c in choices if c != recipe_value and repr(c) not in tried
            ]
        )
        worse = [_fmt(o.value) for o in obs if o.effect == "worse"]
        flat = [_fmt(o.value) for o in obs if o.effect == "flat"]
        if best is not None:
            return finding(BETTER_CHOICE, f"{_fmt(best.value)} kept", missing)
        if worse and not flat and choices and not missing:
            return finding(
                LOCAL_OPTIMUM, f"every alternative to {_fmt(recipe_value)} worse", missing
            )
        if worse:
            note = f"worse: {', '.join(worse)}"
            if flat:
                note += f"; inside the noise: {', '.join(flat)}"
            if not choices:
                note += " (the other choices are not known)"
            return finding(WORSE_CHOICE, note, missing)
        return finding(nothing[0], nothing[1], missing)

    def side(direction: str) -> str | None:
        effects = {o.effect for o in obs if o.direction == direction}
        if not effects:
            return None
        if "better" in effects:
            return "better"
        return "worse" if "worse" in effects else "flat"

    up, down = side("up"), side("down")
    if untried is not None:
        missing = list(untried)
    else:
        missing = [f"{knob} {d}" for d, s in (("up", up), ("down", down)) if s is None]
    if up == "better" and down == "better":
        return finding(MIXED, "both directions better: the recipe value sits in a dip", missing)
    if "better" in (up, down):
        d = "up" if up == "better" else "down"
        return finding(MONOTONE, f"better going {d}", missing)
    if up == "worse" and down == "worse":
        return finding(LOCAL_OPTIMUM, "worse in both directions", missing)
    if "worse" in (up, down):
        d = "up" if up == "worse" else "down"
        other = "untried" if (down if d == "up" else up) is None else "inside the noise"
        return finding(ONE_SIDED, f"worse going {d}, the other direction {other}", missing)
    return finding(nothing[0], nothing[1], missing)


def knob_findings_from_report_runs(
    runs: Sequence[Mapping[str, Any]],
    campaign: Mapping[str, Any],
    *,
    power: PowerReport | None = None,
) -> list[dict[str, Any]]:
    """Adapter for agent/report/render.py: its `runs` rows and the campaign dict in, rows with
    knob / classification / detail out (`power`: the session's power report).

    A row needs `status`, `lane`, `kind` and either `changes` (dict, preferred) or `change`
    (the `k=v,k2=v2` string of agent.proposals.format_changes, parsed back with YAML), plus
    the verdict numbers (`target_delta`, `ci_low`, `ci_high`) and, when present, a full
    `verdict` dict. Rows are taken in the order given.
    """
    return findings_from_report_runs(runs, campaign, power=power).to_dict()["knobs"]


def findings_from_report_runs(
    runs: Sequence[Mapping[str, Any]],
    campaign: Mapping[str, Any],
    *,
    power: PowerReport | None = None,
) -> Findings:
    """knob_findings_from_report_runs, returning the whole Findings."""
    objective = campaign.get("objective", {})
    recipe = campaign.get("recipe", {})
    records = records_from_report_runs(runs, str(objective.get("target", "")))
    lanes_knobs = campaign.get("lanes", {})
    return derive_findings(
        records,
        recipe,
        lanes=list(lanes_knobs),
        power=power,
        lanes_knobs=lanes_knobs if _has_specs(lanes_knobs) else None,
    )


def _has_specs(lanes_knobs: Mapping[str, Any]) -> bool:
    return any(
        isinstance(knobs, Mapping) and any(_spec(s, "type") for s in knobs.values())
        for knobs in lanes_knobs.values()
    )


def records_from_report_runs(
    runs: Sequence[Mapping[str, Any]], target: str = ""
) -> list[ProbeRecord]:
    """The report's run rows as ProbeRecords, confirmations after their candidates."""
    import yaml

    # The report sorts rows by delta; a confirmation must still come after its candidate.
    rank = {"probe": 0, "replay": 1, "confirm": 2}
    records = []
    for row in sorted(runs, key=lambda r: rank.get(str(r.get("kind")), 0)):
        if row.get("kind") == "baseline":
            continue
        changes = row.get("changes")
        if changes is None:
            text = str(row.get("change") or "")
            if not text or text == "recipe":
                continue
            changes = {}
            for part in text.split(","):
                key, _, raw = part.partition("=")
                value = yaml.safe_load(raw) if raw else raw
                if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(raw.strip()):
                    value = float(raw)  # YAML 1.1 reads format_changes' "1e-05" as a string
                changes[key.strip()] = value
        verdict_data = row.get("verdict")
        if verdict_data:
            verdict = Verdict.from_dict(verdict_data)
        else:
            try:
                status = VerdictStatus(row.get("status"))
            except ValueError:
                continue
            verdict = Verdict(
                status=status,
                reason=str(row.get("reason") or ""),
                target=target,
                target_delta=row.get("target_delta"),
                ci_low=row.get("ci_low"),
                ci_high=row.get("ci_high"),
            )
        records.append(
            ProbeRecord(
                changes=dict(changes),
                verdict=verdict,
                lane=row.get("lane") or None,
                probe_id=str(row.get("id", "")),
            )
        )
    return records

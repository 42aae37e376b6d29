"""Findings: what the verdicts say about each knob and each lane. Pure and deterministic.

Input is a list of `ProbeRecord`s in the order the probes finished: the change (knob ->
value), its lane and its verdict. When the same change appears more than once (a candidate and
its confirmation, or a replay), the last record wins: it is judged on more runs.

Each single-knob change is an observation, classed by its verdict:

- better: keep or candidate (the target cleared its threshold and the noise floor);
- worse: guard_fail, or the target's whole interval below zero;
- flat: anything else (discard or inconclusive inside the noise). Crashes are ignored.

A knob is then
- `fragile` when a small move (within `small_move` of the recipe value, relative; any move of a
  categorical knob) caused new critical failures or a guard collapse (a guard's whole interval
  below -tolerance);
- `monotone` when one direction is better and the other is not;
- `local optimum` when both directions were tried and both are worse;
- `one-sided` when one direction is worse and the other flat or untried;
- `flat` when every observation is inside the noise;
- `mixed` when both directions are better (the recipe sits in a dip);
- `better choice` (categorical knobs) when an alternative is better;
- `untested` when every observation crashed.
Multi-knob changes count for their lane but are not attributed to a knob.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.verdict import Verdict, VerdictStatus

LOCAL_OPTIMUM = "local optimum"
MONOTONE = "monotone"
FLAT = "flat"
FRAGILE = "fragile"
ONE_SIDED = "one-sided"
MIXED = "mixed"
BETTER_CHOICE = "better choice"
UNTESTED = "untested"


@dataclass(frozen=True)
class ProbeRecord:
    """One finished probe as findings see it."""

    changes: dict[str, Any]
    verdict: Verdict
    lane: str | None = None
    probe_id: str = ""


@dataclass(frozen=True)
class Observation:
    """One single-knob change and what its verdict says."""

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
    collapse: bool  # new critical failures or a guard collapse
    relative_move: float | None  # |log(value / recipe)| for positive numbers, else None
    probe_id: str = ""

    def describe(self, target: str) -> str:
        if self.target_delta is None:
            return f"{self.value}: {self.status}"
        text = (
            f"{_fmt(self.value)}: {target} {self.target_delta:+.2f} "
            f"[{_num(self.ci_low)}, {_num(self.ci_high)}] {self.status}"
        )
        if self.worst_guard is not None and self.worst_guard_delta is not None:
            text += f", worst guard {self.worst_guard} {self.worst_guard_delta:+.2f}"
        if self.new_critical >= 1.0:
            text += f", +{self.new_critical:.1f} critical"
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
class Findings:
    """Everything the report's findings section needs."""

    knobs: list[KnobFinding]
    lanes: list[LaneSummary]

    def to_dict(self) -> dict[str, Any]:
        return {
            "knobs": [k.to_dict() for k in self.knobs],
            "lanes": [lane.to_dict() for lane in self.lanes],
        }


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _collapse(verdict: Verdict) -> bool:
    if verdict.new_critical >= 1.0 and verdict.status is VerdictStatus.GUARD_FAIL:
        return True
    return any(
        c.role == "guard" and c.threshold is not None and c.ci_high < c.threshold
        for c in verdict.categories
    )


def _effect(verdict: Verdict) -> str:
    if verdict.status in (VerdictStatus.KEEP, VerdictStatus.CANDIDATE):
        return "better"
    if verdict.status is VerdictStatus.GUARD_FAIL:
        return "worse"
    if verdict.ci_high is not None and verdict.ci_high < 0:
        return "worse"
    return "flat"


def _last_per_change(records: Sequence[ProbeRecord]) -> list[ProbeRecord]:
    latest: dict[tuple[tuple[str, str], ...], ProbeRecord] = {}
    for r in records:
        key = tuple(sorted((k, repr(v)) for k, v in r.changes.items()))
        latest.pop(key, None)  # re-insert so order follows the last occurrence
        latest[key] = r
    return list(latest.values())


def derive_findings(
    records: Sequence[ProbeRecord],
    recipe: Mapping[str, Any],
    *,
    lanes: Sequence[str] = (),
    small_move: float = 0.25,
) -> Findings:
    """Classify every knob that was changed alone and summarize every lane.

    `recipe` gives each knob's baseline value (to tell up from down); `lanes` lists lanes to
    report even when nothing was tried in them; `small_move` is the relative move (25%) within
    which a collapse makes a knob `fragile`.
    """
    final = _last_per_change([r for r in records if r.changes])
    by_knob: dict[str, list[tuple[ProbeRecord, Observation]]] = {}
    for r in final:
        if len(r.changes) != 1 or r.verdict.status is VerdictStatus.CRASH:
            continue
        ((knob, value),) = r.changes.items()
        base = recipe.get(knob)
        rel: float | None
        if _is_number(value) and base is not None and _is_number(base):
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
        by_knob.setdefault(knob, []).append(
            (
                r,
                Observation(
                    value=value,
                    direction=direction,
                    effect=_effect(v),
                    status=v.status.value,
                    target_delta=v.target_delta,
                    ci_low=v.ci_low,
                    ci_high=v.ci_high,
                    worst_guard=v.worst_guard,
                    worst_guard_delta=v.worst_guard_delta,
                    new_critical=v.new_critical,
                    collapse=_collapse(v),
                    relative_move=rel,
                    probe_id=r.probe_id,
                ),
            )
        )
    crashed = {
        next(iter(r.changes))
        for r in final
        if len(r.changes) == 1 and r.verdict.status is VerdictStatus.CRASH
    }
    knobs: list[KnobFinding] = []
    for knob in sorted(set(by_knob) | crashed):
        pairs = by_knob.get(knob, [])
        obs = sorted((o for _r, o in pairs), key=lambda o: (o.direction, repr(o.value)))
        lane = pairs[0][0].lane if pairs else None
        target = pairs[0][0].verdict.target if pairs else ""
        knobs.append(_classify(knob, lane, recipe.get(knob), obs, target, small_move))

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
    return Findings(knobs=knobs, lanes=summaries)


def _classify(
    knob: str,
    lane: str | None,
    recipe_value: Any,
    obs: list[Observation],
    target: str,
    small_move: float,
) -> KnobFinding:
    evidence = "; ".join(o.describe(target) for o in obs)
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
    if not obs:
        return KnobFinding(classification=UNTESTED, detail="every probe crashed", **common)
    limit = math.log(1 + small_move)
    fragile = [
        o
        for o in obs
        if o.collapse
        and (o.direction == "choice" or o.relative_move is None or o.relative_move <= limit + 1e-12)
    ]
    if fragile:
        o = fragile[0]
        what = (
            f"+{o.new_critical:.1f} critical failures"
            if o.new_critical >= 1.0
            else f"{o.worst_guard} collapsed {_num(o.worst_guard_delta)}"
        )
        move = "" if o.relative_move is None else f" (a {math.exp(o.relative_move) - 1:.0%} move)"
        return KnobFinding(
            classification=FRAGILE,
            detail=f"{_fmt(recipe_value)} -> {_fmt(o.value)}{move}: {what}. {evidence}",
            **common,
        )
    if all(o.direction == "choice" for o in obs):
        if best is not None:
            cls = BETTER_CHOICE
        elif all(o.effect == "worse" for o in obs):
            cls = LOCAL_OPTIMUM
        else:
            cls = FLAT
        return KnobFinding(classification=cls, detail=evidence, **common)

    def side(direction: str) -> str | None:
        effects = {o.effect for o in obs if o.direction == direction}
        if not effects:
            return None
        if "better" in effects:
            return "better"
        return "worse" if "worse" in effects else "flat"

    up, down = side("up"), side("down")
    if up == "better" and down == "better":
        cls, note = MIXED, "both directions better: the recipe value sits in a dip"
    elif "better" in (up, down):
        d = "up" if up == "better" else "down"
        cls, note = MONOTONE, f"better going {d}"
    elif up == "worse" and down == "worse":
        cls, note = LOCAL_OPTIMUM, "worse in both directions"
    elif "worse" in (up, down):
        d = "up" if up == "worse" else "down"
        other = "untried" if (down if d == "up" else up) is None else "inside the noise"
        cls, note = ONE_SIDED, f"worse going {d}, the other direction {other}"
    else:
        cls, note = FLAT, "every move inside the noise"
    return KnobFinding(classification=cls, detail=f"{note}. {evidence}", **common)


def knob_findings_from_report_runs(
    runs: Sequence[Mapping[str, Any]], campaign: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Adapter for agent/report/render.py: its `runs` rows and the campaign dict in, rows with
    knob / classification / detail out.

    A row needs `status`, `lane`, `kind` and either `changes` (dict, preferred) or `change`
    (the `k=v,k2=v2` string of agent.proposals.format_changes, parsed back with YAML), plus
    the verdict numbers (`target_delta`, `ci_low`, `ci_high`) and, when present, a full
    `verdict` dict. Rows are taken in the order given.
    """
    import yaml

    objective = campaign.get("objective", {})
    recipe = campaign.get("recipe", {})
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
                changes[key.strip()] = yaml.safe_load(raw) if raw else raw
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
                target=str(objective.get("target", "")),
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
    findings = derive_findings(records, recipe, lanes=list(campaign.get("lanes", {})))
    return [k.to_dict() for k in findings.knobs]

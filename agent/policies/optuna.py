"""The optuna policy: offline Bayesian search, one Optuna study per lane (ask/tell).

* Storage: one SQLite file, `runs/optuna.db`, with a study per session and lane named
  `autoresearch:<session>:<lane>`, so `optuna-dashboard sqlite:///runs/optuna.db` shows them.
* Each lane's study first runs the **baseline neighbourhood** (`enqueue_trial`): every knob one
  step down and up from the recipe (a factor of `step`, default 2, on log scales; `step`,
  default a tenth of the range, otherwise; the other choices of a categorical), one knob at a
  time, interleaved across knobs. Then a seeded TPE sampler proposes whole-lane settings.
* The objective value is the target's delta against the same-step baseline, oriented so
  higher is better. Guards are constraints (`Trial.set_constraint`, feasible when <= 0):
  `guard:<name>` = the guard's threshold minus the lower end of its interval, and `critical`
  = new critical failures per run minus 0.999. A crashed probe is a FAIL trial.
* Lanes rotate on a plateau rule: the policy stays in a lane until `plateau` (default 3)
  probes in a row fail to beat the lane's best target delta by more than the baseline noise
  (or `optuna_min_gain`), then moves to the next lane; an exhausted lane is skipped. With a
  small run budget the plateau shortens (probes the budget allows / (2 × lanes), at least 1)
  so every lane gets a look. The rule is recomputed from the history, so a resumed session
  picks the same lane.
* Never a duplicate (a drawn point already tried is told its known value and redrawn) and
  never out of range (values come from the knobs' distributions; floats are rounded to
  3 significant digits only when the rounded value stays in range).
* Campaign memory: the probes earlier sessions judged under the same conditions
  (`PolicyContext.earlier`) are told into each new session's studies as finished trials, so
  TPE continues from them, and their changes are never proposed again.
* Resume: when a study is first loaded by a process, trials still RUNNING belong to a
  process that died; they are marked FAIL. tell() is idempotent per probe id, so the loop
  may replay every finished record; probes this policy did not propose (another policy's,
  or ones whose trial was failed as stale) are added to the study as finished trials.

Settings: `agent.settings` (`AgentSettings` in agent/campaign.py, typed and documented
there): plateau, optuna_min_gain, optuna_startup_trials, seed, optuna_max_draws.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.campaign import Campaign, Knob
from agent.policies.base import Action, Policy, PolicyContext, ProbeRecord, Proposal
from agent.policies.sweep import neighbours, readable_value
from agent.proposals import canonical_changes, format_changes

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

log = logging.getLogger(__name__)

Key = tuple[tuple[str, Any], ...]

STUDY_PREFIX = "autoresearch"
FINITE_LIMIT = 4096
"""Lanes with at most this many settings (categorical and int knobs) are enumerated to
detect exhaustion and to pick untried points the sampler keeps missing."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return bool(a == b) and type(a) is type(b)


def distribution(knob: Knob) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if knob.type == "categorical":
        return CategoricalDistribution(list(knob.choices or []))
    assert knob.low is not None and knob.high is not None
    if knob.type == "int":
        return IntDistribution(int(knob.low), int(knob.high), log=knob.log)
    return FloatDistribution(float(knob.low), float(knob.high), log=knob.log)


class OptunaPolicy(Policy):
    """Per-lane Optuna studies: baseline neighbourhood first, then seeded TPE."""

    name = "optuna"

    def __init__(self, campaign: Campaign, *, storage_dir: Path):
        self.campaign = campaign
        settings = campaign.agent.settings
        self.plateau = settings.plateau
        self.min_gain: float | None = settings.optuna_min_gain
        self.startup_trials = settings.optuna_startup_trials
        self.seed = campaign.probe.seed if settings.seed is None else settings.seed
        self.max_draws = settings.optuna_max_draws
        self.storage_dir = Path(storage_dir)
        self.storage_path = self.storage_dir / "optuna.db"
        self.knobs: dict[str, dict[str, Knob]] = {
            lane: {n: k for n, k in knobs.items() if n not in campaign.protected}
            for lane, knobs in campaign.lanes.items()
        }
        self.knobs = {lane: ks for lane, ks in self.knobs.items() if ks}
        self._storage: Any = None
        self._session: str | None = None
        self._studies: dict[str, optuna.Study] = {}
        self._told: dict[str, set[str]] = {}
        self._pending: dict[Key, tuple[str, optuna.Trial]] = {}
        self._outcomes: dict[Key, tuple[float | None, dict[str, float]]] = {}
        self._refused: set[Key] = set()
        self._exhausted: set[str] = set()

    # -- storage and studies --------------------------------------------------------------------

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{self.storage_path.resolve()}"

    def _connect(self) -> sqlite3.Connection:
        # WAL lets optuna-dashboard read while the session writes; synchronous=NORMAL avoids
        # an fsync per trial update (the session database, not this file, is the record).
        conn = sqlite3.connect(
            str(self.storage_path.resolve()), timeout=30.0, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def study_name(self, lane: str, session_id: str | None = None) -> str:
        return f"{STUDY_PREFIX}:{session_id or self._session}:{lane}"

    def _ensure(self, context: PolicyContext) -> None:
        if self._session is not None and self._session != context.session_id:
            # A new session: its own studies (the storage file is shared).
            self._studies.clear()
            self._told.clear()
            self._pending.clear()
            self._outcomes.clear()
            self._refused.clear()
            self._exhausted.clear()
        self._session = context.session_id
        if self._storage is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.storage_dir.mkdir(parents=True, exist_ok=True)
            self._storage = optuna.storages.RDBStorage(
                self.storage_url, engine_kwargs={"creator": self._connect}
            )

    def study(self, lane: str) -> optuna.Study:
        """The lane's study, created (with its neighbourhood enqueued) or loaded."""
        if lane in self._studies:
            return self._studies[lane]
        import optuna
        from optuna.trial import TrialState

        sampler = optuna.samplers.TPESampler(
            seed=(self.seed * 7919 + zlib.crc32(lane.encode())) % (2**31),
            n_startup_trials=self.startup_trials,
        )
        study = optuna.create_study(
            storage=self._storage,
            study_name=self.study_name(lane),
            direction="maximize",
            sampler=sampler,
            load_if_exists=True,
        )
        trials = study.get_trials(deepcopy=False)
        stale = [t for t in trials if t.state == TrialState.RUNNING]
        for t in stale:
            # Left RUNNING by a process that stopped: its probe never reported back here.
            study.tell(t.number, state=TrialState.FAIL)
        if stale:
            log.info("optuna: marked %d stale running trial(s) of lane %s failed", len(stale), lane)
        if not trials:
            study.set_user_attr("lane", lane)
            study.set_user_attr("session_id", self._session)
            study.set_user_attr("objective", "target delta vs same-step baseline (oriented)")
            for params in self.neighbourhood_params(lane):
                study.enqueue_trial(
                    params, user_attrs={"source": "neighbourhood"}, skip_if_exists=True
                )
        self._told[lane] = {
            str(t.user_attrs["probe_id"])
            for t in study.get_trials(deepcopy=False)
            if "probe_id" in t.user_attrs
        }
        self._studies[lane] = study
        return study

    def neighbourhood_params(self, lane: str) -> list[dict[str, Any]]:
        """Full lane settings with one knob moved one step, interleaved across knobs."""
        recipe = self.campaign.recipe
        base = {n: recipe[n] for n in self.knobs[lane]}
        per_knob = [
            [(name, v) for v in neighbours(knob, recipe[name])]
            for name, knob in self.knobs[lane].items()
        ]
        out = []
        for i in range(max((len(v) for v in per_knob), default=0)):
            for moves in per_knob:
                if i < len(moves):
                    name, value = moves[i]
                    out.append({**base, name: value})
        return out

    def distributions(self, lane: str) -> dict[str, BaseDistribution]:
        return {n: distribution(k) for n, k in self.knobs[lane].items()}

    # -- helpers --------------------------------------------------------------------------------

    def _changes(self, lane: str, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, knob in self.knobs[lane].items():
            value = params[name]
            if knob.type == "int":
                value = int(value)
            elif knob.type == "float":
                value = readable_value(knob, float(value))
            if not _same(value, self.campaign.recipe[name]):
                out[name] = value
        return out

    def outcome(self, record: ProbeRecord) -> tuple[float | None, dict[str, float]]:
        """(objective value or None for a failed run, constraints) of a finished probe."""
        v = record.verdict
        if record.status == "crash" or v is None or v.target_delta is None:
            return None, {}
        if not math.isfinite(v.target_delta):
            return None, {}
        constraints: dict[str, float] = {}
        for guard in self.campaign.objective.guards:
            c = v.category(guard)
            if c is not None and c.threshold is not None and math.isfinite(c.ci_low):
                constraints[f"guard:{guard}"] = float(c.threshold - c.ci_low)
        constraints["critical"] = float(v.new_critical) - 0.999
        if record.status == "guard_fail" and all(x <= 0 for x in constraints.values()):
            constraints["guard_fail"] = 1.0
        return float(v.target_delta), constraints

    def _margin(self, context: PolicyContext) -> float:
        if self.min_gain is not None:
            return self.min_gain
        if context.noise is not None:
            return context.noise.seed_spread(self.campaign.objective.target)
        return 0.0

    def effective_plateau(self, context: PolicyContext) -> int:
        """The plateau, shortened when the run budget could not otherwise reach every lane:
        a budget of a handful of probes visits each lane rather than exhausting the first."""
        total = context.budget.runs_total
        if total is None or not self.knobs:
            return self.plateau
        probes = max(1, total - self.campaign.probe.baseline_seeds)
        return max(1, min(self.plateau, probes // (2 * len(self.knobs))))

    def lane_order(
        self, history: Sequence[ProbeRecord], margin: float = 0.0, plateau: int | None = None
    ) -> list[str]:
        """Lanes to try, the current one first: replays the plateau rule over the history."""
        plateau = plateau or self.plateau
        lanes = list(self.knobs)
        if not lanes:
            return []
        current, stall = 0, 0
        best = dict.fromkeys(lanes, 0.0)
        for r in history:
            if r.kind != "probe" or r.lane not in best:
                continue
            value, _ = self.outcome(r)
            improved = (
                value is not None and r.status != "guard_fail" and value > best[r.lane] + margin
            )
            if improved and value is not None:
                best[r.lane] = value
            if r.lane == lanes[current]:
                stall = 0 if improved else stall + 1
                if stall >= plateau:
                    current, stall = (current + 1) % len(lanes), 0
        return lanes[current:] + lanes[:current]

    # -- Policy ---------------------------------------------------------------------------------

    def ask(self, context: PolicyContext) -> Proposal:
        self._ensure(context)
        # The campaign memory: earlier comparable sessions' probes join this session's
        # studies as finished trials (once; tell is idempotent per probe id), so the search
        # goes on from what they found instead of starting over.
        for record in context.earlier:
            self.tell(record, context)
        tried = {canonical_changes(c) for c in context.tried()}
        tried |= self._refused | set(self._pending)
        order = self.lane_order(
            context.history, self._margin(context), self.effective_plateau(context)
        )
        for lane in order:
            if lane in self._exhausted:
                continue
            proposal = self._draw(lane, tried)
            if proposal is not None:
                return proposal
            self._exhausted.add(lane)
            log.info("optuna: lane %s has no untried settings left", lane)
        return Proposal(
            action=Action.CONCLUDE,
            hypothesis="every lane's search space has been tried",
            rationale="optuna: no untried setting left in any lane",
        )

    def untried_points(self, lane: str, tried: set[Key]) -> list[dict[str, Any]] | None:
        """Every untried setting of a finite lane (categorical and int knobs only, at most
        `FINITE_LIMIT` points), or None for a lane with a continuous knob."""
        values: list[list[Any]] = []
        size = 1
        for knob in self.knobs[lane].values():
            if knob.type == "categorical":
                values.append(list(knob.choices or []))
            elif knob.type == "int":
                assert knob.low is not None and knob.high is not None
                values.append(list(range(int(knob.low), int(knob.high) + 1)))
            else:
                return None
            size *= len(values[-1])
            if size > FINITE_LIMIT:
                return None
        names = list(self.knobs[lane])
        out = []
        for combo in itertools.product(*values):
            params = dict(zip(names, combo, strict=True))
            changes = self._changes(lane, params)
            if changes and canonical_changes(changes) not in tried:
                out.append(params)
        return out

    def _draw(self, lane: str, tried: set[Key]) -> Proposal | None:
        from optuna.trial import TrialState

        untried = self.untried_points(lane, tried)
        if untried is not None and not untried:
            return None
        study = self.study(lane)
        dists = self.distributions(lane)
        duplicates = 0
        for _ in range(self.max_draws):
            if untried and duplicates >= 4:
                # A small space the sampler keeps missing: take an untried point directly.
                rng = random.Random(self.seed * 1009 + len(tried))
                study.enqueue_trial(rng.choice(untried), user_attrs={"source": "enumeration"})
                duplicates = 0
            trial = study.ask(dists)
            changes = self._changes(lane, trial.params)
            key = canonical_changes(changes)
            if not changes:
                # The recipe itself: its delta against the baseline is 0 by definition.
                trial.set_user_attr("duplicate_of", "recipe")
                study.tell(trial, 0.0)
                duplicates += 1
                continue
            if key in tried:
                duplicates += 1
                known, constraints = self._outcomes.get(key, (None, {}))
                trial.set_user_attr("duplicate_of", format_changes(changes))
                if known is None:
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    for name, value in constraints.items():
                        trial.set_constraint(name, value)
                    study.tell(trial, known)
                continue
            source = "neighbourhood" if trial.user_attrs.get("source") == "neighbourhood" else "tpe"
            trial.set_user_attr("changes", json.loads(json.dumps(changes, default=str)))
            trial.set_user_attr("session_id", self._session)
            self._pending[key] = (lane, trial)
            return Proposal(
                action=Action.PROBE,
                lane=lane,
                changes=changes,
                hypothesis=self._hypothesis(lane, changes, source),
                rationale=(
                    f"optuna study {study.study_name} trial #{trial.number} "
                    f"({'baseline neighbourhood' if source == 'neighbourhood' else 'TPE'})"
                ),
            )
        return None

    def _hypothesis(self, lane: str, changes: dict[str, Any], source: str) -> str:
        if source == "neighbourhood" and len(changes) == 1:
            ((name, value),) = changes.items()
            old = self.campaign.recipe[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                verb = "raise" if value > old else "lower"
                return (
                    f"{verb} {name} from {old!r} to {value!r}: one step from the recipe "
                    "probes the target's sensitivity to it"
                )
            return f"switch {name} from {old!r} to {value!r}: test the alternative"
        return (
            f"TPE in lane {lane} suggests {format_changes(changes)} as likely to beat the "
            "lane's best target delta while keeping the guards"
        )

    def tell(self, record: ProbeRecord, context: PolicyContext) -> None:
        from optuna.trial import TrialState, create_trial

        if record.kind != "probe" or record.lane not in self.knobs:
            return
        self._ensure(context)
        key = canonical_changes(record.changes)
        value, constraints = self.outcome(record)
        self._outcomes[key] = (value, constraints)
        lane = record.lane
        study = self.study(lane)
        told = self._told.setdefault(lane, set())
        if record.probe_id in told:
            self._pending.pop(key, None)
            return
        pending = self._pending.pop(key, None)
        if pending is not None and pending[0] == lane:
            trial = pending[1]
            trial.set_user_attr("probe_id", record.probe_id)
            trial.set_user_attr("status", record.status)
            if value is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                for name, c in constraints.items():
                    trial.set_constraint(name, c)
                study.tell(trial, value)
            told.add(record.probe_id)
            return
        # A probe this policy did not propose (or whose trial went stale): record it.
        dists = self.distributions(lane)
        if any(name not in dists for name in record.changes):
            return
        params = {n: self.campaign.recipe[n] for n in dists}
        params.update(record.changes)
        if not all(self.knobs[lane][n].contains(params[n]) for n in dists):
            return
        frozen = create_trial(
            params=params,
            distributions=dists,
            value=value,
            state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
            user_attrs={
                "probe_id": record.probe_id,
                "status": record.status,
                "changes": json.loads(json.dumps(record.changes, default=str)),
                "source": "history",
            },
            system_attrs={f"constraints:{k}": v for k, v in constraints.items()}
            if value is not None
            else {},
        )
        study.add_trial(frozen)
        told.add(record.probe_id)

    def reject(self, proposal: Proposal, reason: str, context: PolicyContext) -> None:
        from optuna.trial import TrialState

        key = canonical_changes(proposal.changes)
        self._refused.add(key)
        pending = self._pending.pop(key, None)
        if pending is not None:
            lane, trial = pending
            trial.set_user_attr("refused", reason[:500])
            self.study(lane).tell(trial, state=TrialState.FAIL)

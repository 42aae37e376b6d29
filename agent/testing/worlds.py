"""Simulated campaigns with known truth, to measure how often a verdict rule is wrong.

A world draws per-prompt scores of every training run (baseline seed, probe, confirmation:
each its own independent seed) from

    score = difficulty[prompt] + effect[category] + seed_shift[run] + seed_x_prompt[run, prompt]
            + eval_noise[run, prompt, repeat]

- `seed_shift`: with `shift="model"` ONE draw per run, added to every category (a seed moves
  the whole model); with `shift="target"` a draw on the target category only. Its SD is
  `shift_ratio` x `per_prompt_sd` (the SD of one prompt's score between runs without it).
- `clip`: scores clipped to the 0..10 scale, and `outlier_rate` of evaluations replaced by 0
  (unflagged: a judge that answered nonsense). Effects then act on the latent score, so a
  clipped world's true effect on the observed mean is smaller than the effect named.
- `critical`: per run a number of prompts of the target and guards fail critically (scored 0
  in every repeat, flagged): Poisson(`critical_rate`) with `critical="fixed"`, or with a rate
  that itself varies by seed (Gamma, shape `critical_shape`, mean `critical_rate`) with
  `critical="seed"`.

A session (`run_session`) is the loop agent/session.py runs, budget accounting included: the
baseline (`seeds` runs), then while runs remain in the budget: the pending candidate's
confirmation if there is one, else a new probe. The rule is pluggable (`Rule`): `NewRule` is
the verdict of agent/verdict.py as the session applies it (alpha spending over the
confirmations the budget can pay for, the noise model widened by every finished
candidate/confirmation pair); `NaiveRule` keeps a change when the target mean went up.
benchmarks/legacy_rule has the rule before issue 8 in the same shape.

Power is measured without searching over effect sizes: every run's noise is a function of
(session seed, run index) only, so the first change's probe and confirmation see the same
noise whatever its effect, and `keep_threshold` finds, per session, the smallest effect the
rule keeps. The fraction of sessions whose threshold is <= e is the keep probability at e,
and the 80% quantile of the thresholds is the true minimum detectable effect.

tests/test_verdict_worlds.py asserts the error rates; benchmarks/verdict_vs_naive.py prints
them for the new, the old and the naive rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.campaign import Objective
from agent.stats import (
    NoiseModel,
    build_noise_model,
    category_means,
    confirmation_alpha,
    guard_min_tolerance,
    max_confirmations,
    minimum_detectable_effect,
    power_report,
)
from agent.verdict import Verdict, VerdictStatus, compare
from probes.spec import Score

TARGET = "target"
GUARDS = ("guard_a", "guard_b")
#: A tolerance no guard drop in these worlds comes near: guards never bind, so the rule's
#: target test alone is measured (what the stated MDE is about).
WIDE = 1000.0


# ---- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What one proposed change truly does."""

    name: str
    effects: dict[str, float] = field(default_factory=dict)
    """category -> true shift of every prompt's (latent) score."""
    critical: int = 0
    """Extra prompts (of the target and guards) failing critically in every run of it."""


@dataclass(frozen=True)
class World:
    """Noise, eval set and session settings of a simulated campaign."""

    seeds: int = 3
    """Baseline runs."""
    prompts: int = 10
    """Prompts per category (the target and every guard)."""
    probes: int = 6
    """Probes the budget is sized for: budget = seeds + probes + room for confirmations."""
    shift: str = "model"
    """"model": one seed shift per run for every category; "target": on the target only."""
    shift_ratio: float = 1.0
    """Seed-shift SD as a multiple of per_prompt_sd."""
    seed_x_prompt_sd: float = 0.6
    eval_sd: float = 0.8
    repeats: int = 1
    difficulty_mean: float = 7.0
    difficulty_sd: float = 1.2
    clip: bool = False
    """Clip to 0..10 and replace `outlier_rate` of evaluations by 0."""
    outlier_rate: float = 0.05
    critical: str = "none"
    """"none", "fixed" (Poisson per run) or "seed" (the rate varies by seed)."""
    critical_rate: float = 5.0
    critical_shape: float = 2.0
    tolerance: float = WIDE
    min_improvement: float = 0.0
    guards: tuple[str, ...] = GUARDS

    @property
    def categories(self) -> list[str]:
        return [TARGET, *self.guards]

    @property
    def per_prompt_sd(self) -> float:
        """SD of one prompt's repeat-averaged score between runs, without the seed shift."""
        return math.sqrt(self.seed_x_prompt_sd**2 + self.eval_sd**2 / self.repeats)

    @property
    def shift_sd(self) -> float:
        return self.shift_ratio * self.per_prompt_sd

    @property
    def room(self) -> int:
        """Runs the budget keeps for confirmations beyond `probes`."""
        return max(2, self.probes // 3)

    @property
    def budget(self) -> int:
        return self.seeds + self.probes + self.room

    @property
    def objective(self) -> Objective:
        return Objective(
            target=TARGET,
            guards=list(self.guards),
            min_improvement=self.min_improvement,
            guard_tolerance=self.tolerance,
        )

    def run_sd(self, category: str = TARGET) -> float:
        """True SD of one run's category mean (no clipping, outliers or critical failures)."""
        shifted = self.shift == "model" or category == TARGET
        return math.sqrt(
            (self.shift_sd**2 if shifted else 0.0) + self.per_prompt_sd**2 / self.prompts
        )

    def true_noise(self) -> NoiseModel:
        """The noise model of a perfectly measured baseline (for sizing effects/tolerances)."""
        cats = self.categories
        return NoiseModel(
            seed_sd={c: self.run_sd(c) for c in cats},
            dof=dict.fromkeys(cats, float(self.seeds - 1)),
            n_prompts=dict.fromkeys(cats, self.prompts),
            seeds=self.seeds,
            repeats=self.repeats,
            prompt_sd=dict.fromkeys(cats, self.per_prompt_sd),
        )

    def needed_tolerance(self, guard: str = GUARDS[0]) -> float:
        """The tolerance an unchanged guard passes with 80% power, from the true noise (what
        the session states on average: its SD estimate is de-biased)."""
        return guard_min_tolerance(self.true_noise(), guard)

    def predicted_mde(self) -> float:
        """The new rule's MDE at the true noise (first confirmation of the budget)."""
        m = max_confirmations(self.budget, self.seeds)
        return minimum_detectable_effect(
            self.true_noise(),
            TARGET,
            threshold=self.min_improvement,
            confirm_alpha=confirmation_alpha(1, m),
        )

    def describe(self) -> str:
        shift = f"{self.shift} {self.shift_ratio:g}x" if self.shift_ratio else "no shift"
        extra = [f"S={self.seeds}", f"n={self.prompts}", f"P={self.probes}", shift]
        if self.clip:
            extra.append(f"clip+{self.outlier_rate:.0%} outliers")
        if self.critical != "none":
            extra.append(f"crit {self.critical_rate:g}/run {self.critical}")
        return ", ".join(extra)


class Lab:
    """One session's universe: fixed prompt difficulties; each run's noise is a function of
    (session seed, run index) alone, so a run can be redrawn with another effect and the
    same luck."""

    def __init__(self, world: World, seed: int):
        self.world = world
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        self.difficulty = {
            c: world.difficulty_mean + rng.normal(0.0, world.difficulty_sd, world.prompts)
            for c in world.categories
        }
        self.pids = {c: [f"{c}-{i}" for i in range(world.prompts)] for c in world.categories}
        self.runs = 0

    def run(self, change: Change | None = None, index: int | None = None) -> list[Score]:
        """One training run of the recipe plus `change`, evaluated `repeats` times."""
        if index is None:
            index, self.runs = self.runs, self.runs + 1
        w = self.world
        rng = np.random.default_rng([self.seed, 1, index])
        effects = change.effects if change else {}
        cats = w.categories
        n, r = w.prompts, w.repeats
        # Every draw is made whatever the change, so the luck of a run does not depend on it.
        shift_model = rng.normal(0.0, w.shift_sd)
        sxp = rng.normal(0.0, w.seed_x_prompt_sd, (len(cats), n))
        noise = rng.normal(0.0, w.eval_sd, (len(cats), n, r))
        outlier = rng.random((len(cats), n, r)) < (w.outlier_rate if w.clip else 0.0)
        order = rng.permutation(len(cats) * n)
        if w.critical == "fixed":
            rate = w.critical_rate
        elif w.critical == "seed":
            rate = rng.gamma(w.critical_shape, w.critical_rate / w.critical_shape)
        else:
            rate = 0.0
        count = int(rng.poisson(rate)) if rate > 0 else 0
        count += round(change.critical) if change else 0
        flat = np.zeros(len(cats) * n, dtype=bool)
        flat[order[: min(count, flat.size)]] = True
        broken = flat.reshape(len(cats), n)
        scores: list[Score] = []
        for ci, c in enumerate(cats):
            shift = shift_model if (w.shift == "model" or c == TARGET) else 0.0
            mean = self.difficulty[c] + effects.get(c, 0.0) + shift + sxp[ci]
            x = mean[:, None] + noise[ci]
            if w.clip:
                x = np.clip(x, 0.0, 10.0)
                x[outlier[ci]] = 0.0
            x[broken[ci]] = 0.0
            pids = self.pids[c]
            for i in range(n):
                crit = bool(broken[ci, i])
                for k in range(r):
                    scores.append(Score(pids[i], c, float(x[i, k]), repeat=k, critical=crit))
        return scores


# ---- rules -------------------------------------------------------------------------------------


#: A verdict of agent.verdict, or of the legacy rule (its own classes, the same fields).
AnyVerdict = Any


class Judge(Protocol):
    """One session's use of a rule, after its baseline."""

    stated_mde: float | None
    underpowered: bool

    def screen(self, run: Sequence[Score], *, index: int = 0) -> AnyVerdict: ...

    def confirm(
        self, candidate: Sequence[Score], confirmation: Sequence[Score], j: int, *, index: int = 0
    ) -> AnyVerdict: ...

    def finished_pair(self, candidate: Sequence[Score], confirmation: Sequence[Score]) -> None: ...


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    def start(self, baseline: list[list[Score]], world: World, *, power: bool = False) -> Judge: ...


class NewJudge:
    """agent/verdict.py as the session applies it (see the module docstring)."""

    def __init__(self, baseline: list[list[Score]], world: World, power: bool):
        self.baseline = baseline
        self.objective = world.objective
        self.noise = build_noise_model(baseline, self.objective)
        self.noise_now = self.noise
        self.m = max_confirmations(world.budget, world.seeds)
        self.pairs: list[list[list[Score]]] = []
        self.stated_mde: float | None = None
        self.underpowered = False
        if power:
            report = power_report(self.noise, self.objective, max_confirmations=self.m)
            self.stated_mde = report.mde
            self.underpowered = bool(report.underpowered)

    def screen(self, run: Sequence[Score], *, index: int = 0) -> Verdict:
        return compare([run], self.baseline, self.objective, self.noise_now)

    def confirm(
        self, candidate: Sequence[Score], confirmation: Sequence[Score], j: int, *, index: int = 0
    ) -> Verdict:
        alpha = confirmation_alpha(j, self.m)
        return compare(
            [confirmation],
            self.baseline,
            self.objective,
            self.noise_now,
            confirmation=True,
            alpha=alpha,
        )

    def finished_pair(self, candidate: Sequence[Score], confirmation: Sequence[Score]) -> None:
        self.pairs.append([list(candidate), list(confirmation)])
        self.noise_now = build_noise_model(self.baseline, self.objective, replicates=self.pairs)


@dataclass(frozen=True)
class NewRule:
    name: str = "new"

    def start(self, baseline: list[list[Score]], world: World, *, power: bool = False) -> Judge:
        return NewJudge(baseline, world, power)


class NaiveJudge:
    """Keep a change when its target mean is above the baseline's (no test, no confirmation):
    the hand-run loop of seed 003."""

    def __init__(self, baseline: list[list[Score]], world: World):
        self.base = category_means(baseline)
        self.world = world
        self.stated_mde: float | None = None
        self.underpowered = False

    def screen(self, run: Sequence[Score], *, index: int = 0) -> Verdict:
        delta = category_means([run])[TARGET] - self.base[TARGET]
        up = delta > 0
        return Verdict(
            status=VerdictStatus.KEEP if up else VerdictStatus.DISCARD,
            reason="target mean went up" if up else "target mean did not go up",
            target=TARGET,
            target_delta=delta,
        )

    def confirm(
        self, candidate: Sequence[Score], confirmation: Sequence[Score], j: int, *, index: int = 0
    ) -> Verdict:
        return self.screen(confirmation)  # never asked by a session: it keeps at the screen

    def finished_pair(self, candidate: Sequence[Score], confirmation: Sequence[Score]) -> None:
        pass


@dataclass(frozen=True)
class NaiveRule:
    name: str = "naive"

    def start(self, baseline: list[list[Score]], world: World, *, power: bool = False) -> Judge:
        return NaiveJudge(baseline, world)


def is_(v: AnyVerdict, status: VerdictStatus) -> bool:
    """Whether a verdict has `status`; by value, since the legacy rule has its own enum."""
    return v.status.value == status.value


def critical_fired(v: AnyVerdict) -> bool:
    """Whether a verdict failed on new critical failures (either rule's wording)."""
    return is_(v, VerdictStatus.GUARD_FAIL) and "new critical failure" in v.reason


def guard_passed(v: AnyVerdict, guard: str) -> bool:
    """Whether the verdict shows `guard` non-inferior (the legacy rule: after Holm)."""
    c = v.category(guard)
    return bool(c is not None and c.passed)


# ---- sessions ----------------------------------------------------------------------------------


@dataclass
class SessionResult:
    kept: list[str]
    screens: list[tuple[str, AnyVerdict]]
    """(change name, screen verdict) per probe, in order."""
    confirmations: int
    runs: int
    stated_mde: float | None
    underpowered: bool


def null_change(i: int) -> Change:
    return Change(f"null-{i}")


def run_session(
    world: World,
    changes: Sequence[Change],
    seed: int,
    rule: Rule,
    *,
    power: bool = False,
) -> SessionResult:
    """The session loop over `changes` (then null changes once they run out) until the
    budget (world.budget runs, the baseline included) is spent."""
    lab = Lab(world, seed)
    baseline = [lab.run() for _ in range(world.seeds)]
    judge = rule.start(baseline, world, power=power)
    runs = world.seeds
    queue = list(changes)
    pending: tuple[Change, list[Score]] | None = None
    kept: list[str] = []
    screens: list[tuple[str, AnyVerdict]] = []
    done = 0
    while runs < world.budget:
        if pending is not None:
            change, candidate = pending
            pending = None
            confirmation = lab.run(change)
            runs += 1
            done += 1
            v = judge.confirm(candidate, confirmation, done, index=runs)
            judge.finished_pair(candidate, confirmation)
            if is_(v, VerdictStatus.KEEP):
                kept.append(change.name)
            continue
        change = queue.pop(0) if queue else null_change(len(screens))
        run = lab.run(change)
        runs += 1
        v = judge.screen(run, index=runs)
        screens.append((change.name, v))
        if is_(v, VerdictStatus.CANDIDATE):
            pending = (change, run)
        elif is_(v, VerdictStatus.KEEP):
            kept.append(change.name)
    return SessionResult(kept, screens, done, runs, judge.stated_mde, judge.underpowered)


@dataclass(frozen=True)
class Threshold:
    """One session's smallest kept effect for the first change, with what it stated."""

    effect: float
    """The smallest effect the rule keeps (inf: none up to the search's ceiling)."""
    stated_mde: float | None
    underpowered: bool


def keep_threshold(
    world: World,
    seed: int,
    rule: Rule,
    change_of: Callable[[float], Change] | None = None,
    *,
    power: bool = True,
) -> Threshold:
    """The smallest effect `e` for which the session keeps its first change `change_of(e)`
    (default: the target moved by e).

    The first change's fate depends only on the baseline, its probe run and its
    confirmation run (the first confirmation of the budget), which run_session draws at run
    indices 0..seeds-1, seeds and seeds+1: the same runs are drawn here for every e. The
    rule's own verdicts say how much more effect their target tests want (_linear_guess);
    the secant method finds where that is 0 (in one step when the world is linear in e), the
    decision is checked on both sides of it, and a bisection on the decision itself takes
    over when the check fails (a guard or the critical test decides).
    """
    change_of = change_of or (lambda e: Change("effective", {TARGET: e}))
    lab = Lab(world, seed)
    baseline = [lab.run(index=i) for i in range(world.seeds)]
    judge = rule.start(baseline, world, power=power)
    s = world.seeds

    def verdicts(e: float) -> tuple[AnyVerdict, AnyVerdict | None]:
        change = change_of(e)
        probe = lab.run(change, index=s)
        v = judge.screen(probe, index=s + 1)
        if is_(v, VerdictStatus.KEEP) or s + 1 >= world.budget:
            return v, None
        confirmation = lab.run(change, index=s + 1)
        return v, judge.confirm(probe, confirmation, 1, index=s + 2)

    def keeps(e: float) -> bool:
        v, c = verdicts(e)
        if is_(v, VerdictStatus.KEEP):
            return True
        return is_(v, VerdictStatus.CANDIDATE) and c is not None and (is_(c, VerdictStatus.KEEP))

    scale = world.per_prompt_sd + world.shift_sd
    found = _secant(lambda e: _linear_guess(*verdicts(e)), scale)
    if found is not None:
        e, residual = found
        eps = max(1e-7 * (abs(e) + scale), 2 * abs(residual))
        if keeps(e + eps) and not keeps(e - eps):
            return Threshold(e, judge.stated_mde, judge.underpowered)
    # Not where the target tests say (a guard or the critical test decides, or the rule is
    # not monotone there): bisection on the decision itself.
    lo, hi = -20.0 * scale, 40.0 * scale
    if not keeps(hi):
        return Threshold(math.inf, judge.stated_mde, judge.underpowered)
    if keeps(lo):
        return Threshold(lo, judge.stated_mde, judge.underpowered)
    while hi - lo > 1e-4 * scale:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if keeps(mid) else (mid, hi)
    return Threshold(hi, judge.stated_mde, judge.underpowered)


def _secant(need: Callable[[float], float | None], scale: float) -> tuple[float, float] | None:
    """The root of need(e) (the extra effect the target tests want at e, about 1:1 in e),
    by the secant method from e = 0: (root, residual), or None when it does not converge.
    Exact in one step when the world is linear in e; a few steps when clipping bends it."""
    e0, n0 = 0.0, need(0.0)
    if n0 is None or not math.isfinite(n0):
        return None
    e1 = n0
    for _ in range(12):
        n1 = need(e1)
        if n1 is None or not math.isfinite(n1):
            return None
        if abs(n1) <= 1e-9 * (abs(e1) + scale):
            return e1, n1
        slope = (n1 - n0) / (e1 - e0) if e1 != e0 else -1.0
        if not slope < -1e-3:  # flat or rising: the effect no longer moves the target
            return None
        e0, n0, e1 = e1, n1, e1 - n1 / slope
    return None


def _linear_guess(screen: AnyVerdict, confirm: AnyVerdict | None) -> float | None:
    """The effect at which both stages' target tests would just pass, if the target delta
    moves one for one with the effect and nothing else does."""
    if not screen.categories:  # the naive rule: kept when the delta is above 0
        return -(screen.target_delta or 0.0)
    need = []
    for v in (screen, confirm):
        if v is None:
            continue
        t = v.category(TARGET)
        if t is None or t.threshold is None:
            return None
        need.append(t.threshold - t.ci_low)
        floor = getattr(t, "noise_floor", None)  # the legacy rule's point-estimate check
        if floor is not None:
            need.append(floor - t.delta)
    return max(need) if need else None


# ---- rates and intervals -----------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int

    @property
    def p(self) -> float:
        return self.hits / self.n if self.n else math.nan

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.hits, self.n)

    def __str__(self) -> str:
        lo, hi = self.ci
        return f"{self.p:5.1%} [{lo:4.1%},{hi:5.1%}]"


def quantile_ci(
    values: Sequence[float], q: float, z: float = 1.959964
) -> tuple[float, float, float]:
    """The q-quantile of `values` with a distribution-free 95% interval (order statistics)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    k = q * n
    half = z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(k - half) - 1))
    hi = int(min(n - 1, math.ceil(k + half)))
    point = float(x[min(n - 1, max(0, math.ceil(k) - 1))])
    return point, float(x[lo]), float(x[hi])


@dataclass(frozen=True)
class NullStats:
    false_keep: Rate
    critical_first: Rate
    """The first probe's screen failed on new critical failures (one test per session)."""
    guard_fail_first: Rate
    runs: float
    confirmations: float


def null_sessions(world: World, rule: Rule, sessions: int, seed0: int = 0) -> NullStats:
    """Sessions where no change does anything."""
    fk = crit = gf = runs = conf = 0
    for s in range(sessions):
        out = run_session(world, [], seed0 + s, rule)
        fk += bool(out.kept)
        first = out.screens[0][1]
        crit += critical_fired(first)
        gf += is_(first, VerdictStatus.GUARD_FAIL)
        runs += out.runs
        conf += out.confirmations
    return NullStats(
        Rate(fk, sessions), Rate(crit, sessions), Rate(gf, sessions),
        runs / sessions, conf / sessions,
    )  # fmt: skip


@dataclass(frozen=True)
class PowerStats:
    thresholds: list[float]
    stated: list[float]
    underpowered: Rate

    @property
    def stated_mde(self) -> float:
        return float(np.mean(self.stated)) if self.stated else math.nan

    def power_at(self, effect: float) -> Rate:
        return Rate(sum(t <= effect for t in self.thresholds), len(self.thresholds))

    def power_at_own(self) -> Rate:
        """Keep probability when each session's effect is its own stated MDE."""
        pairs = zip(self.thresholds, self.stated, strict=True)
        return Rate(sum(t <= m for t, m in pairs), len(self.stated))

    def true_mde(self, power: float = 0.8) -> tuple[float, float, float]:
        return quantile_ci(self.thresholds, power)


def power_sessions(
    world: World, rule: Rule, sessions: int, seed0: int = 0, *, power: bool = True
) -> PowerStats:
    """Per session, the smallest target effect the rule keeps (first change, first
    confirmation) and the MDE the rule stated after the baseline."""
    found = [keep_threshold(world, seed0 + s, rule, power=power) for s in range(sessions)]
    return PowerStats(
        [t.effect for t in found],
        [t.stated_mde for t in found if t.stated_mde is not None],
        Rate(sum(t.underpowered for t in found), sessions),
    )


def one_probe(
    world: World, change: Change, seed: int, rule: Rule, *, confirmation: bool = False
) -> AnyVerdict:
    """One probe of `change` against a fresh baseline: its screen verdict, or with
    `confirmation` the first confirmation's verdict on a second run of it."""
    lab = Lab(world, seed)
    baseline = [lab.run() for _ in range(world.seeds)]
    judge = rule.start(baseline, world)
    run = lab.run(change)
    if not confirmation:
        return judge.screen(run, index=world.seeds + 1)
    return judge.confirm(run, lab.run(change), 1, index=world.seeds + 2)


# ---- the worlds the test and the benchmark share ----------------------------------------------


@dataclass(frozen=True)
class Case:
    """A named world of tests/test_verdict_worlds.py and benchmarks/verdict_vs_naive.py."""

    name: str
    world: World
    mde: bool = False
    """Whether the test asserts stated vs true MDE and the power (unclipped 3-seed worlds)."""

    @property
    def label(self) -> str:
        return f"{self.name} | {self.world.describe()}"


FAST_CASES = [
    Case("model 1x", World(seeds=3, prompts=10, shift="model", shift_ratio=1.0), mde=True),
    Case("target-only 1x", World(seeds=3, prompts=5, shift="target", shift_ratio=1.0), mde=True),
    Case("model 0.5x, 2 seeds", World(seeds=2, prompts=5, shift_ratio=0.5)),
    Case("model 0.5x, clipped", World(seeds=3, prompts=3, shift_ratio=0.5, clip=True)),
]
SLOW_CASES = [
    Case("model 1x, 30 prompts", World(seeds=3, prompts=30, probes=20), mde=True),
    Case("target-only 1x, 3", World(seeds=3, prompts=3, probes=20, shift="target"), mde=True),
    Case("model 0.5x, 2 seeds, 10", World(seeds=2, prompts=10, probes=20, shift_ratio=0.5)),
    Case("model 1x, 2 seeds", World(seeds=2, prompts=3, probes=20)),
    Case("crit by seed", World(seeds=3, prompts=30, shift_ratio=0.5, critical="seed")),
]
#: Worlds only the benchmark's --all runs (the test file's time budget has no room for them).
BENCH_CASES = [
    Case("crit fixed", World(seeds=3, prompts=30, shift_ratio=0.5, critical="fixed")),
    Case("model 1x, 2 seeds, clip", World(seeds=2, prompts=10, clip=True)),
    Case("target-only 1x, 2 seeds", World(seeds=2, prompts=30, shift="target")),
]

WORLD_HEADER = (
    f"{'world':<45}{'rule':<6}{'false keep [95% CI]':>22}{'power@1x':>22}{'power@1.5x':>22}"
    f"{'@own':>6}{'stated':>8}{'true MDE [95% CI]':>25}{'true/st':>8}"
)


def world_row(
    case: Case, rule: str, false_keep: Rate, power: PowerStats, at: float | None = None
) -> str:
    """One line of the world table: power at 1x and 1.5x `at` (default: the rule's own mean
    stated MDE), "@own": at each session's own stated MDE."""
    stated = power.stated_mde if at is None else at
    true, lo, hi = power.true_mde()
    own = f"{power.power_at_own().p:.0%}" if power.stated else "—"
    ratio = f"{true / stated:.2f}" if math.isfinite(true) and stated > 0 else "inf"
    named = f"{stated:.2f}" if power.stated else f"({stated:.2f})"
    return (
        f"{case.world.describe():<45}{rule:<6}{false_keep!s:>22}{power.power_at(stated)!s:>22}"
        f"{power.power_at(1.5 * stated)!s:>22}{own:>6}{named:>8}"
        f"{f'{true:.2f} [{lo:.2f},{hi:.2f}]':>25}{ratio:>8}"
    )


__all__ = [
    "BENCH_CASES",
    "FAST_CASES",
    "GUARDS",
    "SLOW_CASES",
    "TARGET",
    "WIDE",
    "WORLD_HEADER",
    "AnyVerdict",
    "Case",
    "Change",
    "Judge",
    "Lab",
    "NaiveRule",
    "NewRule",
    "NullStats",
    "PowerStats",
    "Rate",
    "Rule",
    "SessionResult",
    "Threshold",
    "World",
    "critical_fired",
    "guard_passed",
    "is_",
    "keep_threshold",
    "null_sessions",
    "one_probe",
    "power_sessions",
    "quantile_ci",
    "run_session",
    "wilson",
    "world_row",
]

# A frozen copy of the verdict rule before issue 8 (agent/stats.py at commit e5bb3b5), kept only
# so that benchmarks/verdict_vs_naive.py and tests/test_verdict_worlds.py can measure the old
# and the new rule side by side. Verbatim but for its imports; never used by the agent.
"""Statistics the verdict is built from. Pure functions; randomness is seeded by the caller.

The noise model (docs/verdicts.md) splits a category's baseline noise into three parts, all in
score units:

- eval noise: how much one prompt's score moves between evaluations of the *same* trained
  model (measured from `eval_repeats` > 1; `repeat_sd`);
- per-prompt training noise: how much one prompt's (repeat-averaged) score moves between
  training seeds beyond the eval noise (`prompt_sd` holds both together);
- the seed component: a shift of the whole category between training seeds, shared by all
  its prompts (`seed_component_sd`). A bootstrap over prompts cannot see it, so the verdict
  adds it to the interval explicitly.

The minimum detectable effect (MDE) and the power table are computed from these parts for the
session's decision procedure: a candidate (one run, level `alpha`) that is then confirmed by a
replay (both runs pooled, level `confirm_alpha`).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from probes.spec import Score

#: Two-sided level of a candidate's interval: its lower bound is a one-sided 5% test.
CANDIDATE_CONFIDENCE = 0.90
#: Two-sided level of the pooled interval a confirmation (keep) must clear: one-sided 0.5%.
#: Stricter than the candidate's because a session makes several comparisons against one
#: shared baseline, and the replay shares that baseline with the candidate (so it is far from
#: an independent second test); see docs/verdicts.md for the measured false-keep rates.
CONFIRM_CONFIDENCE = 0.99
#: Two-sided level of the guards' family: non-inferiority at one-sided 5%, Holm across guards.
GUARD_CONFIDENCE = 0.90
#: Default one-sided levels derived from the two above.
ALPHA = (1.0 - CANDIDATE_CONFIDENCE) / 2
CONFIRM_ALPHA = (1.0 - CONFIRM_CONFIDENCE) / 2

_NORMAL = statistics.NormalDist()


def z_quantile(p: float) -> float:
    """The standard normal quantile of p (0 < p < 1)."""
    return _NORMAL.inv_cdf(p)


# ---- per-prompt summaries ----------------------------------------------------------------------


def prompt_means(runs: Sequence[Sequence[Score]]) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean over runs of each run's repeat-mean.

    Averaging repeats inside a run first weighs every run equally even when runs were
    evaluated a different number of times (a baseline with 3 repeats vs a probe with 1).
    """
    per_run = [run_prompt_means(run) for run in runs]
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for means in per_run:
        for key, value in means.items():
            acc[key].append(value)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def run_prompt_means(run: Sequence[Score]) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean over this run's eval repeats."""
    total: dict[tuple[str, str], float] = defaultdict(float)
    count: dict[tuple[str, str], int] = defaultdict(int)
    for s in run:
        key = (s.category, s.prompt_id)
        total[key] += s.score
        count[key] += 1
    return {k: v / count[k] for k, v in total.items()}


def category_means(runs: Sequence[Sequence[Score]]) -> dict[str, float]:
    """category -> mean over its prompts of the per-prompt means."""
    return means_by_category(prompt_means(runs))


def means_by_category(prompt_level: dict[tuple[str, str], float]) -> dict[str, float]:
    """category -> mean of the per-prompt values of its prompts."""
    acc: dict[str, list[float]] = defaultdict(list)
    for (category, _pid), mean in prompt_level.items():
        acc[category].append(mean)
    return {c: sum(v) / len(v) for c, v in acc.items()}


def repeats_of(run: Sequence[Score]) -> int:
    """The number of eval repeats in a run (the most any prompt was evaluated)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for s in run:
        counts[(s.category, s.prompt_id)] += 1
    return max(counts.values(), default=0)


def critical_prompts(
    run: Sequence[Score],
    categories: Iterable[str],
    critical_below: float | None = None,
    *,
    higher_is_better: bool = True,
) -> dict[str, int]:
    """category -> prompts that failed critically in this run.

    A prompt counts when more than half of its eval repeats are critical: a flag set by the
    evaluator, or a score past `critical_below`. The majority keeps a single judge glitch (an
    unparsable judge answer scored 0) from counting as a model failure once there are repeats.
    """
    wanted = set(categories)
    flags: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for s in run:
        if s.category not in wanted:
            continue
        bad = s.critical
        if critical_below is not None:
            past = s.score < critical_below if higher_is_better else s.score > critical_below
            bad = bad or past
        flags[(s.category, s.prompt_id)].append(bad)
    out = dict.fromkeys(wanted, 0)
    for (category, _pid), f in flags.items():
        if 2 * sum(f) > len(f):
            out[category] += 1
    return out


# ---- bootstrap and tests -----------------------------------------------------------------------


def bootstrap_means(
    diffs: Sequence[float] | np.ndarray,
    *,
    samples: int = 2000,
    seed: int = 0,
    extra_sd: float = 0.0,
    extra_dof: float = math.inf,
    clusters: Sequence[str] | None = None,
) -> np.ndarray:
    """Bootstrap replicates of the mean of per-prompt paired differences (resampling prompts).

    Replicate deviations are scaled by sqrt(n / (n - 1)) so their spread estimates the
    unbiased standard error (the plain percentile bootstrap is too narrow with 10-30 prompts).
    `extra_sd` adds an independent term to every replicate: noise shared by all prompts (the
    training-seed component), which resampling prompts cannot reproduce. It is normal, or a
    Student t with `extra_dof` degrees of freedom when `extra_sd` was itself estimated from few
    seeds (the t's heavier tails are the price of not knowing it well).

    `clusters` (one label per diff) resamples whole clusters instead of prompts — prompts that
    ask the same thing twice are not independent evidence — and each replicate is the mean
    over the prompts of the drawn clusters, so the point estimate stays the prompt mean.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros(samples)
    mean = float(d.mean())
    labels = sorted(set(clusters)) if clusters is not None else []
    if clusters is not None and len(labels) < n:
        index = {label: i for i, label in enumerate(labels)}
        which = np.array([index[c] for c in clusters])
        sums = np.bincount(which, weights=d, minlength=len(labels))
        counts = np.bincount(which, minlength=len(labels)).astype(float)
        g = len(labels)
        if g == 1:
            reps = np.full(samples, mean)
        else:
            idx = rng.integers(0, g, size=(samples, g))
            reps = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
            reps = mean + (reps - mean) * math.sqrt(g / (g - 1))
    elif n == 1:
        reps = np.full(samples, mean)
    else:
        idx = rng.integers(0, n, size=(samples, n))
        reps = d[idx].mean(axis=1)
        reps = mean + (reps - mean) * math.sqrt(n / (n - 1))
    if extra_sd > 0:
        if math.isfinite(extra_dof) and extra_dof > 0:
            reps = reps + extra_sd * rng.standard_t(extra_dof, size=samples)
        else:
            reps = reps + rng.normal(0.0, extra_sd, size=samples)
    return reps


def percentile_interval(replicates: np.ndarray, alpha_one_sided: float) -> tuple[float, float]:
    """The (alpha, 1 - alpha) percentiles of bootstrap replicates: a two-sided 1-2*alpha CI."""
    lo, hi = np.quantile(replicates, [alpha_one_sided, 1.0 - alpha_one_sided])
    return float(lo), float(hi)


def p_at_most(replicates: np.ndarray, threshold: float) -> float:
    """One-sided bootstrap p-value of H0 "the true mean is <= threshold".

    It is consistent with `percentile_interval`: p < alpha exactly when the interval's lower
    bound at that alpha is above the threshold (up to the +1 that keeps p > 0).
    """
    b = replicates.size
    return float((1 + np.count_nonzero(replicates <= threshold)) / (b + 1))


def paired_bootstrap_ci(
    diffs: Sequence[float], *, alpha: float = 0.10, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (two-sided, level 1-alpha) of the mean of paired diffs."""
    if not diffs:
        return (0.0, 0.0)
    return percentile_interval(bootstrap_means(diffs, samples=samples, seed=seed), alpha / 2)


def holm(p_values: Sequence[float], alpha: float) -> list[tuple[bool, float]]:
    """Holm's step-down procedure: for each p-value, (rejected, the level it was tested at).

    Sorted ascending, the i-th smallest (0-based) is tested at alpha / (m - i); at the first
    that fails, it and every larger p-value are not rejected (they keep the level they would
    have been tested at). Controls the family-wise error at alpha under any dependence.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    out: list[tuple[bool, float]] = [(False, alpha)] * m
    stopped = False
    for rank, i in enumerate(order):
        level = alpha / (m - rank)
        rejected = not stopped and p_values[i] <= level
        stopped = stopped or not rejected
        out[i] = (rejected, level)
    return out


def holm_alpha(m: int, alpha: float) -> float:
    """The most conservative Holm step for m tests (alpha / m); alpha when m <= 1."""
    return alpha / m if m > 1 else alpha


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    term = math.exp(-lam)
    cdf = term
    for i in range(1, k):
        term *= lam / i
        cdf += term
    return max(0.0, 1.0 - cdf)


# ---- noise model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseModel:
    """Baseline noise per category, measured from `seeds` training seeds x `repeats` evals.

    All spreads are standard deviations in score units. Serializable with to_dict/from_dict
    (the session stores it in its database row).
    """

    seed_sd: dict[str, float] = field(default_factory=dict)
    """SD of the category mean across baseline seeds (everything a seed change does)."""
    prompt_sd: dict[str, float] = field(default_factory=dict)
    """Pooled SD of one prompt's repeat-averaged score across seeds (training + eval noise)."""
    n_prompts: dict[str, int] = field(default_factory=dict)
    seeds: int = 0
    repeats: int = 1
    """Eval repeats per prompt in the baseline runs."""
    repeat_sd: dict[str, float] = field(default_factory=dict)
    """Pooled SD of one prompt's score between eval repeats of one model (only when
    repeats > 1; absent otherwise)."""
    seed_component_sd: dict[str, float] = field(default_factory=dict)
    """SD of the shift of the whole category between seeds, beyond per-prompt noise (pooled
    over categories; see build_noise_model)."""
    seed_component_dof: float = 0.0
    """Degrees of freedom of the seed component estimate (categories x (seeds - 1))."""
    baseline_mean: dict[str, float] = field(default_factory=dict)
    critical_per_run: dict[str, float] = field(default_factory=dict)
    """Mean critically failing prompts per baseline run."""

    def seed_spread(self, category: str) -> float:
        """The seed-to-seed SD of the category mean: what a seed change alone moves it by."""
        return self.seed_sd.get(category, 0.0)

    def eval_spread_measured(self, category: str) -> bool:
        """Whether eval-repeat noise was measured separately (baseline repeats > 1)."""
        return category in self.repeat_sd

    def _components(self, category: str) -> tuple[float, float, float]:
        """(per-prompt training variance, eval variance per evaluation, seed component var).

        Without repeats the eval share cannot be separated; it is then treated as all eval
        noise, which makes predictions for more repeats optimistic (flagged where shown).
        """
        w = self.prompt_sd.get(category, 0.0) ** 2  # at the baseline's repeats
        r = max(1, self.repeats)
        if category in self.repeat_sd:
            e = self.repeat_sd[category] ** 2
            u = max(0.0, w - e / r)
        else:
            e, u = w * r, 0.0
        t = self.seed_component_sd.get(category, 0.0) ** 2
        return u, e, t

    def run_variance(
        self, category: str, *, repeats: int | None = None, prompts: int | None = None
    ) -> float:
        """Variance of one run's category mean (per-prompt noise over prompts + seed part)."""
        u, e, t = self._components(category)
        r = repeats or self.repeats or 1
        n = prompts or self.n_prompts.get(category, 0)
        if n <= 0:
            return math.inf
        return (u + e / r) / n + t

    def diff_sd(
        self,
        category: str,
        *,
        probe_runs: int = 1,
        repeats: int | None = None,
        prompts: int | None = None,
        seeds: int | None = None,
    ) -> float:
        """SD of (mean of `probe_runs` probe runs) - (mean of `seeds` baseline seeds)."""
        s = seeds or self.seeds or 1
        a = self.run_variance(category, repeats=repeats, prompts=prompts)
        return math.sqrt(a * (1.0 / probe_runs + 1.0 / s))

    def seed_noise_of_diff(self, category: str, probe_runs: int, seeds: int | None = None) -> float:
        """SD the training-seed component adds to a probe-minus-baseline difference."""
        s = seeds or self.seeds or 1
        t = self.seed_component_sd.get(category, 0.0) ** 2
        return math.sqrt(t * (1.0 / max(1, probe_runs) + 1.0 / s))

    def noise_floor(self, category: str, probe_runs: int, seeds: int | None = None) -> float:
        """What a seed change alone moves the difference by: the seed-to-seed SD of the
        category mean, carried over to (mean of probe runs) - (mean of baseline seeds)."""
        s = seeds or self.seeds or 1
        return self.seed_spread(category) * math.sqrt(1.0 / max(1, probe_runs) + 1.0 / s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("n_prompts",):
            if key in values:
                values[key] = {c: int(v) for c, v in values[key].items()}
        return cls(**values)


def _sample_var(values: Sequence[float]) -> float:
    # statistics.variance is exact but slow (Fractions); float precision is plenty here.
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


def build_noise_model(
    baseline_runs: Sequence[Sequence[Score]], objective: Any = None
) -> NoiseModel:
    """Measure the baseline's noise per category from its seeds and eval repeats.

    `objective` (an agent.campaign.Objective, optional) supplies `critical_below` and the
    score direction for counting critical failures.
    """
    runs = [list(r) for r in baseline_runs if r]
    per_run = [run_prompt_means(run) for run in runs]
    categories = sorted({c for m in per_run for (c, _p) in m})
    repeats = max((repeats_of(r) for r in runs), default=1) or 1
    critical_below = getattr(objective, "critical_below", None)
    higher = getattr(objective, "higher_is_better", True)
    crit_runs = [
        critical_prompts(run, categories, critical_below, higher_is_better=higher) for run in runs
    ]

    # Within-run variance between eval repeats, pooled over prompts and runs.
    within: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for run in runs:
        acc: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in run:
            acc[(s.category, s.prompt_id)].append(s.score)
        for (c, _p), vals in acc.items():
            if len(vals) >= 2:
                within[c].append((_sample_var(vals), len(vals) - 1))

    seed_sd: dict[str, float] = {}
    prompt_sd: dict[str, float] = {}
    n_prompts: dict[str, int] = {}
    repeat_sd: dict[str, float] = {}
    excess: dict[str, float] = {}
    base_mean: dict[str, float] = {}
    for c in categories:
        pids = sorted({p for m in per_run for (cc, p) in m if cc == c})
        n = len(pids)
        n_prompts[c] = n
        run_means = [
            statistics.fmean([m[(c, p)] for p in pids if (c, p) in m])
            for m in per_run
            if any((c, p) in m for p in pids)
        ]
        v_seed = _sample_var(run_means)
        seed_sd[c] = math.sqrt(v_seed)
        base_mean[c] = statistics.fmean(run_means) if run_means else 0.0
        per_prompt_vars = [_sample_var([m[(c, p)] for m in per_run if (c, p) in m]) for p in pids]
        w = statistics.fmean(per_prompt_vars) if per_prompt_vars else 0.0
        prompt_sd[c] = math.sqrt(w)
        # The seed component is the part of the category-mean variance across seeds that the
        # per-prompt variance does not explain (the average cross-prompt covariance).
        if n and len(run_means) >= 2:
            excess[c] = v_seed - w / n
        if within.get(c):
            dof = sum(d for _v, d in within[c])
            repeat_sd[c] = math.sqrt(sum(v * d for v, d in within[c]) / dof)
    # With 2-3 seeds, one category's excess has 1-2 degrees of freedom: truncated at zero it
    # is mostly noise and biased upwards (about 4x the true variance on average in a world
    # with a small seed shift). Seeds shift a model as a whole, so the excess is pooled over
    # all categories (C x (S-1) degrees of freedom) before truncating. Categories whose own
    # shift is far larger than the others' are under-covered; docs/verdicts.md discusses it.
    pooled = math.sqrt(max(0.0, statistics.fmean(excess.values()))) if excess else 0.0
    component = dict.fromkeys(categories, pooled)
    critical = {
        c: (statistics.fmean([cr[c] for cr in crit_runs]) if crit_runs else 0.0) for c in categories
    }
    return NoiseModel(
        seed_sd=seed_sd,
        prompt_sd=prompt_sd,
        n_prompts=n_prompts,
        seeds=len(runs),
        repeats=repeats,
        repeat_sd=repeat_sd,
        seed_component_sd=component,
        seed_component_dof=float(len(excess) * (len(runs) - 1)),
        baseline_mean=base_mean,
        critical_per_run=critical,
    )


# ---- power -------------------------------------------------------------------------------------


def _norm_sf(x: np.ndarray) -> np.ndarray:
    """Upper tail of the standard normal, vectorized (erfc via numpy, |error| < 1.2e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * z)
    # Numerical Recipes' erfcc (Chebyshev fit).
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    half = 0.5 * erfc
    return np.where(x >= 0, half, 1.0 - half)


def two_stage_pass_probability(
    effect: float,
    sd_one: float,
    sd_pooled: float,
    *,
    threshold: float = 0.0,
    alpha: float = ALPHA,
    confirm_alpha: float = CONFIRM_ALPHA,
) -> float:
    """P(a candidate passes at `alpha` on one run AND the pooled pair passes at `confirm_alpha`).

    Normal approximation: D1 ~ N(effect, sd_one^2), D12 ~ N(effect, sd_pooled^2), and since
    both share the first run and the baseline, Cov(D1, D12) = sd_pooled^2.
    """
    if sd_one <= 0 or sd_pooled <= 0:
        return 1.0 if effect > threshold else 0.0
    rho = min(0.999999, sd_pooled / sd_one)
    c1 = z_quantile(1 - alpha) - (effect - threshold) / sd_one
    c2 = z_quantile(1 - confirm_alpha) - (effect - threshold) / sd_pooled
    z = np.linspace(c1, max(c1, 0.0) + 9.0, 1201)
    dens = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cond = _norm_sf((c2 - rho * z) / math.sqrt(1 - rho * rho))
    return float(np.trapezoid(dens * cond, z))


def minimum_detectable_effect(
    noise: NoiseModel,
    category: str,
    *,
    power: float = 0.8,
    alpha: float = ALPHA,
    confirm_alpha: float = CONFIRM_ALPHA,
    repeats: int | None = None,
    prompts: int | None = None,
    seeds: int | None = None,
    confirmation: bool = True,
) -> float:
    """The smallest true improvement kept with probability `power` (default 80%).

    For the session's procedure by default: a candidate on one run at one-sided `alpha`,
    confirmed by a replay with both runs pooled at `confirm_alpha`. `confirmation=False`
    gives the single-run test alone. `repeats`, `prompts` and `seeds` override the baseline's
    (eval repeats per prompt, prompts in the category, baseline seeds) to ask "what if".
    Returns inf when the category has no prompts.
    """
    kw: dict[str, Any] = {"repeats": repeats, "prompts": prompts, "seeds": seeds}
    sd1 = noise.diff_sd(category, probe_runs=1, **kw)
    if not math.isfinite(sd1):
        return math.inf
    if not confirmation:
        return (z_quantile(1 - alpha) + z_quantile(power)) * sd1
    sd2 = noise.diff_sd(category, probe_runs=2, **kw)
    if sd1 == 0:
        return 0.0
    lo, hi = 0.0, (z_quantile(1 - min(alpha, confirm_alpha)) + z_quantile(power) + 3) * sd1
    for _ in range(60):
        mid = (lo + hi) / 2
        p = two_stage_pass_probability(mid, sd1, sd2, alpha=alpha, confirm_alpha=confirm_alpha)
        lo, hi = (lo, mid) if p >= power else (mid, hi)
    return hi


def guard_min_tolerance(
    noise: NoiseModel,
    category: str,
    *,
    power: float = 0.8,
    alpha: float = ALPHA,
    guards: int = 1,
    repeats: int | None = None,
    prompts: int | None = None,
    seeds: int | None = None,
) -> float:
    """The smallest tolerance at which an unchanged guard passes with probability `power`.

    A guard passes when its lower bound stays above -tolerance on the candidate and on the
    pooled confirmation; with Holm over `guards` guards the strictest level is alpha/guards,
    used here (conservative).
    """
    kw: dict[str, Any] = {"repeats": repeats, "prompts": prompts, "seeds": seeds}
    sd1 = noise.diff_sd(category, probe_runs=1, **kw)
    sd2 = noise.diff_sd(category, probe_runs=2, **kw)
    if not math.isfinite(sd1):
        return math.inf
    if sd1 == 0:
        return 0.0
    level = alpha / max(1, guards)
    lo, hi = 0.0, (z_quantile(1 - level) + z_quantile(power) + 3) * sd1
    for _ in range(60):
        mid = (lo + hi) / 2
        p = two_stage_pass_probability(
            0.0, sd1, sd2, threshold=-mid, alpha=level, confirm_alpha=level
        )
        lo, hi = (lo, mid) if p >= power else (mid, hi)
    return hi


@dataclass(frozen=True)
class PowerRow:
    """One line of `autoresearch power`: the MDE with this many eval repeats."""

    repeats: int
    prompts: int
    seeds: int
    mde: float
    """Keep (candidate + confirmation) at 80% power."""
    mde_single_run: float
    """One run's test alone (what a session without confirmation would detect)."""
    measured: bool
    """False when the baseline had no repeats, so the gain from repeats is an upper bound."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def power_table(
    noise: NoiseModel,
    category: str,
    repeats: Sequence[int] = (1, 2, 3, 5, 8),
    *,
    power: float = 0.8,
    alpha: float = ALPHA,
    confirm_alpha: float = CONFIRM_ALPHA,
    prompts: int | None = None,
    seeds: int | None = None,
) -> list[PowerRow]:
    """MDE of `category` against the number of eval repeats (for `autoresearch power`)."""
    rows = []
    for r in repeats:
        kw: dict[str, Any] = {"repeats": r, "prompts": prompts, "seeds": seeds}
        rows.append(
            PowerRow(
                repeats=r,
                prompts=prompts or noise.n_prompts.get(category, 0),
                seeds=seeds or noise.seeds,
                mde=minimum_detectable_effect(
                    noise, category, power=power, alpha=alpha, confirm_alpha=confirm_alpha, **kw
                ),
                mde_single_run=minimum_detectable_effect(
                    noise, category, power=power, alpha=alpha, confirmation=False, **kw
                ),
                measured=noise.eval_spread_measured(category),
            )
        )
    return rows


@dataclass(frozen=True)
class PowerReport:
    """What the session prints after the baseline and `autoresearch power` prints."""

    target: str
    mde: float
    min_improvement: float
    table: list[PowerRow]
    guard_tolerance_needed: dict[str, float]
    """guard -> smallest tolerance a flat guard passes with 80% power."""
    fixes: list[str]
    """What would bring the MDE down to min_improvement (empty when it already is)."""
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["table"] = [r.to_dict() for r in self.table]
        return out


def _smallest(values: Iterable[int], mde_of: Any, goal: float) -> int | None:
    for v in values:
        if mde_of(v) <= goal:
            return v
    return None


def power_report(
    noise: NoiseModel, objective: Any, *, power: float = 0.8, alpha: float = ALPHA
) -> PowerReport:
    """MDE of the target, the table vs repeats, guard tolerances needed, and fixes.

    `objective` is an agent.campaign.Objective (target, guards, min_improvement,
    tolerance_for).
    """
    target = objective.target
    mde = minimum_detectable_effect(noise, target, power=power, alpha=alpha)
    goal = objective.min_improvement
    n = noise.n_prompts.get(target, 0)
    r, s = noise.repeats, noise.seeds
    fixes: list[str] = []
    warnings: list[str] = []
    if mde > goal and n > 0:
        warnings.append(
            f"min_improvement {goal:.2f} is below the smallest {target} effect this setup "
            f"detects at {power:.0%} power ({mde:.2f}): real gains between them will mostly "
            "read as inconclusive or discard"
        )
        if goal <= 0:
            fixes.append(
                "set objective.min_improvement to the smallest gain worth keeping; no setup "
                "detects arbitrarily small effects"
            )
        else:

            def by_prompts(k: int) -> float:
                return minimum_detectable_effect(noise, target, power=power, alpha=alpha, prompts=k)

            def by_repeats(k: int) -> float:
                return minimum_detectable_effect(noise, target, power=power, alpha=alpha, repeats=k)

            def by_seeds(k: int) -> float:
                return minimum_detectable_effect(noise, target, power=power, alpha=alpha, seeds=k)

            need_n = _smallest(range(n + 1, 20 * n + 1), by_prompts, goal)
            need_r = _smallest(range(r + 1, 33), by_repeats, goal)
            need_s = _smallest(range(s + 1, 17), by_seeds, goal)
            if need_n:
                fixes.append(f"{need_n} {target} prompts (now {n})")
            if need_r:
                note = (
                    ""
                    if noise.eval_spread_measured(target)
                    else (
                        " (optimistic: the baseline was evaluated once, so eval noise was not "
                        "separated from training noise)"
                    )
                )
                fixes.append(f"probe.eval_repeats {need_r} (now {r}){note}")
            if need_s:
                fixes.append(f"probe.baseline_seeds {need_s} (now {s})")
            if not fixes:
                fixes.append(
                    "no single lever reaches it: the training-seed spread of the probe itself "
                    "dominates; raise min_improvement or combine more prompts, repeats and seeds"
                )
    guards = list(getattr(objective, "guards", []))
    needed = {
        g: guard_min_tolerance(noise, g, power=power, alpha=alpha, guards=len(guards))
        for g in guards
        if noise.n_prompts.get(g, 0) > 0
    }
    for g, tol in needed.items():
        if objective.tolerance_for(g) < tol:
            warnings.append(
                f"guard {g}: tolerance {objective.tolerance_for(g):.2f} is below {tol:.2f}, the "
                f"smallest an unchanged {g} passes with {power:.0%} power; expect spurious "
                f"guard_fail (more {g} prompts or eval repeats, or a wider tolerance)"
            )
    return PowerReport(
        target=target,
        mde=mde,
        min_improvement=goal,
        table=power_table(noise, target, power=power, alpha=alpha),
        guard_tolerance_needed=needed,
        fixes=fixes,
        warnings=warnings,
    )

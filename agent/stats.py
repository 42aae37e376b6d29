"""Statistics the verdict is built from. Pure functions, no hidden randomness.

The unit of randomisation of a fine-tuning comparison is the training run: a seed moves the
whole model, so every prompt of one run shares that run's luck. The noise model therefore
measures, per category, the variance of *one run's category mean* across runs of the same
recipe (the baseline seeds, plus every other configuration the session trained more than once:
a candidate and its confirmation, a probe and its replay). It has the degrees of freedom those
runs really give: (seeds - 1) + sum(runs of each replicated configuration - 1), whatever the
number of categories or prompts. Tests on a probe-minus-baseline difference are Student t
tests with those degrees of freedom, so few seeds widen the interval instead of hiding.

The same spread is also split into parts (eval-repeat noise, per-prompt training noise, the
whole-category seed shift) only to answer "what if" questions: how many prompts, eval repeats
or seeds would bring the minimum detectable effect (MDE) down. docs/verdicts.md has the
reasoning and the measured error rates.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from probes.spec import Score

#: One-sided level of a candidate's target test (one run against the baseline).
SCREEN_ALPHA = 0.05
#: The session's guarantee: the chance that it keeps at least one change that does nothing.
SESSION_ALPHA = 0.05
#: One-sided level of each guard's non-inferiority test. Not corrected for the number of
#: guards: keeping needs every guard to pass, which is already a level-5% test of "every guard
#: is non-inferior" (intersection-union); the number of guards costs power, not error.
GUARD_ALPHA = 0.05
#: Family-wise level (Holm across guards) of the claim "this guard regressed".
REGRESS_ALPHA = 0.05
#: One-sided level of the test for new critical failures.
CRITICAL_ALPHA = 0.05
#: The power every "detectable" figure refers to.
POWER = 0.8
#: The power gate: a target MDE above this multiple of min_improvement is underpowered.
MDE_GATE_RATIO = 2.0


# ---- the t distribution (scipy is imported only when a test is computed) -------------------


def t_sf(x: float, dof: float) -> float:
    """P(T > x) for Student's t with `dof` degrees of freedom (normal when dof is inf)."""
    from scipy.special import ndtr, stdtr

    if math.isinf(x):
        return 0.0 if x > 0 else 1.0
    if not math.isfinite(dof):
        return float(ndtr(-x))
    return float(stdtr(dof, -x))


def t_quantile(p: float, dof: float) -> float:
    """The p-quantile of Student's t with `dof` degrees of freedom."""
    from scipy.special import ndtri, stdtrit

    if not math.isfinite(dof):
        return float(ndtri(p))
    return float(stdtrit(dof, p))


def c4(dof: float) -> float:
    """E[s] / sigma for a sample SD with `dof` degrees of freedom (normal data)."""
    if not math.isfinite(dof) or dof > 300:
        return 1.0
    if dof <= 0:
        return 1.0
    return math.exp(0.5 * math.log(2.0 / dof) + math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2))


# ---- per-prompt summaries ----------------------------------------------------------------------


def run_prompt_means(run: Sequence[Score]) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean over this run's eval repeats."""
    total: dict[tuple[str, str], float] = defaultdict(float)
    count: dict[tuple[str, str], int] = defaultdict(int)
    for s in run:
        key = (s.category, s.prompt_id)
        total[key] += s.score
        count[key] += 1
    return {k: v / count[k] for k, v in total.items()}


def prompt_means(runs: Sequence[Sequence[Score]]) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean over runs of each run's repeat-mean.

    Averaging repeats inside a run first weighs every run equally even when runs were
    evaluated a different number of times.
    """
    return average_prompt_means([run_prompt_means(run) for run in runs])


def average_prompt_means(
    per_run: Sequence[dict[tuple[str, str], float]],
) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean over runs of the runs' own per-prompt means."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for means in per_run:
        for key, value in means.items():
            acc[key].append(value)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def means_by_category(prompt_level: dict[tuple[str, str], float]) -> dict[str, float]:
    """category -> mean of the per-prompt values of its prompts."""
    acc: dict[str, list[float]] = defaultdict(list)
    for (category, _pid), mean in prompt_level.items():
        acc[category].append(mean)
    return {c: sum(v) / len(v) for c, v in acc.items()}


def category_means(runs: Sequence[Sequence[Score]]) -> dict[str, float]:
    """category -> mean over its prompts of the per-prompt means."""
    return means_by_category(prompt_means(runs))


def run_category_mean(
    means: dict[tuple[str, str], float], category: str, prompts: Sequence[str]
) -> float:
    """One run's mean over `prompts` of `category` (all of them must be present)."""
    return float(np.mean([means[(category, p)] for p in prompts]))


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
    evaluator, or a score past `critical_below`. The majority keeps a single judge glitch from
    counting as a model failure once there are repeats.
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


def anscombe(count: float) -> float:
    """2 sqrt(count + 3/8): a count on a scale where a Poisson count's variance is about 1
    and its skew is mostly gone, so a t test on it behaves (critical failures)."""
    return 2.0 * math.sqrt(count + 0.375)


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


# ---- session-level error control ---------------------------------------------------------------


def max_confirmations(budget_runs: int | None, baseline_seeds: int) -> int | None:
    """How many confirmations a run budget can pay for (each needs a probe and its run);
    None for a wall-clock budget (no bound known in advance)."""
    if budget_runs is None:
        return None
    return max(1, (budget_runs - baseline_seeds) // 2)


def confirmation_alpha(
    index: int, max_count: int | None, session_alpha: float = SESSION_ALPHA
) -> float:
    """The one-sided level of the session's `index`-th confirmation (1-based).

    Alpha spending: the j-th confirmation gets session_alpha / 2^j, and when the budget caps
    the number of confirmations at M, the M-th also gets what the geometric tail would have
    left (so M = 1 spends all of it, M = 2 gives 2.5% each). Every keep needs its confirmation
    to pass, so P(keep any change that does nothing) <= sum of the levels <= session_alpha,
    however many probes the budget allows and whatever their dependence (Bonferroni).
    """
    if index < 1:
        raise ValueError("confirmations are counted from 1")
    if max_count is not None and index > max_count:
        return 0.0
    level = session_alpha / 2**index
    if max_count is not None and index == max_count:
        level *= 2
    return level


# ---- noise model -------------------------------------------------------------------------------


def _sample_var(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


@dataclass(frozen=True)
class NoiseModel:
    """Run-to-run noise per category, measured from the baseline seeds (and replicated runs).

    All spreads are standard deviations in score units. Serializable with to_dict/from_dict
    (the session stores it in its database row).
    """

    seed_sd: dict[str, float] = field(default_factory=dict)
    """SD of one run's category mean between runs of one configuration: everything a seed
    change does (whole-model shift, per-prompt training noise, eval noise). Pooled over the
    baseline seeds and any replicated configuration; the verdict's t tests use it."""
    dof: dict[str, float] = field(default_factory=dict)
    """Degrees of freedom of seed_sd: (seeds - 1) + sum(replicate runs - 1)."""
    n_prompts: dict[str, int] = field(default_factory=dict)
    seeds: int = 0
    """Baseline runs the model was measured from."""
    repeats: int = 1
    """Eval repeats per prompt in the baseline runs."""
    prompt_sd: dict[str, float] = field(default_factory=dict)
    """Pooled SD of one prompt's repeat-averaged score across baseline seeds, beyond the
    shift of its whole category (per-prompt training noise + eval noise / repeats)."""
    repeat_sd: dict[str, float] = field(default_factory=dict)
    """Pooled SD of one prompt's score between eval repeats of one model (repeats > 1 only)."""
    seed_component_sd: dict[str, float] = field(default_factory=dict)
    """SD of the shift of the whole category between seeds, beyond per-prompt noise (this
    category's own estimate, truncated at 0; used only for "what if" questions)."""
    baseline_mean: dict[str, float] = field(default_factory=dict)
    critical_per_run: dict[str, float] = field(default_factory=dict)
    """Mean critically failing prompts per baseline run, per category."""
    critical_mean: float = 0.0
    """Mean critically failing prompts per baseline run, all judged categories together."""
    critical_sd: float = 0.0
    """SD between runs of one configuration of that count on the Anscombe scale
    (2 sqrt(count + 3/8), variance about 1 for a Poisson count), pooled like seed_sd."""
    """SD of that count between runs of one configuration (pooled like seed_sd)."""
    replicate_runs: int = 0
    """Runs of replicated non-baseline configurations pooled into the model."""

    def seed_spread(self, category: str) -> float:
        """The run-to-run SD of the category mean: what a seed change alone moves it by."""
        return self.seed_sd.get(category, 0.0)

    def dof_of(self, category: str) -> float:
        """Degrees of freedom of the category's spread (at least 1)."""
        return max(1.0, self.dof.get(category, max(1, self.seeds - 1)))

    def eval_spread_measured(self, category: str) -> bool:
        """Whether eval-repeat noise was measured separately (baseline repeats > 1)."""
        return category in self.repeat_sd

    def critical_dof(self) -> float:
        return max(1.0, float(self.seeds - 1 + self.replicate_runs))

    def _parts(self, category: str) -> tuple[float, float, float]:
        """(seed shift var, per-prompt training var, eval var per evaluation)."""
        w = self.prompt_sd.get(category, 0.0) ** 2
        r = max(1, self.repeats)
        if category in self.repeat_sd:
            e = self.repeat_sd[category] ** 2
            u = max(0.0, w - e / r)
        else:
            e, u = w * r, 0.0  # not separable: counted as eval noise (optimistic for repeats)
        t = self.seed_component_sd.get(category, 0.0) ** 2
        return t, u, e

    def run_variance(
        self, category: str, *, repeats: int | None = None, prompts: int | None = None
    ) -> float:
        """Variance of one run's category mean, optionally with other prompts or repeats.

        At the measured setup it is seed_sd²; a "what if" scales it by the ratio of the
        decomposed variance at the new setup to the one at the measured setup.
        """
        n0 = self.n_prompts.get(category, 0)
        if n0 <= 0:
            return math.inf
        measured = self.seed_spread(category) ** 2
        if repeats is None and prompts is None:
            return measured
        t, u, e = self._parts(category)
        r0, n = max(1, self.repeats), prompts or n0
        r = repeats or r0
        now = t + (u + e / r0) / n0
        then = t + (u + e / r) / n
        if now <= 0:
            return measured
        return measured * then / now

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
        v = self.run_variance(category, repeats=repeats, prompts=prompts)
        return math.sqrt(v * (1.0 / probe_runs + 1.0 / s))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        """Inverse of to_dict; a model stored by an older version (pooled seed component, no
        per-category dof) is read with the baseline's seeds - 1 degrees of freedom."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if "n_prompts" in values:
            values["n_prompts"] = {c: int(v) for c, v in values["n_prompts"].items()}
        if "dof" not in values:
            s = int(values.get("seeds", 2))
            values["dof"] = dict.fromkeys(values.get("seed_sd", {}), float(max(1, s - 1)))
        return cls(**values)


def build_noise_model(
    baseline_runs: Sequence[Sequence[Score]],
    objective: Any = None,
    *,
    replicates: Sequence[Sequence[Sequence[Score]]] = (),
) -> NoiseModel:
    """Measure run-to-run noise per category from the baseline seeds.

    `replicates` are groups of runs of one non-baseline configuration each (a candidate and
    its confirmation, a probe and its replay): their spread around their own mean adds
    (runs - 1) degrees of freedom, assuming a change does not change the noise. `objective`
    (an agent.campaign.Objective, optional) supplies the judged categories, `critical_below`
    and the score direction for counting critical failures.
    """
    runs = [list(r) for r in baseline_runs if r]
    per_run = [run_prompt_means(run) for run in runs]
    categories = sorted({c for m in per_run for (c, _p) in m})
    repeats = max((repeats_of(r) for r in runs), default=1) or 1
    judged = list(getattr(objective, "categories", categories))
    critical_below = getattr(objective, "critical_below", None)
    higher = getattr(objective, "higher_is_better", True)

    def crit_total(run: Sequence[Score]) -> int:
        counts = critical_prompts(run, judged, critical_below, higher_is_better=higher)
        return sum(counts.values())

    groups = [[list(r) for r in g if r] for g in replicates]
    groups = [g for g in groups if len(g) >= 2]
    group_means = [[run_prompt_means(r) for r in g] for g in groups]

    seed_sd: dict[str, float] = {}
    dof: dict[str, float] = {}
    n_prompts: dict[str, int] = {}
    prompt_sd: dict[str, float] = {}
    repeat_sd: dict[str, float] = {}
    component: dict[str, float] = {}
    base_mean: dict[str, float] = {}
    crit_cat: dict[str, float] = {}
    for c in categories:
        # Prompts every baseline run scored: run means over one prompt set are comparable.
        pids = sorted(set.intersection(*[{p for (cc, p) in m if cc == c} for m in per_run]))
        n_prompts[c] = len(pids)
        if not pids:
            seed_sd[c], dof[c], base_mean[c] = 0.0, 0.0, 0.0
            continue
        run_means = [run_category_mean(m, c, pids) for m in per_run]
        ss = _sample_var(run_means) * (len(run_means) - 1)
        df = float(len(run_means) - 1)
        for gm in group_means:
            shared = sorted(set.intersection(*[{p for (cc, p) in m if cc == c} for m in gm]))
            if not shared:
                continue
            means = [run_category_mean(m, c, shared) for m in gm]
            ss += _sample_var(means) * (len(means) - 1)
            df += len(means) - 1
        seed_sd[c] = math.sqrt(ss / df) if df > 0 else 0.0
        dof[c] = df
        base_mean[c] = float(np.mean(run_means))
        # Per-prompt noise beyond the run's shift: each prompt's deviation from its run's
        # mean, varied across seeds (the prompt x seed interaction), n/(n-1) de-biased.
        n = len(pids)
        per_prompt = [
            _sample_var([m[(c, p)] - rm for m, rm in zip(per_run, run_means, strict=True)])
            for p in pids
        ]
        w = float(np.mean(per_prompt)) * (n / (n - 1) if n > 1 else 1.0)
        prompt_sd[c] = math.sqrt(w)
        # This category's own seed shift: the category-mean variance that per-prompt noise
        # does not explain (the average cross-prompt covariance), truncated at zero.
        component[c] = math.sqrt(max(0.0, _sample_var(run_means) - w / len(pids)))
        within = []
        for run in runs:
            acc: dict[str, list[float]] = defaultdict(list)
            for s in run:
                if s.category == c:
                    acc[s.prompt_id].append(s.score)
            within += [(_sample_var(v), len(v) - 1) for v in acc.values() if len(v) >= 2]
        if within:
            total_dof = sum(d for _v, d in within)
            repeat_sd[c] = math.sqrt(sum(v * d for v, d in within) / total_dof)
    for c in judged:
        vals = [critical_prompts(r, [c], critical_below, higher_is_better=higher)[c] for r in runs]
        crit_cat[c] = float(np.mean(vals)) if vals else 0.0
    crit = [crit_total(r) for r in runs]
    crit_ss = _sample_var([anscombe(c) for c in crit]) * (len(crit) - 1)
    crit_df = len(crit) - 1
    for g in groups:
        counts = [anscombe(crit_total(r)) for r in g]
        crit_ss += _sample_var(counts) * (len(counts) - 1)
        crit_df += len(counts) - 1
    return NoiseModel(
        seed_sd=seed_sd,
        dof=dof,
        n_prompts=n_prompts,
        seeds=len(runs),
        repeats=repeats,
        prompt_sd=prompt_sd,
        repeat_sd=repeat_sd,
        seed_component_sd=component,
        baseline_mean=base_mean,
        critical_per_run=crit_cat,
        critical_mean=float(np.mean(crit)) if crit else 0.0,
        critical_sd=math.sqrt(crit_ss / crit_df) if crit_df > 0 else 0.0,
        replicate_runs=sum(len(g) - 1 for g in groups),
    )


# ---- one-run-vs-baseline tests ------------------------------------------------------------------


@dataclass(frozen=True)
class DiffTest:
    """A probe-minus-baseline difference of one category with its standard error and dof."""

    delta: float
    se: float
    dof: float

    def p_above(self, threshold: float) -> float:
        """One-sided p of H0 "the true difference is <= threshold"."""
        return t_sf(self._t(threshold), self.dof)

    def p_below(self, threshold: float) -> float:
        """One-sided p of H0 "the true difference is >= threshold"."""
        return t_sf(-self._t(threshold), self.dof)

    def interval(self, alpha_one_sided: float) -> tuple[float, float]:
        """The two-sided 1 - 2*alpha interval."""
        half = t_quantile(1.0 - alpha_one_sided, self.dof) * self.se
        return self.delta - half, self.delta + half

    def _t(self, threshold: float) -> float:
        d = self.delta - threshold
        if self.se <= 0:
            return math.copysign(math.inf, d) if d else 0.0
        return d / self.se


# ---- power: simulate the rule ------------------------------------------------------------------

_DRAWS = 20_000


def _standard_draws(seed_text: str, dof: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(hashlib.sha256(seed_text.encode()).hexdigest()[:15], 16))
    draws = {
        "z1": rng.standard_normal(_DRAWS),
        "z2": rng.standard_normal(_DRAWS),
        "zb": rng.standard_normal(_DRAWS),
    }
    draws["q"] = (
        rng.chisquare(dof, _DRAWS) / dof if math.isfinite(dof) else np.ones(_DRAWS, dtype=float)
    )
    return draws


def keep_probability(
    effect: float,
    *,
    sd: float,
    seeds: int,
    dof: float,
    threshold: float = 0.0,
    screen_alpha: float = SCREEN_ALPHA,
    confirm_alpha: float = SESSION_ALPHA / 2,
    seed_text: str = "",
) -> float:
    """P(the session keeps a change whose true target effect is `effect`), by simulation.

    The rule simulated is the session's: a candidate on one run against the mean of `seeds`
    baseline runs, a t test at `screen_alpha` above `threshold`; then a confirmation run with
    a fresh seed, alone against the same baseline (shared: the correlation is modelled), at
    `confirm_alpha`. The run-to-run SD `sd` is itself estimated (dof `dof`): the spread of that
    estimate is simulated too. Guards are assumed to pass (their power is reported apart).
    """
    if sd <= 0:
        return 1.0 if effect > threshold else 0.0
    d = _standard_draws(f"{seed_text}:{seeds}:{dof}", dof)
    need = _needed_shifts(
        d, seeds=seeds, dof=dof, screen_alpha=screen_alpha, confirm_alpha=confirm_alpha
    )
    return float(((effect - threshold) / sd > need).mean())


def _needed_shifts(
    d: dict[str, np.ndarray], *, seeds: int, dof: float, screen_alpha: float, confirm_alpha: float
) -> np.ndarray:
    """Per draw, the smallest standardized effect that passes both the screen and the
    confirmation: one pass over the draws answers every effect size."""
    if confirm_alpha <= 0:
        return np.full(d["q"].shape, np.inf)
    c1 = t_quantile(1.0 - screen_alpha, dof)
    c2 = t_quantile(1.0 - confirm_alpha, dof)
    se = np.sqrt(d["q"]) * math.sqrt(1.0 + 1.0 / seeds)
    zb = d["zb"] / math.sqrt(seeds)
    return np.maximum(c1 * se - d["z1"] + zb, c2 * se - d["z2"] + zb)


def _what_if(
    noise: NoiseModel,
    category: str,
    repeats: int | None,
    prompts: int | None,
    seeds: int | None,
) -> tuple[int, float, float]:
    """(baseline seeds, dof, de-biased run SD) of a setup, measured or "what if"."""
    s = seeds or noise.seeds or 2
    dof = noise.dof_of(category) + (s - noise.seeds if seeds else 0)
    sd = math.sqrt(noise.run_variance(category, repeats=repeats, prompts=prompts)) / c4(dof)
    return s, dof, sd


def minimum_detectable_effect(
    noise: NoiseModel,
    category: str,
    *,
    threshold: float = 0.0,
    power: float = POWER,
    screen_alpha: float = SCREEN_ALPHA,
    confirm_alpha: float = SESSION_ALPHA / 2,
    repeats: int | None = None,
    prompts: int | None = None,
    seeds: int | None = None,
) -> float:
    """The smallest true improvement the session keeps with probability `power`.

    Found by simulating the rule (`keep_probability`): per draw, the smallest effect that
    passes both tests; the MDE is their `power` quantile. `threshold`
    is min_improvement (the test is against it, so the MDE is always above it). The measured
    SD is de-biased (s / c4) so that the MDE is right on average over baselines. `repeats`,
    `prompts` and `seeds` ask "what if" (more seeds also add degrees of freedom). inf when the
    category has no prompts or the level is 0.
    """
    if noise.n_prompts.get(category, 0) <= 0 or confirm_alpha <= 0:
        return math.inf
    s, dof, sd = _what_if(noise, category, repeats, prompts, seeds)
    if sd == 0:
        return threshold
    # Standard draws from a fixed seed: the result depends on the data alone, and what-ifs
    # share their draws (common random numbers keep them monotone).
    d = _standard_draws(f"mde:{s}:{dof}", dof)
    kw: dict[str, Any] = dict(
        seeds=s, dof=dof, screen_alpha=screen_alpha, confirm_alpha=confirm_alpha
    )
    need = np.sort(_needed_shifts(d, **kw))
    hi = float(need[min(need.size - 1, math.ceil(power * need.size) - 1)])
    if not math.isfinite(hi):
        return math.inf
    return threshold + hi * sd


def guard_min_tolerance(
    noise: NoiseModel,
    category: str,
    *,
    power: float = POWER,
    alpha: float = GUARD_ALPHA,
    repeats: int | None = None,
    prompts: int | None = None,
    seeds: int | None = None,
) -> float:
    """The smallest tolerance at which an unchanged guard passes with probability `power`.

    A guard passes when the confirmation run's t test shows it above -tolerance at `alpha`:
    (tolerance + noise) / se > t_quantile, a noncentral t, solved in closed form (the SD
    de-biased like the MDE's).
    """
    from scipy.special import nctdtrinc

    if noise.n_prompts.get(category, 0) <= 0:
        return math.inf
    s, dof, sd = _what_if(noise, category, repeats, prompts, seeds)
    se = sd * math.sqrt(1.0 + 1.0 / s)
    if se == 0:
        return 0.0
    crit = t_quantile(1.0 - alpha, dof)
    ncp = float(nctdtrinc(dof, 1.0 - power, crit))
    return max(0.0, ncp * se)


@dataclass(frozen=True)
class PowerRow:
    """One line of `autoresearch power`: the MDE with this many eval repeats."""

    repeats: int
    prompts: int
    seeds: int
    mde: float
    """Kept by the whole rule (candidate + confirmation) with 80% probability."""
    measured: bool
    """False when the baseline had no repeats, so the gain from repeats is optimistic."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PowerReport:
    """What the session prints after the baseline, what the power gate decides on, and what
    `autoresearch power` prints."""

    target: str
    mde: float
    """The target effect the rule keeps with 80% probability (as the next confirmation)."""
    min_improvement: float
    confirm_alpha: float
    """The one-sided level the next confirmation is tested at (session alpha spending)."""
    table: list[PowerRow]
    guard_tolerance_needed: dict[str, float]
    """guard -> smallest tolerance an unchanged guard passes with 80% power."""
    underpowered: list[str]
    """Why the session cannot resolve what it asks (empty: it can)."""
    fixes: list[str]
    """What would make it resolvable, each alone."""
    warnings: list[str]
    session_alpha: float = SESSION_ALPHA
    """The session's guarantee: P(keeping any change that does nothing) <= this."""
    max_confirmations: int | None = None
    """Confirmations the budget can pay for (None: a wall-clock budget, unbounded)."""
    screen_alpha: float = SCREEN_ALPHA

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["table"] = [r.to_dict() for r in self.table]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PowerReport:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["table"] = [PowerRow(**r) for r in values.get("table", [])]
        return cls(**values)


def _smallest(values: range, ok: Any) -> int | None:
    """The smallest v in `values` with ok(v), for ok monotone in v (binary search)."""
    lo, hi = values.start, values.stop - 1
    if hi < lo or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def _guard_fix(noise: NoiseModel, guard: str, have: float, needed: float) -> str:
    """What alone would let an unchanged `guard` pass its tolerance `have` at 80% power."""
    m, r, s = noise.n_prompts[guard], noise.repeats, noise.seeds

    def passes(**kw: Any) -> bool:
        return guard_min_tolerance(noise, guard, **kw) <= have

    fix = [f"objective.guard_tolerance {guard}: {math.ceil(needed * 100) / 100:.2f}"]
    fix += _levers(guard, m, r, s, passes, _optimistic(noise, guard))
    return " or ".join(fix)


def _optimistic(noise: NoiseModel, category: str) -> str:
    """The caveat on eval-side levers when eval noise was not measured on its own (one eval
    per prompt: more repeats or prompts may not help if the noise is the training's)."""
    if noise.eval_spread_measured(category):
        return ""
    return (
        " (optimistic: with one eval per prompt, eval noise was not separated from training noise)"
    )


def _levers(category: str, n: int, r: int, s: int, ok: Any, optimistic: str = "") -> list[str]:
    """Each single lever (prompts of `category`, eval repeats, baseline seeds) that alone
    makes `ok(**what_if)` true, with the smallest value that does; when none does, the fewest
    seeds that do it together with more prompts; empty when nothing up to 16 seeds does."""
    need_n = _smallest(range(n + 1, 20 * n + 1), lambda k: ok(prompts=k))
    need_r = _smallest(range(r + 1, 33), lambda k: ok(repeats=k))
    need_s = _smallest(range(s + 1, 17), lambda k: ok(seeds=k))
    out = []
    if need_n:
        out.append(f"{need_n} {category} prompts (now {n}){optimistic if r == 1 else ''}")
    if need_r:
        out.append(f"probe.eval_repeats {need_r} (now {r}){optimistic}")
    if need_s:
        out.append(f"probe.baseline_seeds {need_s} (now {s})")
    if not out:
        both = _seeds_and_prompts(n, s, ok)
        if both:
            out.append(f"{both} {category} prompts together")
    return out


def _seeds_and_prompts(n: int, s: int, ok: Any) -> str | None:
    """The fewest baseline seeds that, with enough prompts, pass `ok(prompts=, seeds=)`:
    for a setup no single lever rescues (the whole-model seed shift dominates)."""
    for k in range(s + 1, 17):
        q = _smallest(range(n, 20 * n + 1), lambda p, k=k: ok(prompts=p, seeds=k))
        if q:
            return f"probe.baseline_seeds {k} with {q}"
    return None


def power_report(
    noise: NoiseModel,
    objective: Any,
    *,
    max_confirmations: int | None = None,
    screen_alpha: float = SCREEN_ALPHA,
    gate_ratio: float = MDE_GATE_RATIO,
) -> PowerReport:
    """MDE of the target, the table vs repeats, guard tolerances needed, the gate and fixes.

    `objective` is an agent.campaign.Objective (target, guards, min_improvement,
    tolerance_for); `max_confirmations` is what the budget can pay for (it sets the level of
    the first confirmation, which the MDE is computed at). The target is underpowered when
    its MDE exceeds `gate_ratio` x min_improvement (the session would mostly read real gains
    worth keeping as inconclusive);
    a guard is underpowered when an unchanged guard fails its tolerance more than 20% of the
    time (the session would refuse good changes for noise).
    """
    target = objective.target
    goal = float(objective.min_improvement)
    confirm_alpha = confirmation_alpha(1, max_confirmations)
    n = noise.n_prompts.get(target, 0)
    r, s = noise.repeats, noise.seeds

    def mde(**kw: Any) -> float:
        return minimum_detectable_effect(
            noise,
            target,
            threshold=goal,
            screen_alpha=screen_alpha,
            confirm_alpha=confirm_alpha,
            **kw,
        )

    value = mde()
    underpowered: list[str] = []
    fixes: list[str] = []
    warnings: list[str] = []
    optimistic = _optimistic(noise, target)
    limit = getattr(objective, "max_mde", None) or gate_ratio * goal
    if n == 0:
        underpowered.append(f"target {target} has no scored prompts")
    elif limit <= 0:
        warnings.append(
            f"objective.min_improvement is 0: the session keeps any effect it can show, and "
            f"the smallest it shows with {POWER:.0%} power is {value:.2f}"
        )
    elif value > limit:
        underpowered.append(
            f"target {target}: the smallest effect kept with {POWER:.0%} power is {value:.2f}, "
            f"above {limit:.2f} (objective.max_mde, default {gate_ratio:g} x min_improvement)"
        )
        levers = _levers(target, n, r, s, lambda **kw: mde(**kw) <= limit, optimistic)
        fixes += levers
        if not levers:
            fixes.append(
                f"no number of {target} prompts, eval repeats or baseline seeds (up to 16) "
                f"brings it to {limit:.2f}: the run-to-run shift of the whole category "
                "dominates"
            )
        fixes.append(f"objective.max_mde {math.ceil(value * 100) / 100:.2f} (accept seeing less)")
    guards = list(getattr(objective, "guards", []))
    needed: dict[str, float] = {}
    for g in guards:
        if noise.n_prompts.get(g, 0) <= 0:
            underpowered.append(f"guard {g} has no scored prompts")
            continue
        needed[g] = tol = guard_min_tolerance(noise, g)
        have = objective.tolerance_for(g)
        if have >= tol:
            continue
        underpowered.append(
            f"guard {g}: tolerance {have:.2f} is below {tol:.2f}, the smallest an unchanged "
            f"{g} passes with {POWER:.0%} power (spurious refusals)"
        )
        fixes.append(_guard_fix(noise, g, have, tol))
    table = [
        PowerRow(
            repeats=k,
            prompts=n,
            seeds=s,
            mde=mde(repeats=k) if n else math.inf,
            measured=noise.eval_spread_measured(target),
        )
        for k in (1, 2, 3, 5, 8)
    ]
    return PowerReport(
        target=target,
        mde=value,
        min_improvement=goal,
        confirm_alpha=confirm_alpha,
        table=table,
        guard_tolerance_needed=needed,
        underpowered=underpowered,
        fixes=fixes,
        warnings=warnings,
        max_confirmations=max_confirmations,
        screen_alpha=screen_alpha,
    )

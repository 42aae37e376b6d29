"""compare(probe, baseline, objective) -> Verdict. Pure: no I/O, no clock, no randomness.

The rule (docs/verdicts.md has the reasoning and the measured error rates):

- Per category, the difference of category means probe - baseline over the prompts both
  scored (pairing by prompt: prompt difficulty cancels), each run's mean over its eval
  repeats first, oriented so that positive is better.
- Its standard error comes from the run-to-run spread of the category mean (the noise
  model: baseline seeds plus replicated configurations), sqrt(V (1/k + 1/S)) for k probe runs
  against S baseline seeds, with a Student t on that spread's degrees of freedom. A training
  seed moves every prompt of a run at once, so the run, not the prompt, is the unit: three
  seeds give two degrees of freedom however many prompts there are. The per-prompt standard
  error of the paired differences is a floor (it also carries effect heterogeneity).
- Screen (one run, or a probe with its replay): the target must clear `min_improvement` at
  one-sided 5% -> `candidate`. A confirmation is a fresh-seed run judged *alone* (never pooled
  with the run that was selected for passing) at the session's alpha-spending level for that
  confirmation; its delta is the effect a keep reports (no winner's curse).
- Guards: a guard passes when it is shown non-inferior (its lower bound above -tolerance at
  one-sided 5%); it *regressed* only when its upper bound is below -tolerance (Holm across the
  guards at 5%). Regressed -> `guard_fail`; not shown safe on the confirmation -> `inconclusive`.
- Critical failures: a t test on the per-run count of critically failing prompts (on the
  Anscombe scale), with the run-to-run spread of that count (seed variation) and a Poisson
  floor; `guard_fail` when at least one more per run and p < 5%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from agent.campaign import Objective
from agent.stats import (
    CRITICAL_ALPHA,
    GUARD_ALPHA,
    REGRESS_ALPHA,
    SCREEN_ALPHA,
    SESSION_ALPHA,
    DiffTest,
    NoiseModel,
    PowerReport,
    PowerRow,
    anscombe,
    average_prompt_means,
    build_noise_model,
    critical_prompts,
    guard_min_tolerance,
    holm,
    means_by_category,
    minimum_detectable_effect,
    power_report,
    run_prompt_means,
)
from probes.spec import Score

__all__ = [
    "CategoryComparison",
    "NoiseModel",
    "PowerReport",
    "PowerRow",
    "Verdict",
    "VerdictStatus",
    "build_noise_model",
    "compare",
    "crash_verdict",
    "guard_min_tolerance",
    "minimum_detectable_effect",
    "power_report",
]


class VerdictStatus(str, Enum):
    """What the session concluded about one probe."""

    KEEP = "keep"  # confirmed by a fresh-seed run judged alone
    CANDIDATE = "candidate"  # passes the screen, awaiting its confirmation run
    DISCARD = "discard"  # the target is shown not to reach min_improvement
    GUARD_FAIL = "guard_fail"  # a guard shown to regress, or new critical failures
    INCONCLUSIVE = "inconclusive"  # the data cannot tell (interval straddles, guard unsafe)
    CRASH = "crash"  # the run failed; no scores


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    # Verdicts stored by an older version may lack new fields or carry dropped ones.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class CategoryComparison:
    """One category of a probe against the same-step baseline."""

    category: str
    role: str  # "target", "guard" or "other"
    n_prompts: int
    baseline_mean: float
    probe_mean: float
    delta: float  # oriented: positive is better
    ci_low: float
    ci_high: float
    threshold: float | None = None  # min_improvement (target) or -tolerance (guard)
    passed: bool | None = None  # target: cleared threshold; guard: shown non-inferior
    critical_baseline: float = 0.0  # critically failing prompts per run in the baseline
    critical_probe: float = 0.0  # ... per run in the probe (mean over its runs)
    p_value: float | None = None  # target: H0 delta <= threshold; guard: H0 delta <= -tol
    level: float | None = None  # one-sided level tested at; the interval is 1 - 2*level
    se: float = 0.0  # standard error of delta
    dof: float = math.inf  # degrees of freedom of the t behind se
    regressed: bool | None = None  # guard: shown below -tolerance (Holm)
    p_regress: float | None = None  # guard: H0 delta >= -tol
    p_worse: float | None = None  # H0 delta >= 0: small when the probe is shown worse

    def test(self) -> DiffTest:
        """The t test behind this comparison, to ask other questions of it."""
        return DiffTest(self.delta, self.se, self.dof)


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one probe (or its confirmation) to the baseline."""

    status: VerdictStatus
    reason: str
    target: str
    target_delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    guard_ok: bool | None = None  # every guard shown non-inferior, no regression, no criticals
    worst_guard: str | None = None
    worst_guard_delta: float | None = None
    new_critical: float = 0.0
    categories: tuple[CategoryComparison, ...] = field(default_factory=tuple)
    runs: int = 1  # probe runs the verdict is based on
    confidence: float | None = None  # two-sided level of the target interval
    failed_guards: tuple[str, ...] = ()  # guards not shown non-inferior, worst first
    critical_p: float | None = None  # p-value of the probe's critical count
    regressed_guards: tuple[str, ...] = ()  # guards shown to regress, worst first
    stage: str = "screen"  # "screen" (candidate test) or "confirm" (keep test)
    alpha: float | None = None  # one-sided level of the target test

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the session stores it; results.tsv reads from it)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["categories"] = [_finite(asdict(c)) for c in self.categories]
        data["failed_guards"] = list(self.failed_guards)
        data["regressed_guards"] = list(self.regressed_guards)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Inverse of to_dict; tolerates fields added or removed since it was stored."""
        data = _known(cls, dict(data))
        data["status"] = VerdictStatus(data["status"])
        data["categories"] = tuple(
            CategoryComparison(**_unfinite(_known(CategoryComparison, c)))
            for c in data.get("categories", ())
        )
        data["failed_guards"] = tuple(data.get("failed_guards", ()))
        data["regressed_guards"] = tuple(data.get("regressed_guards", ()))
        return cls(**data)

    def category(self, name: str) -> CategoryComparison | None:
        """The comparison of one category, or None."""
        return next((c for c in self.categories if c.category == name), None)


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    # JSON has no infinity: an unbounded dof, or the infinite SE and interval of a category no
    # run measured, is stored as null (these fields are never None in memory).
    for key in _UNBOUNDED:
        if isinstance(data.get(key), float) and math.isinf(data[key]):
            data[key] = None
    return data


def _unfinite(data: dict[str, Any]) -> dict[str, Any]:
    for key, value in _UNBOUNDED.items():
        if key in data and data[key] is None:
            data[key] = value
    return data


_UNBOUNDED = {"dof": math.inf, "se": math.inf, "ci_low": -math.inf, "ci_high": math.inf}
"""CategoryComparison's fields that may be infinite, with the value a stored null stands for."""


def signed(v: float) -> str:
    """+0.12 / -0.12, never -0.00."""
    r = round(v, 2)
    return f"{(r if r != 0 else 0.0):+.2f}"


def target_effect(verdict: dict[str, Any] | None) -> str | None:
    """A stored verdict's target effect, `facts +1.47 [+0.97, +1.96]`, or None when it has
    none (a crash, a baseline)."""
    v = verdict or {}
    if v.get("target_delta") is None or v.get("ci_low") is None:
        return None
    return (
        f"{v.get('target', 'target')} {signed(v['target_delta'])} "
        f"[{signed(v['ci_low'])}, {signed(v['ci_high'])}]"
    )


def crash_verdict(objective: Objective, reason: str) -> Verdict:
    """The verdict of a run that produced no usable scores."""
    return Verdict(status=VerdictStatus.CRASH, reason=reason, target=objective.target)


def _dof_text(dof: float) -> str:
    return "normal" if math.isinf(dof) else f"t, {dof:g} dof"


def _span(c: CategoryComparison) -> str:
    return f"{c.delta:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}]"


def compare(
    probe_runs: Sequence[Sequence[Score]],
    baseline_runs: Sequence[Sequence[Score]],
    objective: Objective,
    noise: NoiseModel | None = None,
    *,
    confirmation: bool = False,
    alpha: float | None = None,
) -> Verdict:
    """Judge a probe against its same-step baseline.

    `probe_runs` holds the runs of one configuration: one run, a probe and its replay (the
    screen pools them), or — with `confirmation=True` — the fresh-seed confirmation run alone
    (the candidate run it confirms must not be passed: it was selected for passing). `alpha` is
    the one-sided level of the target test: SCREEN_ALPHA by default for a screen, and for a
    confirmation the session's alpha-spending level (agent.stats.confirmation_alpha).
    `noise` is the session's noise model (built from `baseline_runs` when None). Eval-prompt
    groups need no special handling: the run-level test already treats all prompts of a run
    as dependent.
    """
    probe_runs = [list(r) for r in probe_runs if r]
    baseline_runs = [list(r) for r in baseline_runs if r]
    if not probe_runs:
        return crash_verdict(objective, "no scores")
    if not baseline_runs:
        return crash_verdict(objective, "no baseline scores")
    if noise is None:
        noise = build_noise_model(baseline_runs, objective)
    sign = 1.0 if objective.higher_is_better else -1.0
    k, s = len(probe_runs), len(baseline_runs)
    target_alpha = (
        alpha if alpha is not None else (SESSION_ALPHA / 2 if confirmation else SCREEN_ALPHA)
    )

    base_runs = [run_prompt_means(r) for r in baseline_runs]
    probe_means_per_run = [run_prompt_means(r) for r in probe_runs]
    base_prompts = average_prompt_means(base_runs)
    probe_prompts = average_prompt_means(probe_means_per_run)
    present = {c for (c, _p) in base_prompts} & {c for (c, _p) in probe_prompts}
    missing = [c for c in objective.categories if c not in present]
    if missing:
        return crash_verdict(objective, f"no scores for categories {missing}")
    others = sorted(present - set(objective.categories))
    base_means = means_by_category(base_prompts)
    probe_means = means_by_category(probe_prompts)

    tests: dict[str, DiffTest] = {}
    counts: dict[str, int] = {}
    for category in [*objective.categories, *others]:
        # Prompts every run on both sides scored (judge errors leave prompts out of a run).
        shared = sorted(
            set.intersection(
                *[{p for (c, p) in m if c == category} for m in base_runs + probe_means_per_run]
            )
        )
        counts[category] = len(shared)
        if not shared:
            tests[category] = DiffTest(0.0, math.inf, noise.dof_of(category))
            continue
        b = np.array([[m[(category, p)] for p in shared] for m in base_runs]).mean(axis=0)
        x = np.array([[m[(category, p)] for p in shared] for m in probe_means_per_run]).mean(axis=0)
        diffs = sign * (x - b)
        delta = float(diffs.mean())
        run_se = noise.seed_spread(category) * math.sqrt(1.0 / k + 1.0 / s)
        prompt_se = float(diffs.std(ddof=1) / math.sqrt(diffs.size)) if diffs.size > 1 else 0.0
        # The t's dof are the run-level spread's: the prompt floor only widens.
        tests[category] = DiffTest(delta, max(run_se, prompt_se), noise.dof_of(category))

    guard_ni_p = {g: tests[g].p_above(-objective.tolerance_for(g)) for g in objective.guards}
    guard_reg_p = [tests[g].p_below(-objective.tolerance_for(g)) for g in objective.guards]
    guard_holm = dict(zip(objective.guards, holm(guard_reg_p, REGRESS_ALPHA), strict=True))

    def criticals(run: Sequence[Score]) -> dict[str, int]:
        return critical_prompts(
            run,
            objective.categories,
            objective.critical_below,
            higher_is_better=objective.higher_is_better,
        )

    crit_base_cat = [criticals(r) for r in baseline_runs]
    crit_probe_cat = [criticals(r) for r in probe_runs]
    crit_base = [sum(c.values()) for c in crit_base_cat]
    crit_probe = [sum(c.values()) for c in crit_probe_cat]

    comparisons: list[CategoryComparison] = []
    for category in [*objective.categories, *others]:
        t = tests[category]
        role = (
            "target"
            if category == objective.target
            else "guard"
            if category in objective.guards
            else "other"
        )
        threshold: float | None = None
        passed: bool | None = None
        p_value: float | None = None
        regressed: bool | None = None
        p_regress: float | None = None
        if role == "target":
            level = target_alpha
            threshold = objective.min_improvement
            p_value = t.p_above(threshold)
            passed = level > 0 and p_value <= level
        elif role == "guard":
            level = GUARD_ALPHA
            threshold = -objective.tolerance_for(category)
            p_value = guard_ni_p[category]
            passed = p_value <= level
            regressed = guard_holm[category][0]
            p_regress = t.p_below(threshold)
        else:
            level = SCREEN_ALPHA
        low, high = t.interval(level if level > 0 else SCREEN_ALPHA)
        comparisons.append(
            CategoryComparison(
                category=category,
                role=role,
                n_prompts=counts[category],
                baseline_mean=base_means.get(category, 0.0),
                probe_mean=probe_means.get(category, 0.0),
                delta=t.delta,
                ci_low=low,
                ci_high=high,
                threshold=threshold,
                passed=passed,
                critical_baseline=(
                    sum(c.get(category, 0) for c in crit_base_cat) / s if role != "other" else 0.0
                ),
                critical_probe=(
                    sum(c.get(category, 0) for c in crit_probe_cat) / k if role != "other" else 0.0
                ),
                p_value=p_value,
                level=level,
                se=t.se,
                dof=t.dof,
                regressed=regressed,
                p_regress=p_regress,
                p_worse=t.p_below(0.0),
            )
        )

    target = comparisons[0]
    guards = [c for c in comparisons if c.role == "guard"]
    worst = min(guards, key=lambda c: c.delta) if guards else None
    unsafe = sorted((c for c in guards if not c.passed), key=lambda c: c.delta)
    regressed_list = sorted((c for c in guards if c.regressed), key=lambda c: c.delta)

    # Critical failures: the per-run count varies between seeds, so its spread is measured
    # like a category's (noise model). The test runs on the Anscombe scale, where a Poisson
    # count has variance about 1 (the floor: a baseline that happened to agree on its count
    # proves nothing) and the skew of rare counts no longer inflates the t test.
    base_rate = float(np.mean(crit_base))
    new_critical = float(np.mean(crit_probe)) - base_rate
    shift = float(np.mean([anscombe(c) for c in crit_probe])) - float(
        np.mean([anscombe(c) for c in crit_base])
    )
    # When the runs spread less than a Poisson count would, the floor is a known variance
    # (normal quantiles); when they spread more, their spread is an estimate (t, its dof).
    measured = noise.critical_sd**2
    var, dof = max(measured, 1.0), noise.critical_dof()
    crit_test = DiffTest(shift, math.sqrt(var * (1.0 / k + 1.0 / s)), dof)
    critical_p = crit_test.p_above(0.0)
    critical_fail = new_critical >= 1.0 and critical_p < CRITICAL_ALPHA

    assert target.threshold is not None
    common: dict[str, Any] = dict(
        target=objective.target,
        target_delta=target.delta,
        ci_low=target.ci_low,
        ci_high=target.ci_high,
        guard_ok=not unsafe and not regressed_list and not critical_fail,
        worst_guard=worst.category if worst else None,
        worst_guard_delta=worst.delta if worst else None,
        new_critical=new_critical,
        categories=tuple(comparisons),
        runs=k,
        confidence=1.0 - 2 * target_alpha if target_alpha > 0 else None,
        failed_guards=tuple(c.category for c in unsafe),
        critical_p=critical_p,
        regressed_guards=tuple(c.category for c in regressed_list),
        stage="confirm" if confirmation else "screen",
        alpha=target_alpha,
    )
    level_note = (
        f"{1 - 2 * target_alpha:.1%} interval, {_dof_text(target.dof)}"
        if target_alpha > 0
        else _dof_text(target.dof)
    )
    span = f"{_span(target)} ({level_note})"
    problems = []
    if critical_fail:
        problems.append(
            f"{new_critical:.1f} new critical failure(s) per run beyond the baseline's "
            f"{base_rate:.1f} (p={critical_p:.3f} < {CRITICAL_ALPHA:g})"
        )
    if regressed_list:
        problems.append(
            "guard regressed: "
            + "; ".join(
                f"{c.category} {_span(c)} entirely below {c.threshold:+.2f} "
                f"(p={c.p_regress:.3f}, Holm)"
                for c in regressed_list
            )
        )
    if problems:
        return Verdict(status=VerdictStatus.GUARD_FAIL, reason="; ".join(problems), **common)
    which = "the confirmation run (fresh seed, judged alone)" if confirmation else "one run"
    if target_alpha <= 0:
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            reason=(
                f"{objective.target} {_span(target)}: the session's error budget for "
                "confirmations is spent, so no further change can be kept"
            ),
            **common,
        )
    if target.passed:
        clears = (
            f"{objective.target} {span} on {which} clears {target.threshold:.2f} "
            f"(p={target.p_value:.4f} <= {target_alpha:.4g})"
        )
        if not confirmation:
            return Verdict(
                status=VerdictStatus.CANDIDATE,
                reason=f"{clears}; awaiting a fresh-seed confirmation",
                **common,
            )
        if unsafe:
            return Verdict(
                status=VerdictStatus.INCONCLUSIVE,
                reason=f"{clears}, but not shown safe: "
                + "; ".join(
                    f"{c.category} {_span(c)} reaches below {c.threshold:+.2f}" for c in unsafe
                ),
                **common,
            )
        return Verdict(
            status=VerdictStatus.KEEP,
            reason=f"{clears}; every guard shown above its tolerance",
            **common,
        )
    if target.ci_high < target.threshold:
        return Verdict(
            status=VerdictStatus.DISCARD,
            reason=f"{objective.target} {span} on {which} is below {target.threshold:.2f}",
            **common,
        )
    return Verdict(
        status=VerdictStatus.INCONCLUSIVE,
        reason=f"{objective.target} {span} on {which} straddles {target.threshold:.2f}",
        **common,
    )

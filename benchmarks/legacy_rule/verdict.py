# A frozen copy of the verdict rule before issue 8 (agent/verdict.py at commit e5bb3b5), kept only
# so that benchmarks/verdict_vs_naive.py and tests/test_verdict_worlds.py can measure the old
# and the new rule side by side. Verbatim but for its imports; never used by the agent.
"""compare(probe, baseline, objective) -> Verdict. Pure: no I/O, no clock, seeded randomness.

The rule (docs/verdicts.md has the reasoning and the measured error rates):

- Per category, per-prompt paired differences probe - baseline, each side averaged over its
  runs and eval repeats first (prompts are the resampling unit: a cluster bootstrap when there
  are repeats). Oriented so positive is better.
- The bootstrap over prompts cannot see the training-seed shift shared by all prompts of a
  category, so every replicate also gets a normal draw with the seed noise of the difference
  (the noise model's seed component, times sqrt(1/probe_runs + 1/baseline_seeds)).
- Target: the lower bound must clear `min_improvement` (one-sided 5% for a candidate; for a
  keep, both runs pooled at one-sided 1%), and the point estimate must exceed the noise floor
  (what a seed change alone moves the difference by, from the baseline's seed-to-seed spread).
- Guards: non-inferiority, one-sided p-value of "dropped by tolerance or more", Holm's
  step-down procedure across the guards at 5%.
- Critical failures: a prompt fails critically in a run when most of its repeats do; the probe
  fails when it has at least one more per run than the baseline and the count is beyond Poisson
  noise around the baseline's rate (p < 5%).
- The interval straddling the threshold is `inconclusive`, not a win.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from agent.campaign import Objective
from benchmarks.legacy_rule.stats import (
    CANDIDATE_CONFIDENCE,
    CONFIRM_CONFIDENCE,
    GUARD_CONFIDENCE,
    NoiseModel,
    PowerReport,
    PowerRow,
    bootstrap_means,
    build_noise_model,
    critical_prompts,
    guard_min_tolerance,
    holm,
    means_by_category,
    minimum_detectable_effect,
    p_at_most,
    percentile_interval,
    poisson_sf,
    power_report,
    power_table,
    prompt_means,
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
    "power_table",
]


class VerdictStatus(str, Enum):
    """What the session concluded about one probe."""

    KEEP = "keep"  # confirmed by a replay with a fresh seed
    CANDIDATE = "candidate"  # passes, awaiting its confirmation run
    DISCARD = "discard"  # no improvement beyond the noise (or worse)
    GUARD_FAIL = "guard_fail"  # a guard regressed beyond tolerance, or new critical failures
    INCONCLUSIVE = "inconclusive"  # the interval straddles the threshold
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
    passed: bool | None = None
    critical_baseline: float = 0.0  # critically failing prompts per run in the baseline
    critical_probe: float = 0.0  # ... per run in the probe (mean over its runs)
    p_value: float | None = None  # one-sided: H0 "delta <= threshold"
    level: float | None = None  # one-sided level tested at; the interval is 1 - 2*level
    noise_floor: float = 0.0  # target: the point estimate must exceed it
    seed_noise: float = 0.0  # SD added to the interval for the training-seed component


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one probe (or a probe and its confirmation) to the baseline."""

    status: VerdictStatus
    reason: str
    target: str
    target_delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    guard_ok: bool | None = None
    worst_guard: str | None = None
    worst_guard_delta: float | None = None
    new_critical: float = 0.0
    categories: tuple[CategoryComparison, ...] = field(default_factory=tuple)
    runs: int = 1  # probe runs the verdict is based on (2 after confirmation)
    confidence: float | None = None  # two-sided level of the target interval
    failed_guards: tuple[str, ...] = ()  # guards that did not pass (names), worst first
    critical_p: float | None = None  # Poisson p-value of the probe's critical count

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the session stores it; results.tsv reads from it)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["categories"] = [asdict(c) for c in self.categories]
        data["failed_guards"] = list(self.failed_guards)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Inverse of to_dict; tolerates fields added or removed since it was stored."""
        data = _known(cls, dict(data))
        data["status"] = VerdictStatus(data["status"])
        data["categories"] = tuple(
            CategoryComparison(**_known(CategoryComparison, c)) for c in data.get("categories", ())
        )
        data["failed_guards"] = tuple(data.get("failed_guards", ()))
        return cls(**data)

    def category(self, name: str) -> CategoryComparison | None:
        """The comparison of one category, or None."""
        return next((c for c in self.categories if c.category == name), None)


def crash_verdict(objective: Objective, reason: str) -> Verdict:
    """The verdict of a run that produced no usable scores."""
    return Verdict(status=VerdictStatus.CRASH, reason=reason, target=objective.target)


def _category_seed(seed: int, category: str) -> int:
    # Stable per category (not Python's salted hash), so adding a category moves no other.
    return (seed * 1_000_003 + zlib.crc32(category.encode())) % (2**63)


def compare(
    probe_runs: Sequence[Sequence[Score]],
    baseline_runs: Sequence[Sequence[Score]],
    objective: Objective,
    noise: NoiseModel | None = None,
    *,
    confirmation: bool = False,
    bootstrap_samples: int = 2000,
    confidence: float = CANDIDATE_CONFIDENCE,
    confirm_confidence: float = CONFIRM_CONFIDENCE,
    guard_confidence: float = GUARD_CONFIDENCE,
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
) -> Verdict:
    """Judge a probe against its same-step baseline.

    `probe_runs` holds one run, or the candidate and its confirmation replay
    (`confirmation=True`), in which case a pass is `keep` rather than `candidate`.
    `confidence` is the two-sided level of a candidate's target interval, `confirm_confidence`
    that of the pooled target interval a keep must clear, `guard_confidence` that of the guards'
    family (one-sided tests at half of 1 - it, Holm across guards).
    `noise` is the session's noise model (built from `baseline_runs` when None).
    `groups` maps prompt ids to their eval-prompt `group`: the bootstrap resamples groups.
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
    alpha = (1.0 - confidence) / 2
    target_alpha = (1.0 - confirm_confidence) / 2 if confirmation else alpha

    base_prompts = prompt_means(baseline_runs)
    probe_prompts = prompt_means(probe_runs)
    base_means = means_by_category(base_prompts)
    probe_means = means_by_category(probe_prompts)
    present = {c for (c, _p) in base_prompts} & {c for (c, _p) in probe_prompts}
    missing = [c for c in objective.categories if c not in present]
    if missing:
        return crash_verdict(objective, f"no scores for categories {missing}")
    others = sorted(present - set(objective.categories))

    crit_base = [
        critical_prompts(
            r,
            objective.categories,
            objective.critical_below,
            higher_is_better=objective.higher_is_better,
        )
        for r in baseline_runs
    ]
    crit_probe = [
        critical_prompts(
            r,
            objective.categories,
            objective.critical_below,
            higher_is_better=objective.higher_is_better,
        )
        for r in probe_runs
    ]

    # One bootstrap distribution per category; the tests and intervals are read from it.
    reps: dict[str, np.ndarray] = {}
    deltas: dict[str, float] = {}
    counts: dict[str, int] = {}
    seed_sd: dict[str, float] = {}
    for category in [*objective.categories, *others]:
        shared = sorted(p for (c, p) in base_prompts if c == category and (c, p) in probe_prompts)
        diffs = np.array(
            [sign * (probe_prompts[(category, p)] - base_prompts[(category, p)]) for p in shared]
        )
        seed_sd[category] = noise.seed_noise_of_diff(category, k, s)
        reps[category] = bootstrap_means(
            diffs,
            samples=bootstrap_samples,
            seed=_category_seed(seed, category),
            extra_sd=seed_sd[category],
            extra_dof=noise.seed_component_dof or math.inf,
            clusters=[groups.get(p, p) for p in shared] if groups else None,
        )
        deltas[category] = float(diffs.mean()) if diffs.size else 0.0
        counts[category] = int(diffs.size)

    # Guards: non-inferiority p-values, Holm step-down across them.
    guard_p = [p_at_most(reps[g], -objective.tolerance_for(g)) for g in objective.guards]
    guard_alpha = (1.0 - guard_confidence) / 2
    guard_holm = dict(zip(objective.guards, holm(guard_p, guard_alpha), strict=True))
    guard_pv = dict(zip(objective.guards, guard_p, strict=True))

    comparisons: list[CategoryComparison] = []
    for category in [*objective.categories, *others]:
        role = (
            "target"
            if category == objective.target
            else "guard"
            if category in objective.guards
            else "other"
        )
        floor = 0.0
        threshold: float | None
        passed: bool | None
        p_value: float | None
        if role == "target":
            level = target_alpha
            threshold = objective.min_improvement
            floor = noise.noise_floor(category, k, s)
            low, high = percentile_interval(reps[category], level)
            p_value = p_at_most(reps[category], threshold)
            passed = low > threshold and deltas[category] > floor
        elif role == "guard":
            passed, level = guard_holm[category]
            threshold = -objective.tolerance_for(category)
            p_value = guard_pv[category]
            low, high = percentile_interval(reps[category], level)
        else:
            level, threshold, passed, p_value = alpha, None, None, None
            low, high = percentile_interval(reps[category], level)
        comparisons.append(
            CategoryComparison(
                category=category,
                role=role,
                n_prompts=counts[category],
                baseline_mean=base_means.get(category, 0.0),
                probe_mean=probe_means.get(category, 0.0),
                delta=deltas[category],
                ci_low=low,
                ci_high=high,
                threshold=threshold,
                passed=passed,
                critical_baseline=(
                    sum(c.get(category, 0) for c in crit_base) / s if role != "other" else 0.0
                ),
                critical_probe=(
                    sum(c.get(category, 0) for c in crit_probe) / k if role != "other" else 0.0
                ),
                p_value=p_value,
                level=level,
                noise_floor=floor,
                seed_noise=seed_sd[category],
            )
        )

    target = comparisons[0]
    guards = [c for c in comparisons if c.role == "guard"]
    worst = min(guards, key=lambda c: c.delta) if guards else None
    failed = sorted((c for c in guards if not c.passed), key=lambda c: c.delta)

    # Critical failures: integer counts, so a Poisson test around the baseline's rate. The
    # +0.5 keeps a baseline that happened to show none from making any single one decisive.
    base_total = sum(sum(c.values()) for c in crit_base)
    probe_total = sum(sum(c.values()) for c in crit_probe)
    new_critical = probe_total / k - base_total / s
    critical_p = poisson_sf(probe_total, k * (base_total + 0.5) / s)
    critical_fail = new_critical >= 1.0 and critical_p < guard_alpha

    assert target.threshold is not None
    common: dict[str, Any] = dict(
        target=objective.target,
        target_delta=target.delta,
        ci_low=target.ci_low,
        ci_high=target.ci_high,
        guard_ok=not failed and not critical_fail,
        worst_guard=worst.category if worst else None,
        worst_guard_delta=worst.delta if worst else None,
        new_critical=new_critical,
        categories=tuple(comparisons),
        runs=k,
        confidence=1.0 - 2 * target_alpha,
        failed_guards=tuple(c.category for c in failed),
        critical_p=critical_p,
    )
    span = f"{target.delta:+.2f} [{target.ci_low:+.2f}, {target.ci_high:+.2f}]"
    problems = []
    if critical_fail:
        problems.append(
            f"{new_critical:.1f} new critical failure(s) per run beyond the baseline's "
            f"{base_total / s:.1f} (p={critical_p:.3f})"
        )
    if failed:
        problems.append(
            "guard regressed: "
            + "; ".join(
                f"{c.category} {c.delta:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}] not above "
                f"{c.threshold:+.2f} (p={c.p_value:.3f} > {c.level:.3f}, Holm)"
                for c in failed
            )
        )
    if problems:
        return Verdict(status=VerdictStatus.GUARD_FAIL, reason="; ".join(problems), **common)
    level_note = f"{1 - 2 * target_alpha:.0%} interval"
    if target.passed:
        status = VerdictStatus.KEEP if confirmation else VerdictStatus.CANDIDATE
        reason = (
            f"{objective.target} {span} ({level_note}) clears {target.threshold:.2f} and the "
            f"noise floor {target.noise_floor:.2f}"
        )
        if confirmation:
            reason += f", over {k} runs"
        return Verdict(status=status, reason=reason, **common)
    if target.ci_low > target.threshold:
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            reason=(
                f"{objective.target} {span} ({level_note}) clears {target.threshold:.2f} but "
                f"the effect is within the seed-to-seed noise floor {target.noise_floor:.2f}"
            ),
            **common,
        )
    if target.ci_high > target.threshold:
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            reason=f"{objective.target} {span} ({level_note}) straddles {target.threshold:.2f}",
            **common,
        )
    return Verdict(
        status=VerdictStatus.DISCARD,
        reason=f"{objective.target} {span} ({level_note}) does not reach {target.threshold:.2f}",
        **common,
    )

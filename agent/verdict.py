"""compare(probe, baseline, objective) -> Verdict. Pure: no I/O, no clock, seeded randomness.

The rule (docs/verdicts.md): per category, paired per-prompt differences between the probe and
the baseline (baseline = mean over its seeds and repeats), a bootstrap confidence interval, and
the baseline's seed-to-seed spread as the noise floor. The target must clear `min_improvement`
and the noise floor; every guard must stay above `-tolerance`; new critical failures fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from agent.campaign import Objective
from agent.stats import (
    NoiseModel,
    build_noise_model,
    category_means,
    holm_alpha,
    paired_bootstrap_ci,
    prompt_means,
)
from probes.spec import Score

__all__ = [
    "CategoryComparison",
    "NoiseModel",
    "Verdict",
    "VerdictStatus",
    "build_noise_model",
    "compare",
    "crash_verdict",
]


class VerdictStatus(str, Enum):
    """What the session concluded about one probe."""

    KEEP = "keep"  # confirmed by a replay with a fresh seed
    CANDIDATE = "candidate"  # passes, awaiting its confirmation run
    DISCARD = "discard"  # no improvement beyond the noise (or worse)
    GUARD_FAIL = "guard_fail"  # a guard regressed beyond tolerance, or new critical failures
    INCONCLUSIVE = "inconclusive"  # the interval straddles the threshold
    CRASH = "crash"  # the run failed; no scores


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
    critical_baseline: float = 0.0  # mean critical failures per run in the baseline
    critical_probe: float = 0.0


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["categories"] = [asdict(c) for c in self.categories]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        data = dict(data)
        data["status"] = VerdictStatus(data["status"])
        data["categories"] = tuple(CategoryComparison(**c) for c in data.get("categories", ()))
        return cls(**data)

    def category(self, name: str) -> CategoryComparison | None:
        return next((c for c in self.categories if c.category == name), None)


def crash_verdict(objective: Objective, reason: str) -> Verdict:
    """The verdict of a run that produced no usable scores."""
    return Verdict(status=VerdictStatus.CRASH, reason=reason, target=objective.target)


def _critical_count(run: Sequence[Score], category: str) -> float:
    # Criticals per evaluation pass, so runs with more repeats are comparable.
    cat = [s for s in run if s.category == category]
    repeats = max(1, len({s.repeat for s in cat}))
    return sum(1 for s in cat if s.critical) / repeats


def compare(
    probe_runs: Sequence[Sequence[Score]],
    baseline_runs: Sequence[Sequence[Score]],
    objective: Objective,
    noise: NoiseModel | None = None,
    *,
    confirmation: bool = False,
    bootstrap_samples: int = 2000,
    confidence: float = 0.90,
    seed: int = 0,
) -> Verdict:
    """Judge a probe against its same-step baseline.

    `probe_runs` holds one run, or the candidate and its confirmation replay
    (`confirmation=True`), in which case a pass is `keep` rather than `candidate`.
    """
    if not probe_runs or not any(probe_runs):
        return crash_verdict(objective, "no scores")
    if noise is None:
        noise = build_noise_model(baseline_runs, objective)
    sign = 1.0 if objective.higher_is_better else -1.0
    base_prompts = prompt_means(baseline_runs)
    probe_prompts = prompt_means(probe_runs)
    alpha = 1.0 - confidence
    guard_alphas = holm_alpha(len(objective.guards), alpha)

    comparisons: list[CategoryComparison] = []
    categories = sorted({c for (c, _p) in base_prompts} | {c for (c, _p) in probe_prompts})
    missing = [c for c in objective.categories if c not in categories]
    if missing:
        return crash_verdict(objective, f"no scores for categories {missing}")

    for category in [*objective.categories, *[c for c in categories if c not in objective.categories]]:
        shared = sorted(
            p for (c, p) in base_prompts if c == category and (c, p) in probe_prompts
        )
        diffs = [sign * (probe_prompts[(category, p)] - base_prompts[(category, p)]) for p in shared]
        role = (
            "target"
            if category == objective.target
            else "guard"
            if category in objective.guards
            else "other"
        )
        cat_alpha = guard_alphas if role == "guard" else alpha
        low, high = paired_bootstrap_ci(
            diffs, alpha=cat_alpha, samples=bootstrap_samples, seed=seed + len(comparisons)
        )
        delta = sum(diffs) / len(diffs) if diffs else 0.0
        crit_base = sum(_critical_count(r, category) for r in baseline_runs) / len(baseline_runs)
        crit_probe = sum(_critical_count(r, category) for r in probe_runs) / len(probe_runs)
        if role == "target":
            threshold: float | None = max(objective.min_improvement, noise.seed_spread(category))
            passed: bool | None = low > threshold
        elif role == "guard":
            threshold = -objective.tolerance_for(category)
            passed = low > threshold
        else:
            threshold, passed = None, None
        comparisons.append(
            CategoryComparison(
                category=category,
                role=role,
                n_prompts=len(shared),
                baseline_mean=category_means(baseline_runs).get(category, 0.0),
                probe_mean=category_means(probe_runs).get(category, 0.0),
                delta=delta,
                ci_low=low,
                ci_high=high,
                threshold=threshold,
                passed=passed,
                critical_baseline=crit_base,
                critical_probe=crit_probe,
            )
        )

    target = comparisons[0]
    guards = [c for c in comparisons if c.role == "guard"]
    worst = min(guards, key=lambda c: c.delta) if guards else None
    failed_guards = [c for c in guards if not c.passed]
    new_critical = sum(
        max(0.0, c.critical_probe - c.critical_baseline) for c in comparisons if c.role != "other"
    )
    common = dict(
        target=objective.target,
        target_delta=target.delta,
        ci_low=target.ci_low,
        ci_high=target.ci_high,
        guard_ok=not failed_guards and new_critical < 1.0,
        worst_guard=worst.category if worst else None,
        worst_guard_delta=worst.delta if worst else None,
        new_critical=new_critical,
        categories=tuple(comparisons),
        runs=len(probe_runs),
    )
    assert target.threshold is not None
    if failed_guards:
        names = ", ".join(
            f"{c.category} {c.delta:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}] < {c.threshold:+.2f}"
            for c in failed_guards
        )
        return Verdict(status=VerdictStatus.GUARD_FAIL, reason=f"guard regressed: {names}", **common)  # type: ignore[arg-type]
    if new_critical >= 1.0:
        return Verdict(
            status=VerdictStatus.GUARD_FAIL,
            reason=f"{new_critical:.1f} new critical failure(s) per run beyond the baseline",
            **common,  # type: ignore[arg-type]
        )
    span = f"{target.delta:+.2f} [{target.ci_low:+.2f}, {target.ci_high:+.2f}]"
    if target.passed:
        status = VerdictStatus.KEEP if confirmation else VerdictStatus.CANDIDATE
        reason = f"{objective.target} {span} clears {target.threshold:.2f}"
        if confirmation:
            reason += f" over {len(probe_runs)} runs"
        return Verdict(status=status, reason=reason, **common)  # type: ignore[arg-type]
    if target.ci_high > target.threshold:
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            reason=f"{objective.target} {span} straddles {target.threshold:.2f}",
            **common,  # type: ignore[arg-type]
        )
    return Verdict(
        status=VerdictStatus.DISCARD,
        reason=f"{objective.target} {span} does not reach {target.threshold:.2f}",
        **common,  # type: ignore[arg-type]
    )

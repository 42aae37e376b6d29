"""Statistics the verdict is built from. Pure functions; randomness is seeded by the caller."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from probes.spec import Score


def prompt_means(runs: Sequence[Sequence[Score]]) -> dict[tuple[str, str], float]:
    """(category, prompt_id) -> mean score over all runs and repeats."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        for s in run:
            acc[(s.category, s.prompt_id)].append(s.score)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def category_means(runs: Sequence[Sequence[Score]]) -> dict[str, float]:
    """category -> mean over its prompts of the per-prompt means."""
    acc: dict[str, list[float]] = defaultdict(list)
    for (category, _pid), mean in prompt_means(runs).items():
        acc[category].append(mean)
    return {c: sum(v) / len(v) for c, v in acc.items()}


def paired_bootstrap_ci(
    diffs: Sequence[float], *, alpha: float = 0.10, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (two-sided, level 1-alpha) of the mean of paired diffs."""
    n = len(diffs)
    if n == 0:
        return (0.0, 0.0)
    if n == 1:
        return (diffs[0], diffs[0])
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(samples))
    lo = means[max(0, int(math.floor(alpha / 2 * samples)))]
    hi = means[min(samples - 1, int(math.ceil((1 - alpha / 2) * samples)) - 1)]
    return (lo, hi)


def holm_alpha(m: int, alpha: float) -> float:
    """The most conservative Holm step for m tests (alpha / m); alpha when m <= 1."""
    return alpha / m if m > 1 else alpha


@dataclass(frozen=True)
class NoiseModel:
    """Baseline noise per category, measured from the repeated baseline seeds."""

    seed_sd: dict[str, float] = field(default_factory=dict)  # sd of category means across seeds
    prompt_sd: dict[str, float] = field(default_factory=dict)  # sd of per-prompt seed differences
    n_prompts: dict[str, int] = field(default_factory=dict)
    seeds: int = 0

    def seed_spread(self, category: str) -> float:
        """The noise floor an effect must exceed: the seed-to-seed sd of the category mean."""
        return self.seed_sd.get(category, 0.0)


def build_noise_model(baseline_runs: Sequence[Sequence[Score]], objective: object = None) -> NoiseModel:
    """Measure the baseline's seed-to-seed spread per category."""
    per_seed = [category_means([run]) for run in baseline_runs]
    categories = sorted({c for m in per_seed for c in m})
    seed_sd: dict[str, float] = {}
    prompt_sd: dict[str, float] = {}
    n_prompts: dict[str, int] = {}
    for c in categories:
        values = [m[c] for m in per_seed if c in m]
        seed_sd[c] = statistics.stdev(values) if len(values) >= 2 else 0.0
        pm = [prompt_means([run]) for run in baseline_runs]
        pids = sorted({p for m in pm for (cc, p) in m if cc == c})
        n_prompts[c] = len(pids)
        spreads = []
        for p in pids:
            vals = [m[(c, p)] for m in pm if (c, p) in m]
            if len(vals) >= 2:
                spreads.append(statistics.stdev(vals))
        prompt_sd[c] = statistics.fmean(spreads) if spreads else 0.0
    return NoiseModel(seed_sd=seed_sd, prompt_sd=prompt_sd, n_prompts=n_prompts, seeds=len(baseline_runs))

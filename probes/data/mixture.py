"""The data-mixture lane: which examples (and how many of each) a probe trains on.

Two steps, both pure and deterministic given the seed:

1. Source weights (`weight_<source>` in the recipe, else the manifest's `weight`) are repeat
   factors: 2 repeats every example of the source twice, 1.5 repeats it once and adds a
   seeded half, 0.5 keeps a seeded half, 0 leaves the source out.
2. A strategy (seed 000's three) resamples that weighted pool by class, a class being the
   example's `category` or its answer `pattern` (`mixture_by`):

   - `natural`: the weighted pool as it is (capped at `num_examples` by a seeded sample);
   - `stratified`: the same number of examples of every class (rare classes are repeated);
   - `proportional`: natural class proportions, with every class raised to at least
     `mixture_floor` of the total (the others scaled down to make room).

   The total is `num_examples` when given, else the weighted pool's size, so strategies
   compare at the same training-set size. Examples without a `pattern` form the class
   `other` when mixing by pattern.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar

from probes.data.manifest import Example

Strategy = Literal["natural", "stratified", "proportional"]
MixBy = Literal["category", "pattern"]
STRATEGIES: tuple[str, ...] = ("natural", "stratified", "proportional")
MIX_BY: tuple[str, ...] = ("category", "pattern")
NO_PATTERN = "other"

T = TypeVar("T")


class MixtureError(ValueError):
    """Mixture settings that cannot be satisfied; the message says which and why."""


def rng_for(seed: int, *labels: str) -> random.Random:
    """A random generator derived from the seed and labels (stable across Python versions)."""
    digest = hashlib.sha256(":".join([str(seed), *labels]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def resample(items: Sequence[T], count: int, rng: random.Random) -> list[T]:
    """`count` items: whole copies of `items` plus a seeded sample without replacement of the
    rest, in their original order (ordering is the curriculum's job)."""
    if count <= 0 or not items:
        return []
    whole, rest = divmod(count, len(items))
    picked = sorted(rng.sample(range(len(items)), rest))
    return [x for _ in range(whole) for x in items] + [items[i] for i in picked]


def apply_weights(
    by_source: Mapping[str, Sequence[Example]], weights: Mapping[str, float], seed: int
) -> list[Example]:
    """The weighted pool: every source repeated by its weight (missing weights are 1)."""
    pool: list[Example] = []
    for name in sorted(by_source):
        weight = float(weights.get(name, 1.0))
        if not math.isfinite(weight) or weight < 0:
            raise MixtureError(f"weight_{name} must be a finite number >= 0, got {weight!r}")
        items = by_source[name]
        count = round(weight * len(items))
        pool.extend(resample(items, count, rng_for(seed, "weight", name)))
    return pool


def class_of(example: Example, by: str) -> str:
    if by == "category":
        return example.category
    if by == "pattern":
        return example.pattern if example.pattern is not None else NO_PATTERN
    raise MixtureError(f"mixture_by must be one of {list(MIX_BY)}, got {by!r}")


def floored_shares(natural: Mapping[str, float], floor: float) -> dict[str, float]:
    """Natural shares with every class raised to `floor`, the rest scaled down (sum 1)."""
    k = len(natural)
    if k == 0:
        return {}
    if not 0 <= floor <= 1 / k + 1e-12:
        raise MixtureError(
            f"mixture_floor must be in [0, 1/{k}] for {k} classes (or every class could not "
            f"get it), got {floor!r}"
        )
    total = sum(natural.values())
    shares = {c: v / total for c, v in natural.items()}
    fixed: set[str] = set()
    while True:  # water-filling: raise the smallest to the floor until the rest stay above it
        free = [c for c in shares if c not in fixed]
        room = 1.0 - floor * len(fixed)
        free_total = sum(shares[c] for c in free)
        scaled = {c: shares[c] / free_total * room for c in free} if free_total > 0 else {}
        below = [c for c in free if scaled.get(c, 0.0) < floor]
        if not below:
            return {**{c: floor for c in fixed}, **scaled}
        fixed.update(below)


def largest_remainder(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer counts summing to `total` closest to `shares` (Hamilton's method, ties by name)."""
    raw = {c: s * total for c, s in shares.items()}
    counts = {c: math.floor(v) for c, v in raw.items()}
    left = total - sum(counts.values())
    order = sorted(raw, key=lambda c: (-(raw[c] - counts[c]), c))
    for c in order[:left]:
        counts[c] += 1
    return counts


def mix(
    by_source: Mapping[str, Sequence[Example]],
    *,
    strategy: str = "natural",
    by: str = "category",
    floor: float = 0.05,
    weights: Mapping[str, float] | None = None,
    num_examples: int | None = None,
    seed: int = 0,
) -> list[Example]:
    """The training pool (a multiset, grouped by class) for the given mixture settings."""
    if strategy not in STRATEGIES:
        raise MixtureError(f"mixture must be one of {list(STRATEGIES)}, got {strategy!r}")
    if num_examples is not None and num_examples <= 0:
        raise MixtureError(f"num_examples must be a positive integer, got {num_examples!r}")
    pool = apply_weights(by_source, weights or {}, seed)
    if not pool:
        raise MixtureError("every source has weight 0: there is nothing to train on")
    total = num_examples if num_examples is not None else len(pool)
    if strategy == "natural":
        return resample(pool, total, rng_for(seed, "natural"))
    classes: dict[str, list[Example]] = {}
    for ex in pool:
        classes.setdefault(class_of(ex, by), []).append(ex)
    if strategy == "stratified":
        shares = {c: 1.0 / len(classes) for c in classes}
    else:
        shares = floored_shares({c: len(v) for c, v in classes.items()}, floor)
    counts = largest_remainder(shares, total)
    out: list[Example] = []
    for c in sorted(classes):
        out.extend(resample(classes[c], counts[c], rng_for(seed, strategy, c)))
    return out


def class_counts(examples: Sequence[Example], by: str = "category") -> dict[str, int]:
    """Examples per class, sorted by class name."""
    counts: dict[str, int] = {}
    for ex in examples:
        key = class_of(ex, by)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))

"""The curriculum lane: the order a probe sees its examples in. Pure, deterministic given the seed.

- `shuffle`: a seeded random order;
- `source_first`: the examples of `curriculum_source` first, then the rest (each part shuffled);
- `easy_to_hard` / `hard_to_easy`: by the examples' `difficulty` (ties in seeded order);
  every example needs a `difficulty`;
- `category_blocks`: one block per category (categories by name), shuffled within a block.

The trainer trains in exactly this order (a sequential sampler); when a probe needs more
examples than the pool holds, each further pass is ordered again with its own seed, so the
curriculum applies to every pass (see `passes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from probes.data.manifest import Example
from probes.data.mixture import rng_for

CURRICULA: tuple[str, ...] = (
    "shuffle",
    "source_first",
    "easy_to_hard",
    "hard_to_easy",
    "category_blocks",
)


class CurriculumError(ValueError):
    """A curriculum that cannot be applied to these examples; the message says why."""


def _shuffled(examples: Sequence[Example], seed: int, label: str, k: int) -> list[Example]:
    out = list(examples)
    rng_for(seed, "curriculum", label, str(k)).shuffle(out)
    return out


def order(
    examples: Sequence[Example],
    curriculum: str = "shuffle",
    *,
    seed: int = 0,
    source: str | None = None,
    pass_index: int = 0,
) -> list[Example]:
    """`examples` in the order of `curriculum` (`pass_index` varies the seeded parts)."""
    k = pass_index
    if curriculum not in CURRICULA:
        raise CurriculumError(f"curriculum must be one of {list(CURRICULA)}, got {curriculum!r}")
    if curriculum == "shuffle":
        return _shuffled(examples, seed, "shuffle", k)
    if curriculum == "source_first":
        if source is None:
            raise CurriculumError("curriculum source_first needs curriculum_source (a source name)")
        first = [ex for ex in examples if ex.source == source]
        if not first:
            present = sorted({ex.source for ex in examples})
            raise CurriculumError(
                f"curriculum_source {source!r} has no examples in the training set "
                f"(sources present: {present})"
            )
        rest = [ex for ex in examples if ex.source != source]
        return _shuffled(first, seed, "first", k) + _shuffled(rest, seed, "rest", k)
    if curriculum in ("easy_to_hard", "hard_to_easy"):
        missing = [ex for ex in examples if ex.difficulty is None]
        if missing:
            sources = sorted({ex.source for ex in missing})
            raise CurriculumError(
                f"curriculum {curriculum} needs a 'difficulty' on every example; "
                f"{len(missing)} example(s) lack one (sources: {sources})"
            )
        sign = 1.0 if curriculum == "easy_to_hard" else -1.0
        # Shuffle first, then a stable sort: ties come out in a seeded order.
        ties = _shuffled(examples, seed, "ties", k)
        return sorted(ties, key=lambda ex: sign * (ex.difficulty or 0))
    blocks: dict[str, list[Example]] = {}
    for ex in examples:
        blocks.setdefault(ex.category, []).append(ex)
    return [ex for c in sorted(blocks) for ex in _shuffled(blocks[c], seed, f"block:{c}", k)]


def passes(
    examples: Sequence[Example],
    total: int,
    curriculum: str = "shuffle",
    *,
    seed: int = 0,
    source: str | None = None,
) -> list[Example]:
    """Exactly `total` examples: ordered passes over `examples` (each pass with its own
    seeded order), the last one cut short."""
    if not examples:
        raise CurriculumError("the training set is empty")
    out: list[Example] = []
    k = 0
    while len(out) < total:
        out.extend(order(examples, curriculum, seed=seed, source=source, pass_index=k))
        k += 1
    return out[:total]

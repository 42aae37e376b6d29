"""Data lanes: the manifest (what data there is), the mixture (which examples, how many of
each) and the curriculum (in what order) — composed by `build_training_set` into the exact
sequence of examples a probe trains on, with a record (hash, counts, ids) for replay.

Pure Python: no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from probes.data.curriculum import CURRICULA, CurriculumError, passes
from probes.data.manifest import (
    Example,
    Manifest,
    ManifestError,
    Source,
    load_examples,
    load_manifest,
)
from probes.data.mixture import MIX_BY, STRATEGIES, MixtureError, class_counts, mix

__all__ = [
    "CURRICULA",
    "MIX_BY",
    "STRATEGIES",
    "CurriculumError",
    "DataSettings",
    "Example",
    "Manifest",
    "ManifestError",
    "MixtureError",
    "Source",
    "TrainingSet",
    "build_training_set",
    "load_manifest",
    "training_set_hash",
]


@dataclass(frozen=True)
class DataSettings:
    """The data-lane knobs of a recipe (see mixture.py and curriculum.py)."""

    mixture: str = "natural"
    mixture_by: str = "category"
    mixture_floor: float = 0.05
    weights: dict[str, float] = field(default_factory=dict)
    """Per-source weights from the recipe (`weight_<source>`); others keep the manifest's."""
    curriculum: str = "shuffle"
    curriculum_source: str | None = None
    num_examples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mixture": self.mixture,
            "mixture_by": self.mixture_by,
            "mixture_floor": self.mixture_floor,
            "weights": dict(sorted(self.weights.items())),
            "curriculum": self.curriculum,
            "curriculum_source": self.curriculum_source,
            "num_examples": self.num_examples,
        }


def training_set_hash(examples: Iterable[Example]) -> str:
    """sha256 of the examples' sources, ids and contents in training order."""
    h = hashlib.sha256()
    for ex in examples:
        line = json.dumps([ex.source, ex.id, ex.category, ex.content()], sort_keys=True)
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingSet:
    """The resolved training sequence of one probe."""

    examples: list[Example]
    """Every example in training order (length = steps × batch × accumulation)."""
    pool: list[Example]
    """One pass: the mixture's multiset before ordering."""
    settings: DataSettings
    weights: dict[str, float]
    seed: int

    @property
    def hash(self) -> str:
        return training_set_hash(self.examples)

    def record(self) -> dict[str, Any]:
        """What dataset.json holds: enough to check a replay trained on the same examples."""
        return {
            "hash": self.hash,
            "seed": self.seed,
            "settings": self.settings.to_dict(),
            "weights": dict(sorted(self.weights.items())),
            "num_examples": len(self.examples),
            "pool_size": len(self.pool),
            "unique_examples": len({(ex.source, ex.id) for ex in self.pool}),
            "per_category": class_counts(self.examples, "category"),
            "pool_per_category": class_counts(self.pool, "category"),
            "pool_per_pattern": class_counts(self.pool, "pattern"),
            "per_source": _count(ex.source for ex in self.pool),
            "order": [f"{ex.source}/{ex.id}" for ex in self.examples],
        }


def _count(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


def build_training_set(
    manifest: Manifest,
    settings: DataSettings,
    *,
    kind: str,
    seed: int,
    total: int | None = None,
) -> TrainingSet:
    """Load the sources of `kind` (sft or preference), mix and order them: `total` examples
    (default one pass over the mixture)."""
    unknown = sorted(set(settings.weights) - set(manifest.names))
    if unknown:
        raise MixtureError(
            f"weight_{unknown[0]}: the manifest has no source {unknown[0]!r} "
            f"(sources: {manifest.names})"
        )
    sources = [s for s in manifest.sources if s.kind == kind]
    if not sources:
        raise ManifestError(
            f"{manifest.path}: no source of kind {kind!r} (the objective needs one; "
            f"sources: {[(s.name, s.kind) for s in manifest.sources]})"
        )
    weights = {s.name: settings.weights.get(s.name, s.weight) for s in sources}
    by_source = load_examples(manifest, {kind})
    pool = mix(
        by_source,
        strategy=settings.mixture,
        by=settings.mixture_by,
        floor=settings.mixture_floor,
        weights=weights,
        num_examples=settings.num_examples,
        seed=seed,
    )
    examples = passes(
        pool,
        total if total is not None else len(pool),
        settings.curriculum,
        seed=seed,
        source=settings.curriculum_source,
    )
    return TrainingSet(examples=examples, pool=pool, settings=settings, weights=weights, seed=seed)

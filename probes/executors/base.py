"""Executors run probes: one at a time on this machine, or many at once on a Ray cluster."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from probes.spec import ProbeResult, ProbeSpec
from probes.trainers.base import Trainer


class Executor(ABC):
    """Runs ProbeSpecs through a trainer and yields results as they finish."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    @abstractmethod
    def run_many(self, specs: Sequence[ProbeSpec]) -> Iterator[ProbeResult]:
        """Run `specs` and yield each result as soon as it is available (any order)."""

    def run(self, spec: ProbeSpec) -> ProbeResult:
        """Run a single spec."""
        return next(iter(self.run_many([spec])))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""

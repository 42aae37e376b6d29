"""Run probes one after another on this machine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from probes.executors.base import Executor
from probes.spec import ProbeResult, ProbeSpec


class LocalExecutor(Executor):
    """Sequential: the trainer itself isolates each run in a child process."""

    def run_many(self, specs: Sequence[ProbeSpec]) -> Iterator[ProbeResult]:
        for spec in specs:
            yield self.trainer.run(spec)

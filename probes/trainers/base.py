"""The trainer interface: run one probe (train + evaluate) and report its scores."""

from __future__ import annotations

from abc import ABC, abstractmethod

from probes.spec import ProbeResult, ProbeSpec


class Trainer(ABC):
    """Trains one probe and evaluates it. Implementations: command, trl.

    `run` never raises for a failed probe: a crash, timeout or bad output is a
    ProbeResult with status CRASH and the reason, so one probe never ends a session.
    """

    @abstractmethod
    def run(self, spec: ProbeSpec) -> ProbeResult:
        """Train `spec` into `spec.out_dir`, evaluate it, and return its per-prompt scores."""

    def preflight(self) -> list[str]:
        """Problems that stop any probe from running (missing executable, model, data)."""
        return []

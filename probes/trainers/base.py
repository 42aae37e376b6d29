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

    def machine_problems(self) -> list[str]:
        """Problems of this machine rather than of the campaign (no GPU where one is needed,
        too little memory): `start` refuses them; `check` shows them as warnings, so a campaign
        meant for a GPU machine can be checked on a laptop."""
        return []

    def notes(self) -> list[str]:
        """Facts `check` shows (e.g. the memory a probe needs)."""
        return []

    def warnings(self) -> list[str]:
        """What may go wrong without stopping the session (`check` and `start` show them)."""
        return []

"""The policy interface: ask for a proposal, tell it what happened.

A policy only proposes. The session validates every proposal against the search space,
runs it, judges it and owns the budget; nothing a policy returns can change thresholds,
steps, evaluation or the budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from probes.llm import LLMUsage

if TYPE_CHECKING:
    from agent.campaign import Campaign
    from agent.verdict import NoiseModel, Verdict


class Action(str, Enum):
    """What a proposal asks the loop to do."""

    PROBE = "probe"  # train the recipe with `changes` applied
    REPLAY = "replay"  # re-run a recorded probe with a fresh seed (e.g. an inconclusive one)
    CONCLUDE = "conclude"  # stop proposing; the session ends early


Usage = LLMUsage
"""What a proposal (or any LLM call) cost: one usage type for the policies, the judge and the
store (probes/llm.py)."""


@dataclass(frozen=True)
class Proposal:
    """One step a policy asks for."""

    action: Action
    lane: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    hypothesis: str = ""
    """One line: what the change should do and why (shown in results.tsv and the report)."""
    expected_effect: str | None = None
    replay_of: str | None = None
    """The probe id to replay (action replay)."""
    rationale: str | None = None
    """Longer reasoning, stored with the decision."""
    usage: Usage | None = None
    fallback_from: str | None = None
    """Set when this proposal came from the offline fallback of another policy."""


@dataclass(frozen=True)
class ProbeRecord:
    """One finished probe as a policy sees it."""

    probe_id: str
    kind: str
    lane: str | None
    changes: dict[str, Any]
    hypothesis: str
    status: str  # a VerdictStatus value
    verdict: Verdict | None = None
    seed: int = 0
    parent_id: str | None = None
    reading: str | None = None


@dataclass(frozen=True)
class Budget:
    """What is left of the session's budget (the loop counts it; policies only read it)."""

    runs_total: int | None
    runs_used: int
    seconds_total: float | None
    seconds_used: float

    @property
    def runs_left(self) -> int | None:
        return None if self.runs_total is None else max(0, self.runs_total - self.runs_used)

    @property
    def seconds_left(self) -> float | None:
        if self.seconds_total is None:
            return None
        return max(0.0, self.seconds_total - self.seconds_used)


@dataclass(frozen=True)
class PolicyContext:
    """Everything a policy may read when asked for its next proposal."""

    campaign: Campaign
    history: tuple[ProbeRecord, ...]
    budget: Budget
    session_id: str
    noise: NoiseModel | None = None
    mde: float | None = None
    brief: str = ""
    workspace_runs: str = ""
    """The session's runs/ folder, for policies that keep their own state (optuna)."""
    earlier: tuple[ProbeRecord, ...] = ()
    """The campaign memory: probes of earlier sessions of this workspace measured under the
    same conditions (the same baseline: recipe, steps, trainer, data and eval set, by content
    key), oldest first. Not this session's history: its verdicts are against that session's
    baseline runs."""

    def tried(self) -> list[dict[str, Any]]:
        """Change sets already judged under these conditions: run in this session, or in an
        earlier comparable one (probes, not baselines or replays). The offline policies never
        propose them again; a replay is the way to replicate one."""
        return [r.changes for r in (*self.earlier, *self.history) if r.kind == "probe"]


class Policy(ABC):
    """Proposes one change at a time. Implementations: sweep, optuna, claude."""

    name: str = "policy"

    @abstractmethod
    def ask(self, context: PolicyContext) -> Proposal:
        """The next step. Return Action.CONCLUDE when there is nothing left worth trying."""

    def tell(self, record: ProbeRecord, context: PolicyContext) -> None:  # noqa: B027
        """Learn from a finished probe (called once per probe, in order, also on resume)."""

    def reject(self, proposal: Proposal, reason: str, context: PolicyContext) -> None:  # noqa: B027
        """The loop refused `proposal` for `reason`; the next ask should avoid it."""

    def read(self, record: ProbeRecord, context: PolicyContext) -> str | None:
        """A one-line reading of a probe that just finished, stored with it (LLM policies)."""
        return None

    def narrative(self, report_data: dict[str, Any]) -> str | None:
        """Optional prose for the session report (LLM policies). Its cost, if any, is in
        `narrative_usage`."""
        return None

    narrative_usage: Usage | None = None
    """What the narrative cost (LLM policies); None when it cost nothing."""

    def notices(self) -> list[str]:
        """Things to say once in the session's log (e.g. the policy went offline); the loop
        drains them after each ask."""
        return []

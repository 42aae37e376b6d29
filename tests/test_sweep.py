"""The sweep policy walks one change at a time, rotates lanes, never repeats."""

from __future__ import annotations

from pathlib import Path

from agent.campaign import Knob, load_campaign
from agent.policies.base import Action, Budget, PolicyContext, ProbeRecord
from agent.policies.sweep import SweepPolicy, neighbours
from agent.proposals import validate_proposal


def test_neighbours() -> None:
    log = Knob(type="float", low=1e-4, high=1e-2, log=True)
    assert neighbours(log, 1e-3) == [5e-4, 2e-3]
    assert neighbours(log, 1e-2) == [5e-3]  # clamped at the top: only down
    lin = Knob(type="float", low=0.0, high=1.0, step=0.25)
    assert neighbours(lin, 0.1) == [0.0, 0.35]
    ints = Knob(type="int", low=4, high=64, log=True)
    assert neighbours(ints, 16) == [8, 32]
    cat = Knob(type="categorical", choices=["a", "b", "c"])
    assert neighbours(cat, "b") == ["a", "c"]


def _context(campaign, history) -> PolicyContext:  # type: ignore[no-untyped-def]
    return PolicyContext(
        campaign=campaign,
        history=tuple(history),
        budget=Budget(runs_total=100, runs_used=0, seconds_total=None, seconds_used=0.0),
        session_id="s",
    )


def test_sweep_rotates_lanes_and_never_repeats(workspace: Path) -> None:
    campaign = load_campaign(workspace / "search_space.yaml")
    policy = SweepPolicy(campaign)
    history: list[ProbeRecord] = []
    lanes = []
    while True:
        proposal = policy.ask(_context(campaign, history))
        if proposal.action is Action.CONCLUDE:
            break
        assert validate_proposal(proposal, campaign, history) is None
        lanes.append(proposal.lane)
        history.append(
            ProbeRecord(
                probe_id=f"p{len(history)}",
                kind="probe",
                lane=proposal.lane,
                changes=proposal.changes,
                hypothesis=proposal.hypothesis,
                status="discard",
            )
        )
    # 2 learning rates + 2 ranks + 1 mixture + 1 curriculum: each tried exactly once.
    assert len(history) == 6
    assert len({tuple(sorted(r.changes.items())) for r in history}) == 6
    assert lanes[:3] == ["hyperparameters", "data_mixture", "curriculum"]

"""The optuna policy: per-lane studies, neighbourhood first, constraints, rotation, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.campaign import Campaign
from agent.policies.base import Action, PolicyContext, ProbeRecord, Proposal
from agent.policies.optuna import OptunaPolicy
from agent.proposals import canonical_changes, validate_proposal
from tests.test_claude_policy import CAMPAIGN_YAML, context, make_campaign, record

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402


def run(
    policy: OptunaPolicy,
    campaign: Campaign,
    n: int,
    outcome: Any = None,
    history: tuple[ProbeRecord, ...] = (),
    session_id: str = "s1",
) -> tuple[tuple[ProbeRecord, ...], list[Proposal]]:
    """Ask/tell `n` times; `outcome(proposal) -> (status, delta)` (default: discard -0.1)."""
    proposals = []
    for i in range(n):
        ctx = context(campaign, history, runs_total=100, session_id=session_id)
        proposal = policy.ask(ctx)
        proposals.append(proposal)
        if proposal.action is Action.CONCLUDE:
            break
        assert validate_proposal(proposal, campaign, history) is None, proposal
        status, delta = outcome(proposal) if outcome else ("discard", -0.1)
        rec = record(f"{session_id}-p{len(history) + 1:02d}", proposal.lane or "",
                     proposal.changes, status, delta)
        history = (*history, rec)
        policy.tell(rec, context(campaign, history, runs_total=100, session_id=session_id))
        del i
    return history, proposals


def trials(policy: OptunaPolicy, lane: str) -> list[Any]:
    return policy.study(lane).get_trials(deepcopy=False)


def test_neighbourhood_first_then_no_duplicates_in_range(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")

    _, proposals = run(policy, campaign, 16)

    changes = [p.changes for p in proposals if p.action is Action.PROBE]
    # The baseline neighbourhood of the first lane, one knob at a time, interleaved.
    assert changes[:3] == [{"learning_rate": 0.0005}, {"lora_r": 8}, {"beta": 0.075}]
    assert all("one step from the recipe" in p.hypothesis for p in proposals[:3])
    # Never a duplicate, never out of range, never a protected knob.
    keys = [canonical_changes(c) for c in changes]
    assert len(keys) == len(set(keys))
    for c in changes:
        for name, value in c.items():
            where = campaign.knob(name)
            assert where is not None and where[1].contains(value), (name, value)
            assert name != "warmup_steps"
            if where[1].type == "int":
                assert isinstance(value, int)
    assert (tmp_path / "runs" / "optuna.db").exists()
    names = {s.study_name for s in optuna.get_all_study_summaries(policy.storage_url)}
    assert "autoresearch:s1:hyperparameters" in names


def test_plateau_rotates_lanes_and_exhausted_lanes_conclude(tmp_path: Path) -> None:
    text = CAMPAIGN_YAML.replace(
        "    learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n", ""
    ).replace("    beta: {type: float, low: 0.05, high: 0.3}\n", "").replace(
        "lora_r: {type: int, low: 4, high: 64, log: true}", "lora_r: {type: int, low: 14, high: 18}"
    )
    campaign = make_campaign(tmp_path, text)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")

    _, proposals = run(policy, campaign, 20)

    lanes = [p.lane for p in proposals if p.action is Action.PROBE]
    # 3 probes without a gain in hyperparameters (plateau 3), then the next lanes.
    assert lanes[:3] == ["hyperparameters"] * 3
    assert lanes[3] == "data_mixture"
    # Finite lanes: every untried setting exactly once, then conclude.
    # lora_r 14..18 has 4 non-recipe values, mixture 2, curriculum 1.
    assert len(lanes) == 7
    assert proposals[-1].action is Action.CONCLUDE


def test_improving_lane_is_kept(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    improving = iter([0.2, 0.5, 0.8, 1.1, 1.4, 1.7])
    _, proposals = run(policy, campaign, 6, outcome=lambda p: ("candidate", next(improving)))
    assert {p.lane for p in proposals} == {"hyperparameters"}


def test_values_constraints_and_crash(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    outcomes = iter([("candidate", 0.9), ("guard_fail", 0.4), ("crash", 0.0)])
    run(policy, campaign, 3, outcome=lambda p: next(outcomes))

    done = [t for t in trials(policy, "hyperparameters") if "probe_id" in t.user_attrs]
    assert [t.state for t in done] == [TrialState.COMPLETE, TrialState.COMPLETE,
                                       TrialState.FAIL]
    ok, guard, crash = done
    assert ok.value == pytest.approx(0.9)
    assert all(v <= 0 for v in ok.constraints.values())
    assert guard.value == pytest.approx(0.4)
    assert any(v > 0 for v in guard.constraints.values())
    assert crash.value is None
    # record(): the voice guard interval is [g-0.4, g+0.4] against -0.8.
    assert ok.constraints["guard:voice"] == pytest.approx(-0.8 - (0.0 - 0.4))


def test_tell_is_idempotent_and_records_foreign_probes(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    foreign = record("x1", "hyperparameters", {"learning_rate": 0.003}, "discard", 0.1)
    ctx = context(campaign, (foreign,))
    policy.tell(foreign, ctx)
    policy.tell(foreign, ctx)
    policy.tell(record("b", "hyperparameters", {}, kind="baseline"), ctx)
    policy.tell(record("x2", "hyperparameters", {"learning_rate": 0.5}), ctx)  # out of range
    recorded = [t for t in trials(policy, "hyperparameters") if "probe_id" in t.user_attrs]
    assert [t.user_attrs["probe_id"] for t in recorded] == ["x1"]
    assert recorded[0].params["learning_rate"] == 0.003
    assert recorded[0].params["lora_r"] == 16  # the recipe's value for the other knobs
    # The foreign change is never proposed again.
    _, proposals = run(policy, campaign, 8, history=(foreign,))
    assert all(p.changes != {"learning_rate": 0.003} for p in proposals)


def test_reject_fails_the_trial_and_avoids_the_point(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    ctx = context(campaign)
    first = policy.ask(ctx)
    policy.reject(first, "refused by the loop", ctx)
    second = policy.ask(ctx)
    assert second.changes != first.changes
    failed = [t for t in trials(policy, "hyperparameters") if t.state == TrialState.FAIL]
    assert failed and failed[0].user_attrs["refused"] == "refused by the loop"


def test_resume_marks_stale_running_trials_failed(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    runs = tmp_path / "runs"
    first = OptunaPolicy(campaign, storage_dir=runs)
    history, _ = run(first, campaign, 2)
    pending = first.ask(context(campaign, history, runs_total=100))  # the process dies here
    lane = pending.lane or ""
    # ... after its probe finished and was recorded by the loop:
    finished = record("s1-p03", lane, pending.changes, "discard", -0.2)
    assert [t.state for t in trials(first, lane)].count(TrialState.RUNNING) == 1

    resumed = OptunaPolicy(campaign, storage_dir=runs)
    history = (*history, finished)
    ctx = context(campaign, history, runs_total=100)
    for rec in history:  # the loop replays tell() for every finished record
        resumed.tell(rec, ctx)
    after = trials(resumed, lane)
    assert TrialState.RUNNING not in [t.state for t in after]
    stale = [t for t in after if t.state == TrialState.FAIL and "probe_id" not in t.user_attrs]
    assert len(stale) == 1 and stale[0].params == {**{n: campaign.recipe[n] for n in
                                                      stale[0].params}, **pending.changes}
    probe_ids = [t.user_attrs["probe_id"] for t in after if "probe_id" in t.user_attrs]
    assert sorted(probe_ids) == ["s1-p01", "s1-p02", "s1-p03"]  # each probe counted once

    history, proposals = run(resumed, campaign, 4, history=history)
    keys = [canonical_changes(r.changes) for r in history]
    assert len(keys) == len(set(keys)) == 7
    assert all(p.action is Action.PROBE for p in proposals)


def test_sessions_have_their_own_studies(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    _, a = run(policy, campaign, 2, session_id="a")
    _, b = run(policy, campaign, 2, session_id="b")
    assert [p.changes for p in a] == [p.changes for p in b]  # same neighbourhood, fresh study
    assert policy.study_name("hyperparameters") == "autoresearch:b:hyperparameters"


def test_lane_order_is_reconstructed_from_history(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    history = tuple(
        record(f"p{i}", "hyperparameters", {"lora_r": 4 + i}, "discard", 0.0) for i in range(3)
    )
    assert policy.lane_order(history)[0] == "data_mixture"
    assert policy.lane_order(history[:2])[0] == "hyperparameters"


def context_type_check(c: PolicyContext) -> None:  # keeps the import used for typing
    del c


def test_a_small_budget_visits_every_lane(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "runs")
    history: tuple[ProbeRecord, ...] = ()
    lanes = []
    for _ in range(3):  # budget 8: a handful of probes after the baseline
        proposal = policy.ask(context(campaign, history, runs_total=8))
        lanes.append(proposal.lane)
        rec = record(f"s1-p{len(history) + 1:02d}", proposal.lane or "", proposal.changes,
                     "discard", -0.1)
        history = (*history, rec)
        policy.tell(rec, context(campaign, history, runs_total=8))
    assert lanes == ["hyperparameters", "data_mixture", "curriculum"]
    # A large budget stays in a lane until it plateaus.
    assert policy.effective_plateau(context(campaign, (), runs_total=100)) == policy.plateau

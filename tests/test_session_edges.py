"""The research loop's edges, in-process and fast: budget parsing and arithmetic, preflight's
messages, the workspace lock, seeds, ids, events, the policy's failures and fallback, baseline
crashes and reuse, replays, confirmations and the noise model a verdict uses.

Every session here runs in this process on an in-process trainer that logs what it was asked
to train; the expectations come from that log, from the campaign and from hand arithmetic,
never from the store's own counters alone.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.campaign import load_campaign
from agent.policies.base import Action, Policy, PolicyContext, ProbeRecord, Proposal, Usage
from agent.runtime import open_session
from agent.session import (
    BudgetSpec,
    ResearchSession,
    SessionError,
    WorkspaceLock,
    _slug,
    preflight,
    record_from_row,
    reusable_baselines,
)
from agent.store.store import Store
from agent.store.tables import ProbeRow
from agent.verdict import NoiseModel
from probes.spec import ProbeResult, ProbeSpec, ProbeStatus, Score
from probes.trainers.base import Trainer
from tests.conftest import make_workspace, write_prompts
from tests.fake_trainer import quality

NOW = datetime(2026, 1, 2, 3, 4, 5)
STAMP = "20260102-030405"
RECIPE = {"learning_rate": 1.0e-3, "lora_r": 16, "mixture": "natural", "curriculum": "shuffle"}


# ---- the fakes ------------------------------------------------------------------------------


class World(Trainer):
    """Trains in-process from the fake world of tests/fake_trainer.py; the n-th training
    (1-based) crashes when n is in `crash`. Logs every spec it gets; each training takes
    `runtime` seconds on `clock` (when given)."""

    def __init__(
        self,
        crash: set[int] | None = None,
        *,
        runtime: float = 1.0,
        clock: FakeClock | None = None,
        problems: list[str] | None = None,
        settings: dict[str, Any] | None = None,
        prompts: int = 24,
        prompt_sd: float = 0.4,
        seed_sd: float = 0.05,
    ):
        self.crash = crash or set()
        self.prompts, self.prompt_sd, self.seed_sd = prompts, prompt_sd, seed_sd
        if settings is not None:
            self.trainer_settings = lambda: settings
        self.calls: list[ProbeSpec] = []
        self.runtime, self.clock, self.problems = runtime, clock, problems or []

    def preflight(self) -> list[str]:
        return list(self.problems)

    def run(self, spec: ProbeSpec) -> ProbeResult:
        self.calls.append(spec)
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        if self.clock is not None:
            self.clock.now += self.runtime
        if len(self.calls) in self.crash:
            return ProbeResult(spec.probe_id, ProbeStatus.CRASH, error="CUDA out of memory")
        prompts = [
            f"{c}-{i:02d}" for c in ("facts", "voice", "offtask") for i in range(self.prompts)
        ]
        shift = random.Random(spec.seed * 7919).gauss(0.0, self.seed_sd)
        scores = []
        for prompt_id in prompts:
            category = prompt_id.split("-")[0]
            rng = random.Random(zlib.crc32(f"{spec.seed}/{prompt_id}".encode()))
            difficulty = (zlib.crc32(prompt_id.encode()) % 100) / 100 - 0.5
            noise = rng.gauss(0.0, self.prompt_sd)
            value = quality(category, spec.params) + difficulty + shift + noise
            scores.append(Score(prompt_id, category, min(10.0, max(0.0, value))))
        return ProbeResult(
            spec.probe_id, ProbeStatus.OK, scores=tuple(scores), runtime_s=self.runtime
        )


class FakeClock:
    """Stands in for the `time` module in agent.session: monotonic() reads `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FixedDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> FixedDatetime:  # type: ignore[override]
        return cls(2026, 1, 2, 3, 4, 5)


Step = Callable[[PolicyContext], Proposal]


class Scripted(Policy):
    """Answers from a script (callables context -> Proposal, or exceptions to raise) and
    records everything the loop tells it."""

    narrative_usage = None

    def __init__(self, script: list[Step | BaseException], name: str = "scripted"):
        self.script = list(script)
        self.name = name
        self.asked: list[PolicyContext] = []
        self.told: list[ProbeRecord] = []
        self.rejected: list[str] = []
        self.read_reply: str | Exception | None = None
        self.tell_error: Exception | None = None
        self.pending_notices: list[str] = []
        self.narrative_text: str | None = None

    def ask(self, context: PolicyContext) -> Proposal:
        self.asked.append(context)
        if not self.script:
            return Proposal(Action.CONCLUDE, hypothesis="script done")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step(context)

    def tell(self, record: ProbeRecord, context: PolicyContext) -> None:
        self.told.append(record)
        if self.tell_error is not None:
            raise self.tell_error

    def reject(self, proposal: Proposal, reason: str, context: PolicyContext) -> None:
        self.rejected.append(reason)

    def read(self, record: ProbeRecord, context: PolicyContext) -> str | None:
        if isinstance(self.read_reply, Exception):
            raise self.read_reply
        return self.read_reply

    def notices(self) -> list[str]:
        out, self.pending_notices = self.pending_notices, []
        return out

    def narrative(self, report_data: dict[str, Any]) -> str | None:
        self.narrative_data = report_data
        return self.narrative_text


def probe(lane: str = "hyperparameters", **changes: Any) -> Step:
    return lambda ctx: Proposal(
        Action.PROBE,
        lane=lane,
        changes=changes,
        hypothesis=f"try {changes}",
        expected_effect="facts up",
        rationale="because",
        usage=Usage(input_tokens=11, output_tokens=7, cache_read_tokens=5, cost_usd=0.25),
    )


def replay_of(kind: str, hypothesis: str = "") -> Step:
    def step(ctx: PolicyContext) -> Proposal:
        last = [r for r in ctx.history if r.kind == kind][-1]
        return Proposal(Action.REPLAY, replay_of=last.probe_id, hypothesis=hypothesis)

    return step


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe and session ids from a fixed clock (so collisions are deterministic)."""
    monkeypatch.setattr("agent.session.datetime", FixedDatetime)


def session_run(
    ws: Path,
    script: list[Step | BaseException],
    *,
    budget: BudgetSpec | None = None,
    trainer: World | None = None,
    fallback: Policy | None = None,
    policy: Scripted | None = None,
    no_cache: bool = False,
    force: bool = False,
    observed: list[tuple[str, dict[str, Any]]] | None = None,
) -> tuple[ResearchSession, Store, World, Scripted]:
    trainer = trainer or World()
    policy = policy or Scripted(script)
    with WorkspaceLock(ws / "runs"):
        session = open_session(
            ws,
            budget=budget or BudgetSpec(runs=8),
            resume=False,
            new=True,
            trainer=trainer,
            policies=(policy, fallback or policy),
            no_cache=no_cache,
            force=force,
            observer=None if observed is None else lambda name, data: observed.append((name, data)),
        )
        session.run()
    return session, Store(ws), trainer, policy


def events(store: Store, session_id: str, kind: str | None = None) -> list[str]:
    return [
        e.message if kind else f"{e.kind} | {e.message}"
        for e in store.events(session_id)
        if kind is None or e.kind == kind
    ]


# ---- budget ---------------------------------------------------------------------------------

EXPECTED = (
    "expected a whole number of trainings (e.g. 8) or a wall-clock duration with its unit "
    "(e.g. 90m, 10h)"
)


def test_budget_parses_runs_and_durations_and_says_what_it_expected() -> None:
    assert BudgetSpec.parse(" 8 ") == BudgetSpec(runs=8)
    assert BudgetSpec.parse("1") == BudgetSpec(runs=1)
    assert BudgetSpec.parse("1000000") == BudgetSpec(runs=1_000_000)
    assert BudgetSpec.parse("90m") == BudgetSpec(seconds=5400.0)
    assert BudgetSpec.parse("1.5h") == BudgetSpec(seconds=5400.0)
    assert BudgetSpec.parse("2d") == BudgetSpec(seconds=172800.0)
    with pytest.raises(ValueError) as info:
        BudgetSpec.parse("0")
    assert str(info.value) == "a run budget must be at least 1"
    with pytest.raises(ValueError) as info:
        BudgetSpec.parse("1000001")
    assert str(info.value) == "--budget 1000001: at most 1000000 trainings"
    for text in ("1.5", "90x", "m", "-3", "8 trainings"):
        with pytest.raises(ValueError) as info:
            BudgetSpec.parse(text)
        assert str(info.value) == f"--budget {text!r}: {EXPECTED}"
    assert BudgetSpec(runs=8).describe() == "8 trainings"
    assert BudgetSpec(seconds=5400.0).describe() == "1h30m wall-clock"


# ---- preflight ------------------------------------------------------------------------------


def test_preflight_names_every_problem_and_warning(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    campaign = load_campaign(ws / "search_space.yaml")
    prompts = ws / "probe-prompts.jsonl"
    report = preflight(campaign, None)
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.counts == {"facts": 24, "voice": 24, "offtask": 24}
    assert len(report.prompts) == 72

    # Two voice prompts (3 needed), no offtask prompt (a typo'd one), an unjudged category.
    write_prompts(prompts, {"facts": 3, "voice": 2, "offtsak": 1, "extra": 4})
    (ws / "program.md").unlink()
    report = preflight(campaign, World(problems=["the trainer is not installed"]))
    assert not report.ok
    assert report.problems[0] == (
        f"{campaign.resolve('probe-prompts.jsonl')}: guard category 'voice' has 2 eval "
        "prompt(s); at least 3 needed (probe.min_prompts_per_category) — without them every "
        "probe would show a phantom change in it"
    )
    assert report.problems[1].startswith(
        f"{campaign.resolve('probe-prompts.jsonl')}: guard category 'offtask' has 0 eval "
        "prompt(s); at least 3 needed"
    )
    assert "offtsak" in report.problems[1]  # did you mean
    assert report.problems[2:] == ["the trainer is not installed"]
    assert report.warnings == [
        "categories ['extra', 'offtsak'] are evaluated but are neither target nor guard "
        "(reported, never judged)",
        "agent.brief: 'program.md' not found; the agent gets no brief",
    ]

    prompts.write_text("")
    report = preflight(campaign, None)
    assert report.problems == [
        f"{campaign.resolve('probe-prompts.jsonl')}: the file has no eval prompts (empty); "
        "every probe would be a crash with no scores — add one JSON line per prompt (id, "
        "category, prompt)"
    ]
    prompts.write_text("not json\n")
    report = preflight(campaign, None)
    assert len(report.problems) == 1 and "no eval prompts" not in report.problems[0]


def test_preflight_budget_must_cover_the_baseline_left_to_train_and_one_probe(
    tmp_path: Path,
) -> None:
    campaign = load_campaign(make_workspace(tmp_path / "ws") / "search_space.yaml")
    # 3 baseline seeds + 1 probe = 4 trainings at least.
    assert preflight(campaign, None, BudgetSpec(runs=4)).ok
    assert preflight(campaign, None, BudgetSpec(seconds=1.0)).ok
    assert preflight(campaign, None, BudgetSpec(runs=3)).problems == [
        "--budget 3 cannot cover 3 baseline seed(s) to train and one probe (need at least 4)"
    ]
    # Two seeds reused: 1 to train + 1 probe.
    assert preflight(campaign, None, BudgetSpec(runs=2), reusable_baselines=2).ok
    assert preflight(campaign, None, BudgetSpec(runs=1), reusable_baselines=2).problems == [
        "--budget 1 cannot cover 1 baseline seed(s) to train (2 reused) and one probe "
        "(need at least 2)"
    ]
    # More reusable than needed never makes a negative count.
    assert preflight(campaign, None, BudgetSpec(runs=1), reusable_baselines=5).ok


# ---- lock, records, ids ---------------------------------------------------------------------


def test_the_workspace_lock_names_its_holder_and_is_released(tmp_path: Path) -> None:
    runs = tmp_path / "ws" / "runs"
    lock = WorkspaceLock(runs)
    with lock:
        assert (runs / ".lock").read_text() == str(os.getpid())
        with pytest.raises(SessionError) as info, WorkspaceLock(runs):
            pass
        assert str(info.value) == (
            f"another autoresearch process (pid {os.getpid()}) is using this workspace "
            f"({runs}); wait for it or stop it first"
        )
    lock.__exit__(None, None, None)  # a second release is harmless
    with WorkspaceLock(runs):  # released: the next one gets it
        pass
    # A stale, longer pid from an earlier holder is overwritten, not appended to.
    (runs / ".lock").write_text("1234567890123")
    with WorkspaceLock(runs):
        assert (runs / ".lock").read_text() == str(os.getpid())


def test_a_record_carries_what_the_row_says() -> None:
    row = ProbeRow(
        id="p1",
        session_id="s",
        seq=4,
        kind="replay",
        lane="hyperparameters",
        changes={"lora_r": 8},
        steps=30,
        seed=9,
        parent_id="p0",
        hypothesis="h",
        status="discard",
        reading="looks flat",
        state="finished",
    )
    record = record_from_row(row)
    assert record == ProbeRecord(
        probe_id="p1",
        kind="replay",
        lane="hyperparameters",
        changes={"lora_r": 8},
        hypothesis="h",
        status="discard",
        verdict=None,
        seed=9,
        parent_id="p0",
        reading="looks flat",
    )
    bare = record_from_row(ProbeRow(id="p2", session_id="s", seq=1, kind="probe", seed=1))
    assert (bare.changes, bare.hypothesis, bare.status, bare.verdict) == ({}, "", "", None)


def test_slugs_are_short_and_safe() -> None:
    assert _slug("learning_rate=0.002,lora_r=8") == "learning-rate-0.002-lora-r-8"
    assert _slug("--a__b--") == "a-b"
    assert _slug("") == "probe"
    assert _slug("///") == "probe"
    assert _slug("x" * 60) == "x" * 48


# ---- a whole session ------------------------------------------------------------------------


def test_a_session_trains_what_it_records_with_its_own_seeds(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", timeout="45s")  # the trainer's; probe.timeout 60s
    text = (ws / "search_space.yaml").read_text()
    (ws / "search_space.yaml").write_text(
        text.replace("  eval_repeats: 1", "  seed: 100\n  eval_repeats: 1")
    )
    script = [probe(lora_r=8), probe(learning_rate=0.002)]
    observed: list[tuple[str, dict[str, Any]]] = []
    trainer = World(settings={"device": "cpu"})
    session, store, trainer, policy = session_run(ws, script, trainer=trainer, observed=observed)
    sid = session.id
    assert sid.startswith(f"{STAMP}-") and len(sid) == len(STAMP) + 5
    # Three baseline seeds from probe.seed, then each training its own next seed.
    assert [(s.kind.value, s.seed) for s in trainer.calls] == [
        ("baseline", 100),
        ("baseline", 101),
        ("baseline", 102),
        ("probe", 103),
        ("probe", 104),
        ("confirm", 105),
    ]
    ids = [
        f"probe-{STAMP}-baseline-s100",
        f"probe-{STAMP}-baseline-s101",
        f"probe-{STAMP}-baseline-s102",
        f"probe-{STAMP}-lora-r-8",
        f"probe-{STAMP}-learning-rate-0.002",
        f"probe-{STAMP}-confirm-learning-rate-0.002",
    ]
    assert [s.probe_id for s in trainer.calls] == ids
    assert [s.out_dir for s in trainer.calls] == [ws / "runs" / i for i in ids]
    for spec in trainer.calls:
        assert spec.session_id == sid and spec.steps == 30 and spec.eval_repeats == 1
        assert spec.timeout_s == 45.0  # the trainer's timeout; a run budget sets none
        assert spec.eval_prompts == (ws / "probe-prompts.jsonl").resolve()
        assert spec.trainer == {"device": "cpu"}
    assert trainer.calls[0].params == RECIPE and trainer.calls[0].changes == {}
    assert trainer.calls[4].params == {**RECIPE, "learning_rate": 0.002}
    assert trainer.calls[4].changes == {"learning_rate": 0.002}
    assert trainer.calls[5].parent_id == ids[4] and trainer.calls[4].parent_id is None

    row = store.get_session(sid)
    assert row is not None and row.status == "finished" and row.conclusion == "script done"
    assert row.campaign_path == str(ws / "search_space.yaml")
    assert row.campaign["probe"]["timeout"] == 60.0 and row.budget_runs == 8
    # The observer saw each training start and finish, and every event the store got.
    started = [d for name, d in observed if name == "probe_started"]
    assert started[4] == {"probe_id": ids[4], "kind": "probe", "changes": {"learning_rate": 0.002}}
    assert [d["probe_id"] for d in started] == ids
    finished = [(d["probe_id"], d["status"]) for name, d in observed if name == "probe_finished"]
    assert finished == [(p.id, p.status) for p in store.probes(sid)]
    seen = [(d["kind"], d["message"], d["probe_id"]) for name, d in observed if name == "event"]
    stored = [(e.kind, e.message, e.probe_id) for e in store.events(sid)]
    assert seen == stored[1:]  # all but "started", written before the session existed
    assert {name for name, _ in observed} == {"event", "probe_started", "probe_finished"}
    assert store.runs_used(sid) == len(trainer.calls) == 6
    # max_confirmations is fixed after the baseline: (8 - 3) // 2 = 2.
    assert row.power is not None and row.power["max_confirmations"] == 2
    probes = store.probes(sid)
    assert [p.status for p in probes] == ["baseline"] * 3 + [probes[3].status, "candidate", "keep"]
    assert probes[3].status in {"discard", "inconclusive"}  # lora_r has no true effect
    confirm = probes[5]
    assert (confirm.kind, confirm.parent_id, confirm.lane) == ("confirm", ids[4], "hyperparameters")
    assert confirm.hypothesis == f"confirm {ids[4]} with a fresh seed"
    assert confirm.changes == {"learning_rate": 0.002}
    assert (probes[4].hypothesis, probes[4].expected_effect) == (
        "try {'learning_rate': 0.002}",
        "facts up",
    )
    assert probes[4].lane == "hyperparameters" and probes[0].lane is None
    # The verdict file in each run folder says what the store says.
    for p in probes:
        on_disk = json.loads((ws / "runs" / p.id / "verdict.json").read_text())
        assert on_disk == {"status": p.status, "verdict": p.verdict}
    assert probes[0].verdict is None
    # The confirmation is judged at the first level of the alpha-spending schedule.
    assert "<= 0.025)" in probes[5].verdict["reason"]  # type: ignore[index]
    assert probes[5].verdict["runs"] == 1 and probes[4].verdict["runs"] == 1  # type: ignore[index]
    # A probe trained for other steps is never judged against this baseline.
    other = ProbeRow(id="x", session_id=sid, seq=99, kind="probe", changes={"lora_r": 8},
                     steps=60, seed=50, state="finished")  # fmt: skip
    verdict = session._judge(other, store.scores(probes[3].id))
    assert verdict.status.value == "crash" and verdict.reason == (
        "trained 60 steps but the baseline [30]: a probe is compared only with a baseline "
        "trained for the same number of steps"
    )

    log = events(store, sid)
    assert log[0] == (
        "session | started: target facts, guards voice, offtask, 30 steps per probe, "
        "budget 8 trainings, policy scripted"
    )
    assert log[1] == f"start | baseline recipe seed 100 (30 steps) in {ids[0]}"
    assert log[2] == "verdict | recipe -> baseline finished"
    starts = events(store, sid, "start")
    assert starts[3:] == [
        f"probe lora_r=8 seed 103 (30 steps) in {ids[3]}",
        f"probe learning_rate=0.002 seed 104 (30 steps) in {ids[4]}",
        f"confirm learning_rate=0.002 seed 105 (30 steps) in {ids[5]}",
    ]
    verdicts = events(store, sid, "verdict")
    assert verdicts[3].startswith(f"lora_r=8 -> {probes[3].status}: facts ")
    assert verdicts[5].startswith("learning_rate=0.002 -> keep: facts ")
    assert [e.probe_id for e in store.events(sid) if e.kind == "verdict"] == ids
    noise = NoiseModel.from_dict(row.noise)  # type: ignore[arg-type]
    assert events(store, sid, "noise") == [
        "baseline run-to-run spread: "
        + ", ".join(
            f"{c} ±{noise.seed_spread(c):.2f} (2 dof)" for c in ("facts", "voice", "offtask")
        )
    ]  # 3 seeds: 2 degrees of freedom
    power = events(store, sid, "power")[0]
    assert power.startswith("facts effects of ") and "(min_improvement 0.30)" in power
    assert power.endswith("at most 5% chance of keeping any change that does nothing")
    assert f"{row.mde:.2f} or more are kept with 80% power" in power
    assert log[-2] == "conclude | scripted: script done"
    assert log[-1].startswith("session | finished: 6 trainings, ")

    # Policies heard about each finished non-baseline training once, in order.
    assert [r.probe_id for r in policy.told] == ids[3:]
    assert [r.status for r in policy.told] == [probes[3].status, "candidate", "keep"]
    # What the policy saw when first asked: the baseline spent, the brief, the runs folder.
    first = policy.asked[0]
    assert first.budget.runs_total == 8 and first.budget.runs_used == 3
    assert first.session_id == sid and first.history == ()
    assert first.brief == "# Brief\nImprove facts without hurting voice.\n"
    assert first.workspace_runs == str(ws / "runs")
    assert first.noise is not None and first.mde == row.mde
    assert [r.probe_id for r in policy.asked[1].history] == [ids[3]]
    # The last ask (the conclusion) came after the confirmation: runs 6 of 8 used.
    assert policy.asked[-1].budget.runs_used == 6 and len(policy.asked) == 3
    decisions = store.decisions(sid)
    assert [(d.action, d.accepted, d.policy) for d in decisions] == [
        ("probe", True, "scripted"),
        ("probe", True, "scripted"),
        ("conclude", True, "scripted"),
    ]
    assert decisions[0].proposal == {
        "lane": "hyperparameters",
        "changes": {"lora_r": 8},
        "hypothesis": "try {'lora_r': 8}",
        "expected_effect": "facts up",
        "replay_of": None,
        "fallback_from": None,
    }
    assert decisions[0].rationale == "because"
    assert (decisions[0].input_tokens, decisions[0].output_tokens) == (11, 7)
    assert (decisions[0].cache_read_tokens, decisions[0].cache_write_tokens) == (5, 0)
    assert decisions[0].cost_usd == 0.25 and decisions[2].cost_usd == 0.0
    assert decisions[2].input_tokens == 0

    # The report's narrative is stored, and what it cost is a decision of its own.
    policy.narrative_text = "It found the learning rate."
    policy.narrative_usage = Usage(3, 4, 5, 6, 0.5)
    assert session.write_narrative({"x": 1}) == "It found the learning rate."
    assert policy.narrative_data == {"x": 1}
    assert store.get_session(sid).narrative == "It found the learning rate."  # type: ignore[union-attr]
    last = store.decisions(sid)[-1]
    assert (last.policy, last.action, last.accepted, last.proposal) == (
        "scripted",
        "narrative",
        True,
        {},
    )
    assert (last.input_tokens, last.output_tokens) == (3, 4)
    assert (last.cache_read_tokens, last.cache_write_tokens, last.cost_usd) == (5, 6, 0.5)
    # A free narrative (an offline policy) records no decision; no narrative stores none.
    policy.narrative_usage = Usage(1, 1, cost_usd=0.0)
    policy.narrative_text = None
    assert session.write_narrative({}) is None
    assert len(store.decisions(sid)) == 4  # 3 proposals and the first narrative
    assert store.get_session(sid).narrative == "It found the learning rate."  # type: ignore[union-attr]


def test_a_later_verdict_pools_replicated_configurations_into_the_noise(tmp_path: Path) -> None:
    """Candidate + confirmation are two runs of one configuration: a later probe's verdict
    gets their 1 extra degree of freedom (2 from the seeds); their own verdicts do not. A
    crashed run adds nothing, even with a replay of it."""
    ws = make_workspace(tmp_path / "ws")
    script = [probe(learning_rate=0.002), probe(lora_r=8), replay_of("probe"), probe(lora_r=32)]
    # The 6th training (the lora_r=8 probe) crashes.
    session, store, trainer, _ = session_run(ws, script, trainer=World(crash={6}))
    probes = store.probes(session.id)
    assert [(p.kind, p.status) for p in probes[3:5]] == [
        ("probe", "candidate"),
        ("confirm", "keep"),
    ]
    assert [(p.kind, p.status) for p in probes[5:6]] == [("probe", "crash")]
    assert [p.kind for p in probes[6:]] == ["replay", "probe"]
    reasons = [p.verdict["reason"] for p in probes[3:]]  # type: ignore[index]
    assert "2 dof" in reasons[0] and "2 dof" in reasons[1]
    assert reasons[2] == "CUDA out of memory"
    # The replay of the crashed probe has nothing to pool with: one run, the pair's dof.
    assert probes[6].verdict["runs"] == 1 and "3 dof" in reasons[3]  # type: ignore[index]
    assert "3 dof" in reasons[4]
    assert events(store, session.id, "verdict")[5] == "lora_r=8 -> crash: CUDA out of memory"
    assert store.runs_used(session.id) == len(trainer.calls) == 8


# ---- the policy's failures ------------------------------------------------------------------


def test_a_failing_policy_falls_back_and_every_refusal_is_recorded(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    bad = probe(learning_rate=0.5)  # outside the knob's range
    policy = Scripted([bad, bad, bad, RuntimeError("down")])
    policy.pending_notices = ["went offline"]
    backup = Scripted([probe(lora_r=8), RuntimeError("backup down")], name="backup")
    session, store, trainer, _ = session_run(ws, [], policy=policy, fallback=backup)
    sid = session.id
    # Step 1: max_attempts (3) refusals of the policy, then the fallback's probe. Step 2:
    # the policy fails, then the fallback too: the session concludes.
    assert len(policy.asked) == 4 and len(policy.rejected) == 3
    assert all("outside the knob's range" in r for r in policy.rejected)
    assert len(backup.asked) == 2 and backup.rejected == []
    assert events(store, sid, "policy") == [
        "went offline",
        "falling back to backup",
        "scripted failed: RuntimeError: down",
        "falling back to backup",
        "backup failed: RuntimeError: backup down",
    ]
    rejected = events(store, sid, "rejected")
    assert rejected == [f"scripted: {r}" for r in policy.rejected]
    assert [(s.kind.value, s.changes) for s in trainer.calls[3:]] == [("probe", {"lora_r": 8})]
    decisions = store.decisions(sid)
    assert [(d.policy, d.action, d.accepted) for d in decisions] == [
        ("scripted", "probe", False),
        ("scripted", "probe", False),
        ("scripted", "probe", False),
        ("backup (fallback)", "probe", True),
        ("scripted", "conclude", True),
    ]
    assert [d.proposal["fallback_from"] for d in decisions] == [None] * 3 + ["scripted", None]
    assert decisions[0].reject_reason == policy.rejected[0]
    assert decisions[3].reject_reason is None and decisions[0].cost_usd == 0.25
    assert store.get_session(sid).conclusion == "no valid proposal"  # type: ignore[union-attr]
    assert events(store, sid, "conclude") == ["scripted: no valid proposal"]
    # Both policies heard about the probe, once each.
    assert [r.changes for r in policy.told] == [{"lora_r": 8}]
    assert [r.changes for r in backup.told] == [{"lora_r": 8}]


def test_readings_are_stored_and_read_or_tell_failures_never_stop_the_loop(
    tmp_path: Path,
) -> None:
    ws = make_workspace(tmp_path / "ws")
    policy = Scripted([probe(lora_r=8)])
    policy.read_reply = "flat, as expected"
    session, store, _, _ = session_run(ws, [], policy=policy)
    p = store.probes(session.id)[3]
    assert p.reading == "flat, as expected"
    assert policy.told[0].reading == "flat, as expected"
    reading = [e for e in store.events(session.id) if e.kind == "reading"]
    assert [(e.message, e.probe_id) for e in reading] == [("flat, as expected", p.id)]

    ws2 = make_workspace(tmp_path / "ws2")
    (ws2 / "program.md").unlink()
    text = (ws2 / "search_space.yaml").read_text()
    text = text.replace("  min_improvement: 0.3\n", "  min_improvement: 0.0\n")
    (ws2 / "search_space.yaml").write_text(text.replace("  max_mde: 1.5 ", "  # "))
    policy = Scripted([probe(lora_r=8)])
    policy.read_reply = ValueError("no model")
    policy.tell_error = KeyError("x")
    session, store, _, _ = session_run(ws2, [], policy=policy)
    assert store.get_session(session.id).status == "finished"  # type: ignore[union-attr]
    assert events(store, session.id, "policy") == [
        "scripted.read failed: no model",
        "scripted.tell failed: KeyError: 'x'",
    ]
    assert store.probes(session.id)[3].reading is None
    assert policy.asked[0].brief == ""  # no brief file: no brief
    row = store.get_session(session.id)
    assert row is not None and row.mde is not None
    assert events(store, session.id, "warning") == [
        "agent.brief: 'program.md' not found; the agent gets no brief",
        "objective.min_improvement is 0: the session keeps any effect it can show, and the "
        f"smallest it shows with 80% power is {row.mde:.2f}",
    ]


def test_replays_pool_with_their_probe_and_are_refused_twice_or_of_a_baseline(
    tmp_path: Path,
) -> None:
    ws = make_workspace(tmp_path / "ws")

    def replay_baseline(ctx: PolicyContext) -> Proposal:
        base = Store(ws).probes(ctx.session_id)[0]
        return Proposal(Action.REPLAY, replay_of=base.id)

    script = [
        probe(lora_r=8),
        replay_of("probe"),
        replay_of("probe"),  # refused: replayed once already
        replay_baseline,  # refused: not a probe
        replay_of("replay"),  # refused: a replay is never replayed
    ]
    session, store, trainer, policy = session_run(ws, script, budget=BudgetSpec(runs=6))
    probes = store.probes(session.id)
    original, replay = probes[3], probes[4]
    assert replay.kind == "replay" and replay.parent_id == original.id
    assert replay.hypothesis == f"replay {original.id}"
    assert replay.id == f"probe-{STAMP}-replay-lora-r-8"
    assert [s.seed for s in trainer.calls] == [0, 1, 2, 3, 4]
    assert replay.verdict["runs"] == 2  # type: ignore[index]
    assert policy.rejected == [
        f"{original.id} was already replayed once",
        f"replay_of {probes[0].id!r} is not a probe of this session",
        "only a probe (not a baseline, replay or confirmation) is replayed",
    ]
    # Three refusals in a row and no other policy to fall back to: the session concludes
    # with one of its 6 trainings unspent.
    assert store.runs_used(session.id) == 5 and len(policy.asked) == 5
    assert store.get_session(session.id).conclusion == "no valid proposal"  # type: ignore[union-attr]
    assert "falling back" not in " ".join(events(store, session.id))


# ---- baselines ------------------------------------------------------------------------------


def test_a_crashed_baseline_seed_is_replaced_by_a_fresh_one(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    session, store, trainer, _ = session_run(ws, [probe(lora_r=8)], trainer=World(crash={2}))
    assert [(s.kind.value, s.seed) for s in trainer.calls] == [
        ("baseline", 0),
        ("baseline", 1),
        ("baseline", 2),
        ("baseline", 3),
        ("probe", 4),
    ]
    assert events(store, session.id, "baseline") == ["a baseline run crashed; adding seed 3"]
    probes = store.probes(session.id)
    assert probes[3].hypothesis == "the recipe, same steps (replacing a crashed seed)"
    assert probes[0].hypothesis == "the recipe, same steps"
    assert [p.status for p in probes] == ["baseline", "crash", "baseline", "baseline", "discard"]
    assert "(2 dof)" in events(store, session.id, "noise")[0]  # three good seeds
    assert store.runs_used(session.id) == 5


def test_a_baseline_that_keeps_crashing_fails_after_two_replacements(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    # Seed 0 crashes, 1 and 2 train, replacement 3 crashes, replacement 4 crashes: the third
    # crash is one more than the two replacements allowed.
    trainer = World(crash={1, 4, 5})
    # A budget the failed baseline spends exactly: the failure says why, not "budget ran out".
    session, store, _, policy = session_run(ws, [], trainer=trainer, budget=BudgetSpec(runs=5))
    assert [s.seed for s in trainer.calls] == [0, 1, 2, 3, 4]
    assert events(store, session.id, "baseline") == [
        "a baseline run crashed; adding seed 3",
        "a baseline run crashed; adding seed 4",
    ]
    row = store.get_session(session.id)
    assert row is not None and row.status == "failed"
    assert row.error == (
        "the baseline could not be trained: 3 baseline runs crashed (last: CUDA out of "
        "memory); fix the trainer and `autoresearch start --new`"
    )
    assert events(store, session.id, "failed") == [row.error]
    assert policy.asked == [] and row.noise is None


def test_the_budget_running_out_during_the_baseline_fails_the_session(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    trainer = World(crash={1, 2})  # 0, 1 crash; 2, 3 train; seed 4 would be the 5th run
    session, store, _, _ = session_run(ws, [], trainer=trainer, budget=BudgetSpec(runs=4))
    assert [s.seed for s in trainer.calls] == [0, 1, 2, 3]
    row = store.get_session(session.id)
    assert row is not None and row.status == "failed"
    assert row.error == "the budget ran out before the baseline was measured"
    assert store.runs_used(session.id) == 4


def test_an_identical_earlier_baseline_is_reused_free_unless_no_cache(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    campaign = load_campaign(ws / "search_space.yaml")
    assert reusable_baselines(Store(ws), campaign) == 0
    first, store, _, _ = session_run(ws, [], budget=BudgetSpec(runs=4))
    assert reusable_baselines(store, campaign) == 3
    old = store.probes(first.id)[:3]
    second, store, trainer, _ = session_run(ws, [probe(lora_r=8)], budget=BudgetSpec(runs=1))
    # Only the probe was trained; it had the next seed after the (reused) baseline.
    assert [(s.kind.value, s.seed) for s in trainer.calls] == [("probe", 3)]
    assert store.runs_used(second.id) == 1
    new = store.probes(second.id)
    # Same fixed clock: the second session's ids get a suffix instead of colliding.
    assert new[0].id == f"{old[0].id}-2"
    assert [p.reused_from for p in new[:3]] == [p.id for p in old]
    assert [p.run_dir for p in new[:3]] == [p.run_dir for p in old]
    assert [store.scores(p.id) for p in new[:3]] == [store.scores(p.id) for p in old]
    assert events(store, second.id, "reused") == [
        f"baseline seed {p.seed}: identical to {p.id} (session {first.id}); its scores are "
        "reused, no training charged"
        for p in old
    ]
    third, store, trainer, _ = session_run(ws, [], budget=BudgetSpec(runs=4), no_cache=True)
    assert [s.seed for s in trainer.calls] == [0, 1, 2]
    assert all(p.reused_from is None for p in store.probes(third.id))
    assert new[3].id == f"probe-{STAMP}-lora-r-8"


# ---- wall-clock budget ----------------------------------------------------------------------


def test_a_wall_clock_budget_caps_each_training_and_stops_before_one_it_cannot_afford(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr("agent.session.time", clock)
    ws = make_workspace(tmp_path / "ws")
    trainer = World(runtime=70.0, clock=clock)
    budget = BudgetSpec(seconds=300.0)
    script = [probe(lora_r=8), probe(lora_r=32), probe(learning_rate=0.002)]
    session, store, _, _ = session_run(ws, script, budget=budget, trainer=trainer)
    # 300 s: the trainings' timeouts are the campaign's 60 s until less than that is left;
    # after 4 trainings of 70 s (280 s) 20 s are left, less than the longest run: stop, with
    # two proposals still in the script (the budget stops it, not the policy).
    assert [s.timeout_s for s in trainer.calls] == [60.0, 60.0, 60.0, 60.0]
    assert len(trainer.calls) == 4
    row = store.get_session(session.id)
    assert row is not None and row.status == "finished"
    assert row.seconds_used == pytest.approx(280.0)
    assert events(store, session.id, "session")[-1] == "finished: 4 trainings, 4m40s"
    assert [p.changes for p in store.probes(session.id) if p.kind == "probe"] == [{"lora_r": 8}]

    clock2 = FakeClock()
    monkeypatch.setattr("agent.session.time", clock2)
    ws2 = make_workspace(tmp_path / "ws2")
    trainer = World(runtime=10.0, clock=clock2)
    session, store, _, _ = session_run(
        ws2, [probe(lora_r=8)], budget=BudgetSpec(seconds=75.0), trainer=trainer
    )
    # 75 s: 60, 60, 55 (75 - 20 left after two 10 s runs), then 45.
    assert [s.timeout_s for s in trainer.calls] == [60.0, 60.0, 55.0, 45.0]


def test_preflight_of_a_judged_campaign_wants_the_key_and_warns_about_batch_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    base = load_campaign(make_workspace(tmp_path / "ws") / "search_space.yaml")

    def judged(timeout: float, batch: bool) -> Any:
        # A trl campaign whose LLM judge scores voice (only kind and timeout are read here).
        judge = {"categories": ["voice"], "batch": batch}
        return base.model_copy(
            update={
                "trainer": SimpleNamespace(kind="trl", timeout=None),
                "eval": base.eval.model_copy(update={"judge": judge}),
                "probe": base.probe.model_copy(update={"timeout": timeout}),
            }
        )

    no_key = (
        "eval.judge: the LLM judge needs ANTHROPIC_API_KEY in the environment (without it "
        "every probe's evaluation would fail)"
    )
    batch_warning = (
        "eval.judge.batch: a Message Batch can take up to hours; the probe timeout ({}) may "
        "stop probes while they wait for it"
    )
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    report = preflight(judged(3599.0, batch=True), None)
    assert report.problems == [no_key]
    assert batch_warning.format("59m59s") in report.warnings
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    report = preflight(judged(3599.0, batch=True), None)
    assert report.problems == []
    assert batch_warning.format("59m59s") in report.warnings
    # An hour is enough to wait for a batch; without batch there is nothing to wait for.
    assert not any("Message Batch" in w for w in preflight(judged(3600.0, True), None).warnings)
    assert not any("Message Batch" in w for w in preflight(judged(300.0, False), None).warnings)
    # Without a judge, no key is needed.
    assert preflight(base, None).ok


# ---- resume ---------------------------------------------------------------------------------


class Killed(BaseException):
    """The process died here (kill -9)."""


class DyingWorld(World):
    """Dies on its n-th training, after writing a checkpoint."""

    def __init__(self, die_at: int):
        super().__init__()
        self.die_at = die_at

    def run(self, spec: ProbeSpec) -> ProbeResult:
        if len(self.calls) + 1 == self.die_at:
            self.calls.append(spec)
            (spec.out_dir / "checkpoints" / "checkpoint-10").mkdir(parents=True)
            raise Killed(spec.probe_id)
        return super().run(spec)


def test_resume_reruns_the_interrupted_training_once_from_its_checkpoints(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(Killed):
        session_run(ws, [probe(lora_r=8)], trainer=DyingWorld(4), budget=BudgetSpec(runs=4))
    store = Store(ws)
    row = store.latest_session()
    assert row is not None and row.status == "running"
    killed = store.probes(row.id)[3]
    assert killed.state == "running" and killed.changes == {"lora_r": 8}
    first_dir = ws / "runs" / killed.id

    trainer, policy = World(), Scripted([])
    with WorkspaceLock(ws / "runs"):
        resumed = open_session(
            ws, budget=None, resume=True, trainer=trainer, policies=(policy, policy)
        )
        resumed.run()
    # Only the interrupted probe trained again (the baseline stays), in a new folder, from
    # the checkpoints the first attempt left; the budget charged it once.
    assert [(s.probe_id, s.seed, s.out_dir.name) for s in trainer.calls] == [
        (killed.id, 3, f"{killed.id}.attempt2")
    ]
    assert trainer.calls[0].trainer == {"resume_from": str(first_dir / "checkpoints")}
    assert trainer.calls[0].params == {**RECIPE, "lora_r": 8}
    assert (first_dir / "INTERRUPTED").read_text() == (
        f"this attempt was interrupted; the probe re-ran in {killed.id}.attempt2\n"
    )
    store = Store(ws)
    after = store.get_session(row.id)
    assert after is not None and after.status == "finished"
    assert store.runs_used(row.id) == 4 and len(store.probes(row.id)) == 4
    log = events(store, row.id)
    assert f"resume | {killed.id} was interrupted; running it again" in log
    assert (
        f"start | re-running interrupted probe lora_r=8 seed 3 (30 steps) in {killed.id}.attempt2"
        in log
    )
    assert [r.probe_id for r in policy.told] == [killed.id]
    # The budget (4) was spent by the re-run: the policy was never asked.
    assert policy.asked == []


# ---- the power gate -------------------------------------------------------------------------


def test_the_power_gate_stops_with_every_reason_and_fix_and_force_goes_on_warned(
    tmp_path: Path,
) -> None:
    """Seed 003's shape (12 prompts a category, noisy evals, tight guard tolerance)."""
    ws = make_workspace(tmp_path / "ws")
    text = (ws / "search_space.yaml").read_text()
    text = text.replace("  max_mde: 1.5", "  max_mde: 1.0")
    (ws / "search_space.yaml").write_text(text.replace("tolerance: 1.0", "tolerance: 0.5"))
    write_prompts(ws / "probe-prompts.jsonl", {"facts": 12, "voice": 12, "offtask": 12})

    def noisy() -> World:
        return World(prompts=12, prompt_sd=4.0, seed_sd=0.2)

    first, store, trainer, policy = session_run(ws, [probe(lora_r=8)], trainer=noisy())
    row = store.get_session(first.id)
    assert row is not None and row.status == "underpowered" and row.power is not None
    assert len(trainer.calls) == 3 and policy.asked == []  # the baseline, nothing more
    reasons, fixes = row.power["underpowered"], row.power["fixes"]
    assert len(reasons) >= 2 and len(fixes) >= 2
    message = (
        f"underpowered: {'; '.join(reasons)}. To fix (any one per line item): "
        f"{'; '.join(fixes)}. Nothing more was spent; the next session reuses these baseline "
        "runs when nothing they depend on changed, and `autoresearch start --force` goes on "
        "anyway"
    )
    assert row.error == message and events(store, first.id, "underpowered") == [message]
    assert row.finished_at is not None

    second, store, trainer, policy = session_run(
        ws, [probe(lora_r=8)], trainer=noisy(), budget=BudgetSpec(runs=1), force=True
    )
    row = store.get_session(second.id)
    assert row is not None and row.forced and row.status == "finished"
    assert [s.kind.value for s in trainer.calls] == ["probe"]  # baselines reused
    assert row.power is not None and row.power["underpowered"]  # its own budget, own report
    assert (
        f"underpowered ({'; '.join(row.power['underpowered'])}); going on because of --force: "
        "verdicts on what "
        "it cannot resolve will mostly read inconclusive"
    ) in events(store, second.id, "warning")


# ---- mutation survivors: what a row and a decision hold ----------------------------------------


def test_the_one_confirmation_a_small_budget_affords_is_run(tmp_path: Path) -> None:
    """Budget 5 with 3 baseline seeds affords (5 - 3) // 2 = 1 confirmation, which gets the
    whole session alpha: the candidate must be confirmed, not left a candidate."""
    ws = make_workspace(tmp_path / "ws")
    session, store, trainer, _ = session_run(
        ws, [probe(learning_rate=0.002)], budget=BudgetSpec(runs=5)
    )
    row = store.get_session(session.id)
    assert row is not None and row.power is not None and row.power["max_confirmations"] == 1
    assert [s.kind.value for s in trainer.calls] == ["baseline"] * 3 + ["probe", "confirm"]
    probes = store.probes(session.id)
    assert [p.status for p in probes][3:] == ["candidate", "keep"]
    # Judged at the whole session alpha (not the 2.5% a second confirmation would leave).
    assert probes[4].verdict is not None and "<= 0.05)" in probes[4].verdict["reason"]


def test_a_session_created_without_force_is_not_forced(tmp_path: Path) -> None:
    import sqlite3

    ws = make_workspace(tmp_path / "ws")
    store = Store(ws)
    policy = Scripted([])
    session = ResearchSession.create(
        store,
        load_campaign(ws / "search_space.yaml"),
        BudgetSpec(runs=4),
        policy_name="scripted",
        executor=World(),
        policy=policy,
        fallback=policy,
    )
    db = sqlite3.connect(ws / "runs" / "autoresearch.db")
    try:
        (forced,) = db.execute("select forced from sessions where id = ?", (session.id,)).fetchone()
    finally:
        db.close()
    assert forced == 0


def test_decisions_of_a_policy_that_spends_nothing_record_zero_tokens(tmp_path: Path) -> None:
    import sqlite3

    ws = make_workspace(tmp_path / "ws")
    unpriced: Step = lambda ctx: Proposal(  # noqa: E731 (a step, like probe()'s)
        Action.PROBE, lane="hyperparameters", changes={"lora_r": 8}, hypothesis="r 8"
    )
    session, _, _, _ = session_run(ws, [unpriced], budget=BudgetSpec(runs=4))
    db = sqlite3.connect(ws / "runs" / "autoresearch.db")
    try:
        rows = db.execute(
            "select input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd "
            "from decisions where session_id = ?",
            (session.id,),
        ).fetchall()
    finally:
        db.close()
    assert rows and all(r == (0, 0, 0, 0, 0.0) for r in rows)


def test_a_reused_baseline_row_says_when_it_was_taken_over(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    session_run(ws, [], budget=BudgetSpec(runs=4))
    second, store, _, _ = session_run(ws, [probe(lora_r=8)], budget=BudgetSpec(runs=1))
    reused = [p for p in store.probes(second.id) if p.reused_from]
    assert len(reused) == 3
    assert all(p.started_at is not None and p.finished_at is not None for p in reused)


def test_a_probe_recorded_but_never_started_is_trained_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between recording a probe and launching it leaves a pending row: resume trains
    it (once, with its recorded seed), and charges it once."""
    ws = make_workspace(tmp_path / "ws")
    real_run = ResearchSession._run

    def dies_before_the_probe(self: ResearchSession, row: ProbeRow) -> Any:
        if row.kind == "probe":
            raise Killed(row.id)
        return real_run(self, row)

    monkeypatch.setattr(ResearchSession, "_run", dies_before_the_probe)
    with pytest.raises(Killed):
        session_run(ws, [probe(lora_r=8)], budget=BudgetSpec(runs=4))
    monkeypatch.setattr(ResearchSession, "_run", real_run)
    store = Store(ws)
    row = store.latest_session()
    assert row is not None and row.status == "running"
    pending = store.probes(row.id)[3]
    assert (pending.kind, pending.state, pending.changes) == ("probe", "pending", {"lora_r": 8})

    trainer, policy = World(), Scripted([])
    with WorkspaceLock(ws / "runs"):
        open_session(ws, budget=None, resume=True, trainer=trainer, policies=(policy, policy)).run()
    assert [(s.probe_id, s.seed) for s in trainer.calls] == [(pending.id, pending.seed)]
    store = Store(ws)
    assert store.probes(row.id)[3].state == "finished"
    assert store.runs_used(row.id) == 4


def test_a_stray_byte_in_the_brief_never_stops_the_night(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "program.md").write_bytes(b"Focus on facts.\n\xff\xfe broken bytes\n")
    seen: list[str | None] = []

    def look(ctx: PolicyContext) -> Proposal:
        seen.append(ctx.brief)
        return probe(lora_r=8)(ctx)

    session, store, _, _ = session_run(ws, [look], budget=BudgetSpec(runs=4))
    assert store.get_session(session.id).status == "finished"  # type: ignore[union-attr]
    assert seen and seen[0] is not None and seen[0].startswith("Focus on facts.\n\ufffd")


def test_pooled_noise_counts_critical_failures_by_the_campaigns_rule(tmp_path: Path) -> None:
    """With replicated configurations pooled in, the noise model still reads the campaign's
    critical_below (a noisy world where some prompts score below it)."""
    from agent.stats import build_noise_model

    ws = make_workspace(tmp_path / "ws")
    script = [probe(lora_r=8), replay_of("probe"), probe(lora_r=32)]
    session, store, _, _ = session_run(ws, script, trainer=World(prompt_sd=3.0), force=True)
    probes = store.probes(session.id)
    assert [p.kind for p in probes[3:6]] == ["probe", "replay", "probe"], [p.kind for p in probes]
    baselines = session.baseline_runs()
    pair = [store.scores(probes[3].id), store.scores(probes[4].id)]
    later = probes[5]
    expected = build_noise_model(baselines, session.campaign.objective, replicates=[pair])
    ignoring = build_noise_model(baselines, None, replicates=[pair])
    assert expected.to_dict() != ignoring.to_dict()  # the world has critical prompts
    assert session.noise_for(later, baselines).to_dict() == expected.to_dict()


def test_an_identical_probe_of_an_earlier_session_is_reused_and_judged_afresh(
    tmp_path: Path,
) -> None:
    """No training is paid twice: the second session reuses the baseline and the probe (same
    content key), charges neither, and still writes its own verdict; --no-cache trains
    both again."""
    ws = make_workspace(tmp_path / "ws")
    first, store, trainer, _ = session_run(
        ws, [probe(learning_rate=0.002)], budget=BudgetSpec(runs=5)
    )
    assert [s.kind.value for s in trainer.calls] == ["baseline"] * 3 + ["probe", "confirm"]
    old = store.probes(first.id)
    second, store, trainer, _ = session_run(
        ws, [probe(learning_rate=0.002)], budget=BudgetSpec(runs=5)
    )
    assert trainer.calls == []  # nothing trained
    assert store.runs_used(second.id) == 0
    new = store.probes(second.id)
    assert [p.reused_from for p in new] == [p.id for p in old]
    assert [p.status for p in new] == [p.status for p in old]
    assert new[3].verdict == old[3].verdict  # the same screen against the same baseline
    # The confirmation is judged at this session's own level: its reused baseline was free,
    # so this budget affords two confirmations (2.5% each) where the first afforded one.
    assert new[4].verdict is not None and "<= 0.025)" in new[4].verdict["reason"]
    assert [store.scores(p.id) for p in new] == [store.scores(p.id) for p in old]
    assert events(store, second.id, "reused")[3] == (
        f"probe learning_rate=0.002 seed 3: identical to {old[3].id} (session {first.id}); "
        "its scores are reused, no training charged"
    )
    # The earlier run's folder keeps its own verdict file.
    assert json.loads((ws / "runs" / old[3].id / "verdict.json").read_text())["status"] == (
        old[3].status
    )
    third, store, trainer, _ = session_run(
        ws, [probe(learning_rate=0.002)], budget=BudgetSpec(runs=5), no_cache=True
    )
    assert len(trainer.calls) == 5 and store.runs_used(third.id) == 5


class JudgeOutageWorld(World):
    """Its probes come back with one prompt unscorable (a judge outage)."""

    def run(self, spec: ProbeSpec) -> ProbeResult:
        from dataclasses import replace as _replace

        result = super().run(spec)
        if spec.kind.value == "baseline":
            return result
        first = _replace(result.scores[0], score=float("nan"), error="judge_error: overloaded")
        return _replace(result, scores=(first, *result.scores[1:]))


def test_a_training_with_unscored_answers_is_never_reused(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    session_run(ws, [probe(lora_r=8)], budget=BudgetSpec(runs=4), trainer=JudgeOutageWorld())
    second, store, trainer, _ = session_run(ws, [probe(lora_r=8)], budget=BudgetSpec(runs=4))
    # The baseline (fully scored) is reused; the probe with the gap is trained again.
    assert [(s.kind.value, s.changes) for s in trainer.calls] == [("probe", {"lora_r": 8})]
    assert store.runs_used(second.id) == 1


def test_a_no_cache_session_resumes_without_the_cache(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    session_run(ws, [], budget=BudgetSpec(runs=4))  # a baseline an identical session could reuse
    with pytest.raises(Killed):
        session_run(ws, [], budget=BudgetSpec(runs=4), trainer=DyingWorld(2), no_cache=True)
    store = Store(ws)
    row = store.latest_session()
    assert row is not None and row.status == "running" and row.no_cache
    trainer, policy = World(), Scripted([])
    with WorkspaceLock(ws / "runs"):
        open_session(ws, budget=None, resume=True, trainer=trainer, policies=(policy, policy)).run()
    # The interrupted seed and the one never started are trained, not taken from the cache.
    assert [s.kind.value for s in trainer.calls] == ["baseline", "baseline"]
    assert all(p.reused_from is None for p in Store(ws).probes(row.id))


def test_a_kill_while_taking_over_a_training_never_touches_the_earlier_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path / "ws")
    first, store, _, _ = session_run(ws, [], budget=BudgetSpec(runs=4))
    earlier = store.probes(first.id)[0]
    real_record = ResearchSession._record

    def dies_taking_over(self: ResearchSession, row: ProbeRow, result: Any, run_dir: Any) -> None:
        if run_dir is None:  # the reuse path records without a folder of its own
            raise Killed(row.id)
        real_record(self, row, result, run_dir)

    monkeypatch.setattr(ResearchSession, "_record", dies_taking_over)
    with pytest.raises(Killed):
        session_run(ws, [], budget=BudgetSpec(runs=4))
    monkeypatch.setattr(ResearchSession, "_record", real_record)
    row = Store(ws).latest_session()
    assert row is not None
    half = Store(ws).probes(row.id)[0]
    assert half.state == "pending" and half.reused_from == earlier.id
    trainer, policy = World(), Scripted([])
    with WorkspaceLock(ws / "runs"):
        open_session(ws, budget=None, resume=True, trainer=trainer, policies=(policy, policy),
                     no_cache=True).run()  # fmt: skip
    assert trainer.calls[0].probe_id == half.id
    assert trainer.calls[0].out_dir == ws / "runs" / half.id  # its own folder
    assert "resume_from" not in trainer.calls[0].trainer
    assert not (Path(earlier.run_dir or "") / "INTERRUPTED").exists()
    assert Store(ws).probes(row.id)[0].reused_from is None

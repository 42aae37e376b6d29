"""Whole sessions through the CLI on the fake trainer: start → report, budget, bad input,
crashes, resume, replay, status/show/power."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.policies.base import Policy
from agent.session import WorkspaceLock
from agent.store.store import Store
from tests.conftest import make_workspace, write_prompts

runner = CliRunner()


def cli(*args: str, workspace: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-w", str(workspace)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def assert_views_match(workspace: Path) -> Store:
    store = Store(workspace)
    assert (workspace / "results.tsv").read_text() == store.render_tsv()
    return store


def test_start_runs_a_whole_session_and_reports(workspace: Path) -> None:
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 0, out
    store = assert_views_match(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    assert store.runs_used(session.id) == 8
    probes = store.probes(session.id)
    assert [p.kind for p in probes[:2]] == ["baseline", "baseline"]
    # Every probe trained exactly the baseline's steps.
    assert {p.steps for p in probes} == {30}
    # The fake world's real effect (learning_rate=2e-3) is found and confirmed; keep appears
    # only on the confirmation row, the candidate's own row says candidate.
    keeps = [p for p in probes if p.status == "keep"]
    assert [p.kind for p in keeps] == ["confirm"]
    assert keeps[0].changes == {"learning_rate": 0.002}
    parent = store.get_probe(keeps[0].parent_id or "")
    assert parent is not None and parent.status == "candidate"
    # The trade-off (mixture=stratified drops voice) is a guard_fail naming the guard.
    strat = next(p for p in probes if p.changes == {"mixture": "stratified"})
    assert strat.status == "guard_fail" and "voice" in strat.verdict["reason"]  # type: ignore[index]
    # Run folders hold the contract's files.
    run_dir = Path(keeps[0].run_dir or "")
    for name in ("config.json", "scores.jsonl", "metrics.json", "verdict.json", "train.log"):
        assert (run_dir / name).exists(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "confirm" and config["params"]["learning_rate"] == 0.002
    # progress.log has one line per event; the report exists with its archive copy.
    log = (workspace / "runs" / "progress.log").read_text()
    assert "noise" in log and "keep" in log
    report = (workspace / "SESSION_REPORT.md").read_text()
    assert "Finding: learning_rate=0.002" in report
    assert "same 30 steps" in report
    assert (workspace / "docs" / "sessions" / f"SESSION_REPORT_{session.id}.md").exists()
    header = (workspace / "results.tsv").read_text().splitlines()[0].split("\t")
    assert header == [
        "probe_id",
        "session",
        "kind",
        "lane",
        "change",
        "steps",
        "seed",
        "target",
        "target_delta",
        "ci_low",
        "ci_high",
        "guard_ok",
        "worst_guard",
        "worst_guard_delta",
        "critical",
        "status",
        "description",
    ]
    grep_keep = [r for r in (workspace / "results.tsv").read_text().splitlines() if "\tkeep\t" in r]
    assert len(grep_keep) == 1 and "\tconfirm\t" in grep_keep[0]


def test_budget_is_never_overspent(workspace: Path) -> None:
    code, out = cli("start", "--budget", "4", workspace=workspace)
    assert code == 0, out
    store = assert_views_match(workspace)
    session = store.latest_session()
    assert session is not None
    assert store.runs_used(session.id) == 4
    assert len(store.probes(session.id)) == 4


def test_budget_too_small_for_the_baseline(workspace: Path) -> None:
    code, out = cli("start", "--budget", "3", workspace=workspace)
    assert code == 2
    assert "cannot cover 3 baseline seed(s) to train" in out


def test_wall_clock_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_SLEEP", "0.4")
    code, out = cli("start", "--budget", "4s", workspace=ws)
    assert code in (0, 1), out
    store = Store(ws)
    session = store.latest_session()
    assert session is not None
    # Training never runs past the budget (the last one is stopped at its end); recording
    # the last result may add a moment on a loaded machine.
    assert session.seconds_used < 4.0 + 1.5
    probes = store.probes(session.id)
    started = min(p.started_at for p in probes if p.started_at)
    ended = max(p.finished_at for p in probes if p.finished_at)
    assert (ended - started).total_seconds() < 4.0 + 1.0
    assert store.runs_used(session.id) >= 2


def test_missing_guard_category_stops_before_training(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    write_prompts(ws / "probe-prompts.jsonl", {"facts": 8, "voice": 8})
    code, out = cli("start", "--budget", "8", workspace=ws)
    assert code == 2
    assert "guard category 'offtask' has 0 eval prompt(s)" in out
    assert Store(ws).latest_session() is None
    code, out = cli("check", workspace=ws)
    assert code == 2 and "offtask" in out


def test_check_passes_on_a_good_workspace(workspace: Path) -> None:
    code, out = cli("check", workspace=workspace)
    assert code == 0, out
    assert "ok" in out and "3 lane(s)" in out


def test_bad_yaml_is_reported_with_file_and_line(workspace: Path) -> None:
    path = workspace / "search_space.yaml"
    path.write_text(path.read_text().replace("steps: 30", "steps: -3"))
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 2
    assert "search_space.yaml:" in out and "probe.steps" in out and "greater than 0" in out


def test_second_start_while_locked_is_refused(workspace: Path) -> None:
    with WorkspaceLock(workspace / "runs"):
        code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 2
    assert "another autoresearch process" in out


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("exit1", "trainer exited with code 1"),
        ("no_scores", "scores.jsonl: missing"),
        ("nan", "score must be a finite number, got nan"),
        ("unknown_id", "unknown prompt_id 'no-such-prompt'"),
        ("wrong_category", "not 'elsewhere'"),
    ],
)
def test_a_crashing_probe_never_ends_the_session(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    monkeypatch.setenv("FAKE_MODE", mode)
    monkeypatch.setenv("FAKE_MODE_WHEN", "lora_r=8")
    code, out = cli("start", "--budget", "12", workspace=workspace)
    assert code == 0, out
    store = assert_views_match(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    probes = store.probes(session.id)
    crashed = [p for p in probes if p.status == "crash"]
    assert [p.changes for p in crashed] == [{"lora_r": 8}]
    assert message in (crashed[0].error or "")
    if mode == "exit1":
        assert "CUDA out of memory (simulated)" in (crashed[0].log_tail or "")
    assert len([p for p in probes if p.state == "finished"]) == store.runs_used(session.id)
    assert "crash" in (workspace / "SESSION_REPORT.md").read_text()


def test_unscorable_prompts_are_left_out_never_scored_zero(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "judge_error")
    monkeypatch.setenv("FAKE_MODE_WHEN", "learning_rate=0.002")
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 0, out
    store = assert_views_match(workspace)
    probe = next(
        p
        for p in store.probes(store.latest_session().id)  # type: ignore[union-attr]
        if p.changes == {"learning_rate": 0.002} and p.kind == "probe"
    )
    errors = [s for s in store.scores(probe.id, include_errors=True) if s.error]
    assert errors and all(s.error.startswith("judge_error") for s in errors)  # type: ignore[union-attr]
    assert len(store.scores(probe.id)) == 72 - len(errors)
    facts = next(c for c in probe.verdict["categories"] if c["category"] == "facts")  # type: ignore[index]
    assert facts["n_prompts"] == 24 - len(errors) == 16
    # The real +1.5 effect is still seen on the prompts that were scored.
    assert probe.status == "candidate"
    # The report's evaluation health counts them, over every training of the session.
    every = [
        s
        for p in store.probes(store.latest_session().id)  # type: ignore[union-attr]
        for s in store.scores(p.id, include_errors=True)
        if s.error
    ]
    assert {s.category for s in every} == {"facts"} and len(every) > len(errors)
    report = (workspace / "SESSION_REPORT.md").read_text()
    assert f"never counted as 0): facts {len(every)}." in report


def test_a_hanging_trainer_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = make_workspace(tmp_path / "ws", timeout="2s")
    monkeypatch.setenv("FAKE_MODE", "hang")
    monkeypatch.setenv("FAKE_MODE_WHEN", "lora_r=8")
    code, out = cli("start", "--budget", "12", workspace=ws)
    assert code == 0, out
    store = Store(ws)
    crashed = [p for p in store.probes(store.latest_session().id) if p.status == "crash"]  # type: ignore[union-attr]
    assert len(crashed) == 1 and "timed out after 2s" in (crashed[0].error or "")


def test_a_baseline_that_always_crashes_fails_the_session_clearly(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "exit1")
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 1, out
    store = assert_views_match(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "failed"
    assert "baseline could not be trained" in (session.error or "")
    # Replacement seeds were tried, then the session stopped: no probe was judged.
    assert {p.kind for p in store.probes(session.id)} == {"baseline"}


def test_unfinished_session_points_to_resume(workspace: Path) -> None:
    from agent.runtime import open_session
    from agent.session import BudgetSpec

    store = Store(workspace)
    with WorkspaceLock(workspace / "runs"):
        open_session(workspace, budget=BudgetSpec(runs=8), resume=False)
    store.close()
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 2 and "autoresearch resume" in out
    code, out = cli("resume", workspace=workspace)
    assert code == 0, out
    assert_views_match(workspace)
    session = Store(workspace).latest_session()
    assert session is not None and session.status == "finished"


def test_start_new_abandons_the_unfinished_session(workspace: Path) -> None:
    from agent.runtime import open_session
    from agent.session import BudgetSpec

    with WorkspaceLock(workspace / "runs"):
        first = open_session(workspace, budget=BudgetSpec(runs=8), resume=False)
    code, out = cli("start", "--budget", "4", "--new", workspace=workspace)
    assert code == 0, out
    store = Store(workspace)
    assert store.get_session(first.id).status == "abandoned"  # type: ignore[union-attr]


class InterruptingTrainer:
    """Raises KeyboardInterrupt (Ctrl-C) on its n-th run."""

    def __init__(self, inner, n: int):  # type: ignore[no-untyped-def]
        self.inner, self.n, self.calls = inner, n, 0

    def preflight(self) -> list[str]:
        return self.inner.preflight()

    def run(self, spec):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.n:
            spec.out_dir.mkdir(parents=True)  # interrupted mid-training
            raise KeyboardInterrupt
        return self.inner.run(spec)


@pytest.mark.parametrize("interrupt_at", [2, 4, 6])
def test_ctrl_c_then_resume_keeps_everything(
    workspace: Path, interrupt_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.campaign import load_campaign
    from agent.runtime import build_trainer, open_session
    from agent.session import BudgetSpec

    markers = workspace.parent / "markers"  # the trainer's own record of what it started
    monkeypatch.setenv("FAKE_MARKERS", str(markers))

    campaign = load_campaign(workspace / "search_space.yaml")
    trainer = InterruptingTrainer(build_trainer(campaign), interrupt_at)
    with WorkspaceLock(workspace / "runs"):
        session = open_session(
            workspace,
            budget=BudgetSpec(runs=8),
            resume=False,
            trainer=trainer,  # type: ignore[arg-type]
        )
        with pytest.raises(KeyboardInterrupt):
            session.run()
    store = Store(workspace)
    before = {p.id: p.status for p in store.probes(session.id) if p.state == "finished"}
    assert len(before) == interrupt_at - 1
    running = [p for p in store.probes(session.id) if p.state == "running"]
    assert len(running) == 1
    started_before = {m.name: m.read_text() for m in markers.glob("*.started")}
    assert len(started_before) == interrupt_at - 1
    code, out = cli("resume", workspace=workspace)
    assert code == 0, out
    store = assert_views_match(workspace)
    started_after = {m.name: m.read_text() for m in markers.glob("*.started")}
    # Resume trained what was left and nothing that had finished: 8 trainings in all, and
    # every training started before the interruption was not started again.
    assert len(started_after) == 8
    assert all(started_after[k] == v for k, v in started_before.items())
    after = {p.id: p.status for p in store.probes(session.id)}
    assert all(after[k] == v for k, v in before.items())  # nothing finished was lost or changed
    assert store.runs_used(session.id) == 8  # the interrupted training counted once
    rerun = store.get_probe(running[0].id)
    assert rerun is not None and rerun.attempts == 2 and rerun.state == "finished"
    assert rerun.run_dir and rerun.run_dir.endswith(".attempt2")
    assert (Path(running[0].run_dir or "") / "INTERRUPTED").exists()


def test_replay_uses_the_stored_config(workspace: Path) -> None:
    code, out = cli("start", "--budget", "8", workspace=workspace)
    assert code == 0, out
    store = Store(workspace)
    probe = next(
        p
        for p in store.probes(store.latest_session().id)  # type: ignore[union-attr]
        if p.changes == {"learning_rate": 0.002} and p.kind == "probe"
    )
    # The campaign file changes after the session, in a recipe key the probe does not
    # override: a replay must use the stored recipe, not today's.
    path = workspace / "search_space.yaml"
    path.write_text(path.read_text().replace("lora_r: 16", "lora_r: 4"))
    code, out = cli("replay", "probe-", workspace=workspace)
    assert code == 2 and "matches" in out and "give more of the id" in out
    code, out = cli("replay", probe.id, workspace=workspace)
    assert code == 0, out
    assert "facts" in out and "+0.00" in out  # the fake trainer is deterministic per seed
    code, out = cli("replay", probe.id, "--seed", "7", workspace=workspace)
    assert code == 0, out
    replays = [
        p
        for p in Store(workspace).probes(probe.session_id)
        if p.parent_id == probe.id and p.kind == "replay"
    ]
    assert [r.seed for r in replays] == [probe.seed, 7]
    assert all(r.spec and r.spec["params"]["learning_rate"] == 0.002 for r in replays)
    assert all(r.spec and r.spec["params"]["lora_r"] == 16 for r in replays)
    assert_views_match(workspace)


def test_status_show_power_and_report(workspace: Path) -> None:
    assert cli("start", "--budget", "8", workspace=workspace)[0] == 0
    code, out = cli("status", workspace=workspace)
    assert code == 0 and "8/8 trainings (0 left)" in out and "keep" in out
    store = Store(workspace)
    probe = next(p for p in store.probes(store.latest_session().id) if p.status == "guard_fail")  # type: ignore[union-attr]
    code, out = cli("show", probe.id, workspace=workspace)
    assert code == 0
    assert "voice" in out and "guard regressed" in out and "learning_rate" in out
    code, out = cli("show", "probe-nope", workspace=workspace)
    assert code == 2 and "no probe 'probe-nope'" in out
    code, out = cli("power", workspace=workspace)
    assert code == 0 and "kept with 80% power" in out and "power gate passed" in out
    (workspace / "SESSION_REPORT.md").unlink()
    code, out = cli("report", workspace=workspace)
    assert code == 0 and (workspace / "SESSION_REPORT.md").exists()


def test_init_writes_a_workspace_that_checks(tmp_path: Path) -> None:
    import yaml

    from agent.campaign import load_campaign

    target = tmp_path / "new"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    for name in (
        "search_space.yaml",
        "data/probe-prompts.jsonl",
        "program.md",
        "train_probe.py",
        "data/manifest.yaml",
        "data/sft/facts.jsonl",
    ):
        assert (target / name).exists(), name
    code, out = cli("check", workspace=target)
    assert code == 0, out
    # The template's recipe is what its example trainer reads (keep them in step): every key
    # is one train_probe.py names, or a weight of one of the data files it trains on.
    import ast

    campaign = load_campaign(target / "search_space.yaml")
    root = yaml.safe_load((Path(__file__).parents[1] / "search_space.yaml").read_text())
    assert campaign.trainer.kind == "command"
    script = ast.parse((target / "train_probe.py").read_text())
    keys = next(
        ast.literal_eval(node.value)
        for node in script.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "KEYS"
    )
    sources = {p.stem for p in (target / "data" / "sft").glob("*.jsonl")}
    for key in campaign.recipe:
        assert key in keys or key.removeprefix("weight_") in sources, key
    assert root["eval"]["prompts"] == "data/probe-prompts.jsonl"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2 and "--force" in result.output


def test_judge_without_api_key_fails_preflight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    root = Path(__file__).parents[1]
    ws = tmp_path / "lab"
    ws.mkdir()
    shutil.copytree(root / "data", ws / "data")
    campaign = yaml.safe_load((root / "search_space.yaml").read_text())
    campaign["eval"]["judge"] = {"categories": ["voice"], "batch": True}
    (ws / "search_space.yaml").write_text(yaml.safe_dump(campaign))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, out = cli("check", workspace=ws)
    assert code == 2
    assert "eval.judge: the LLM judge needs ANTHROPIC_API_KEY" in out
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
    code, out = cli("check", workspace=ws)
    assert code == 0, out
    assert "Message Batch can take up to hours" in out
    assert "sk-test-not-a-real-key" not in out


class ScriptedPolicy(Policy):
    """A policy that answers from a script (a list of callables context -> Proposal)."""

    name = "scripted"
    narrative_usage = None

    def __init__(self, script):  # type: ignore[no-untyped-def]
        self.script = list(script)
        self.told: list[str] = []
        self.rejected: list[str] = []

    def ask(self, context):  # type: ignore[no-untyped-def]
        from agent.policies.base import Action, Proposal

        if not self.script:
            return Proposal(action=Action.CONCLUDE, hypothesis="script done")
        return self.script.pop(0)(context)

    def tell(self, record, context) -> None:  # type: ignore[no-untyped-def]
        self.told.append(record.probe_id)

    def reject(self, proposal, reason, context) -> None:  # type: ignore[no-untyped-def]
        self.rejected.append(reason)

    def read(self, record, context):  # type: ignore[no-untyped-def]
        return f"read {record.probe_id}"

    def narrative(self, data):  # type: ignore[no-untyped-def]
        return None


def test_policy_proposals_are_validated_and_replays_confirmed(workspace: Path) -> None:
    from agent.policies.base import Action, Proposal
    from agent.policies.sweep import SweepPolicy
    from agent.runtime import open_session
    from agent.session import BudgetSpec

    def probe(**changes):  # type: ignore[no-untyped-def]
        return lambda ctx: Proposal(
            Action.PROBE, lane="hyperparameters", changes=changes, hypothesis=f"try {changes}"
        )

    def replay_last_probe(ctx):  # type: ignore[no-untyped-def]
        last = [r for r in ctx.history if r.kind == "probe"][-1]
        return Proposal(Action.REPLAY, replay_of=last.probe_id, hypothesis="replay it")

    def replay_baseline(ctx):  # type: ignore[no-untyped-def]
        store = Store(workspace)
        base = store.probes(ctx.session_id)[0]
        return Proposal(Action.REPLAY, replay_of=base.id, hypothesis="replay the baseline")

    script = [
        probe(lora_r=8),  # no true effect
        probe(learning_rate=0.5),  # out of range -> refused
        replay_last_probe,  # replay the lora_r=8 probe
        replay_last_probe,  # the same probe again -> refused
        replay_baseline,  # refused: not a probe
        probe(learning_rate=0.002),  # the real effect -> candidate -> confirm -> keep
        replay_last_probe,  # a replay of the kept change: a screen, never a keep by itself
    ]
    policy = ScriptedPolicy(script)
    from agent.campaign import load_campaign

    campaign_policy = (policy, SweepPolicy(load_campaign(workspace / "search_space.yaml")))
    with WorkspaceLock(workspace / "runs"):
        session = open_session(
            workspace, budget=BudgetSpec(runs=10), resume=False, policies=campaign_policy
        )  # type: ignore[arg-type]
        session.run()
    store = Store(workspace)
    probes = store.probes(session.id)
    kinds = [(p.kind, p.changes) for p in probes if p.kind != "baseline"]
    assert kinds[:2] == [("probe", {"lora_r": 8}), ("replay", {"lora_r": 8})]
    replay = next(p for p in probes if p.kind == "replay")
    original = next(p for p in probes if p.kind == "probe" and p.changes == {"lora_r": 8})
    used = {p.seed for p in probes if p.kind == "baseline"} | {original.seed}
    assert replay.parent_id == original.id and replay.seed not in used  # a fresh seed
    assert replay.verdict["runs"] == 2  # type: ignore[index]  # pooled with the original
    assert any("outside the knob's range" in r for r in policy.rejected)
    assert any("already replayed once" in r for r in policy.rejected)
    assert any("is not a probe of this session" in r for r in policy.rejected)
    keep = [p for p in probes if p.status == "keep"]
    assert keep and all(p.kind == "confirm" for p in keep)
    replays = [p for p in probes if p.kind == "replay"]
    assert [p.changes for p in replays] == [{"lora_r": 8}, {"learning_rate": 0.002}]
    # A replay pools its runs for a screen; only a fresh-seed confirmation judged alone keeps.
    assert all(p.verdict["stage"] == "screen" for p in replays)  # type: ignore[index]
    assert replays[1].status == "candidate"
    # Readings were stored, and every finished non-baseline probe was told once, in order.
    assert all(p.reading == f"read {p.id}" for p in probes if p.kind != "baseline")
    assert policy.told == [p.id for p in probes if p.kind != "baseline"]
    refused = [d for d in store.decisions(session.id) if not d.accepted]
    assert len(refused) == 3


@pytest.mark.parametrize(
    ("budget", "conclusion"),
    [
        # lr 5e-4 (worse) alone: one knob tried one way is not a clean negative
        ("4", "So this is not a clean negative: not tried:"),
        ("7", "No confirmed finding yet. Promising"),  # lr 2e-3 passes once, no budget left
    ],
)
def test_report_conclusion_says_what_the_evidence_supports(
    workspace: Path, budget: str, conclusion: str
) -> None:
    code, out = cli("start", "--budget", budget, workspace=workspace)
    assert code == 0, out
    report = (workspace / "SESSION_REPORT.md").read_text()
    assert conclusion in report
    assert "Finding:" not in report
    if budget == "7":
        assert "`learning_rate=0.002`" in report and "candidate" in report


def test_resume_hands_the_interrupted_attempts_checkpoints_to_the_trainer(
    workspace: Path,
) -> None:
    from agent.campaign import load_campaign
    from agent.runtime import build_trainer, open_session
    from agent.session import BudgetSpec

    class CheckpointingThenInterrupted(InterruptingTrainer):
        def run(self, spec):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == self.n:
                (spec.out_dir / "checkpoints" / "checkpoint-10").mkdir(parents=True)
                raise KeyboardInterrupt
            return self.inner.run(spec)

    class Recording(InterruptingTrainer):
        def run(self, spec):  # type: ignore[no-untyped-def]
            self.seen.append(spec)
            return self.inner.run(spec)

    inner = build_trainer(load_campaign(workspace / "search_space.yaml"))
    with WorkspaceLock(workspace / "runs"):
        session = open_session(
            workspace,
            budget=BudgetSpec(runs=5),
            resume=False,
            trainer=CheckpointingThenInterrupted(inner, 3),
        )  # type: ignore[arg-type]
        with pytest.raises(KeyboardInterrupt):
            session.run()
    recording = Recording(inner, 0)
    recording.seen = []  # type: ignore[attr-defined]
    with WorkspaceLock(workspace / "runs"):
        resumed = open_session(workspace, budget=None, resume=True, trainer=recording)  # type: ignore[arg-type]
        resumed.run()
    first = recording.seen[0]  # type: ignore[attr-defined]
    assert first.out_dir.name.endswith(".attempt2")
    old = first.out_dir.parent / first.out_dir.name.removesuffix(".attempt2")
    assert first.trainer["resume_from"] == str(old / "checkpoints")
    # Later trainings start from scratch.
    assert all("resume_from" not in s.trainer for s in recording.seen[1:])  # type: ignore[attr-defined]


def test_every_stored_verdict_is_reproduced_from_the_stored_scores(workspace: Path) -> None:
    """A verdict is a function of the recorded scores: recompute each one from the database
    (baseline runs, replicated configurations, the confirmation's alpha-spending level) and
    compare numbers, not renders."""
    from agent.campaign import Objective
    from agent.stats import build_noise_model, confirmation_alpha
    from agent.verdict import Verdict, compare

    assert cli("start", "--budget", "8", workspace=workspace)[0] == 0
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.power
    objective = Objective.model_validate(session.campaign["objective"])
    probes = store.probes(session.id)
    baselines = [store.scores(p.id) for p in probes if p.kind == "baseline"]
    confirms = [p for p in probes if p.kind == "confirm"]
    assert confirms, "the fake world's learning_rate=2e-3 should reach a confirmation"
    judged = [p for p in probes if p.kind != "baseline" and p.status != "crash"]
    for p in judged:
        key = json.dumps(p.changes, sort_keys=True)
        others: dict[str, list] = {}
        for q in judged:
            other = json.dumps(q.changes, sort_keys=True)
            if q.seq < p.seq and other != key:
                others.setdefault(other, []).append(store.scores(q.id))
        noise = build_noise_model(
            baselines, objective, replicates=[g for g in others.values() if len(g) > 1]
        )
        runs = [store.scores(p.id)]
        if p.kind == "replay":
            runs = [store.scores(p.parent_id), *runs]  # type: ignore[arg-type]
        alpha = None
        if p.kind == "confirm":
            alpha = confirmation_alpha(
                confirms.index(p) + 1, session.power["max_confirmations"]
            )
        again = compare(runs, baselines, objective, noise, confirmation=p.kind == "confirm",
                        alpha=alpha)  # fmt: skip
        stored = Verdict.from_dict(p.verdict)  # type: ignore[arg-type]
        assert again == stored, p.id


def test_every_training_of_a_session_has_its_own_seed(workspace: Path) -> None:
    assert cli("start", "--budget", "8", workspace=workspace)[0] == 0
    store = Store(workspace)
    probes = store.probes(store.latest_session().id)  # type: ignore[union-attr]
    seeds = [p.seed for p in probes]
    assert len(set(seeds)) == len(seeds)
    assert [p.seed for p in probes if p.kind == "baseline"] == [0, 1, 2]  # probe.seed, +1, +2
    # The trainer got the seed the database says (config.json is what it read).
    for p in probes:
        config = json.loads((Path(p.run_dir) / "config.json").read_text())  # type: ignore[arg-type]
        assert config["seed"] == p.seed and config["steps"] == p.steps == 30


def test_a_probe_trained_for_other_steps_is_never_judged_against_the_baseline(
    workspace: Path,
) -> None:
    from agent.policies.sweep import SweepPolicy
    from agent.replay import stored_campaign
    from agent.runtime import build_executor, build_trainer
    from agent.session import ResearchSession
    from agent.store.tables import ProbeRow

    assert cli("start", "--budget", "4", workspace=workspace)[0] == 0
    store = Store(workspace)
    row = store.latest_session()
    assert row is not None
    campaign = stored_campaign(store, row.id)
    policy = SweepPolicy(campaign)
    session = ResearchSession(
        store=store,
        campaign=campaign,
        row=row,
        executor=build_executor(build_trainer(campaign)),
        policy=policy,
        fallback=policy,
    )
    probe = next(p for p in store.probes(row.id) if p.kind == "probe")
    scores = store.scores(probe.id)
    same = ProbeRow(id="x", session_id=row.id, seq=99, kind="probe", changes=probe.changes,
                    steps=30, seed=50, state="finished")  # fmt: skip
    assert session._judge(same, scores).status.value != "crash"
    longer = ProbeRow(id="y", session_id=row.id, seq=99, kind="probe", changes=probe.changes,
                      steps=60, seed=51, state="finished")  # fmt: skip
    verdict = session._judge(longer, scores)
    assert verdict.status.value == "crash" and "same number of steps" in verdict.reason


def test_resume_writes_the_report_a_kill_left_unwritten(workspace: Path) -> None:
    """A kill -9 after the session was marked finished but before SESSION_REPORT.md was
    written: `resume` writes the report from the database (issue 10, item 9)."""
    from agent.report.render import report_texts

    assert cli("start", "--budget", "6", workspace=workspace)[0] == 0
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    report = workspace / "SESSION_REPORT.md"
    archive = workspace / "docs" / "sessions" / f"SESSION_REPORT_{session.id}.md"
    report.unlink()
    archive.unlink()  # what the database holds, with no report: the kill's aftermath
    code, out = cli("resume", workspace=workspace)
    assert code == 0, out
    assert "before its report was written" in out
    expected, expected_archive = report_texts(store, session.id)
    assert report.read_text() == expected and archive.read_text() == expected_archive
    # With the report there, there is nothing left to resume.
    code, out = cli("resume", workspace=workspace)
    assert code == 2 and "nothing to resume" in out

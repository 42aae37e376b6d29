"""The running session keeps its probe list between reads (issue 10 item 12: per-training
cost must not grow with the session's length) — and never serves a stale one: every write of
a probe drops it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agent.store.store import Store
from agent.store.tables import ProbeRow, SessionRow
from probes.spec import ProbeResult, ProbeStatus, Score


def test_held_probes_follow_every_write(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create_session(
        SessionRow(id="s", status="running", started_at=datetime.now(UTC), budget_runs=3,
                   policy="sweep", campaign={"objective": {"target": "facts"}},
                   campaign_path="x")
    )  # fmt: skip
    store.hold_probes = True

    def add(probe_id: str) -> None:
        store.add_probe(ProbeRow(id=probe_id, session_id="s", kind="probe", changes={}, steps=1,
                                 seed=0, hypothesis=""))  # fmt: skip

    assert store.probes("s") == []
    add("a")
    assert [(p.id, p.state) for p in store.probes("s")] == [("a", "pending")]
    store.mark_running("a", tmp_path / "a", {})
    assert store.probes("s")[0].state == "running"
    result = ProbeResult("a", ProbeStatus.OK, scores=(Score("q", "facts", 1.0),))
    store.finish_probe("a", result, {"reason": "r"}, "discard")
    assert (store.probes("s")[0].state, store.probes("s")[0].status) == ("finished", "discard")
    store.set_verdict("a", {"reason": "s"}, "candidate")
    assert store.probes("s")[0].status == "candidate"
    store.update_probe("a", reading="read")
    add("b")
    assert [(p.id, p.reading) for p in store.probes("s")] == [("a", "read"), ("b", None)]
    # The list handed out is a copy: a caller's edit of it changes nothing held.
    store.probes("s").clear()
    assert len(store.probes("s")) == 2
    # Held, it is not read again; a write from elsewhere is not seen until the hold ends,
    # which is why only the session holding the workspace lock turns it on.
    other = Store(tmp_path)
    other.update_probe("b", reading="elsewhere")
    assert store.probes("s")[1].reading is None
    store.hold_probes = False
    assert store.probes("s")[1].reading == "elsewhere"


def test_a_verdict_reads_scores_only_of_replicated_configurations(
    workspace: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from agent.cli import app

    import agent.report.render as render

    reads: list[str] = []
    original = Store.scores
    reporting = []  # the report, written once at the end, reads every training: not a verdict

    def counting(self: Store, probe_id: str, **kwargs: object) -> list[Score]:
        if not reporting:
            reads.append(probe_id)
        return original(self, probe_id, **kwargs)  # type: ignore[arg-type]

    def while_reporting(original):  # type: ignore[no-untyped-def]
        def wrapped(*args: object, **kwargs: object) -> object:
            reporting.append(True)
            try:
                return original(*args, **kwargs)
            finally:
                reporting.pop()

        return wrapped

    monkeypatch.setattr(Store, "scores", counting)
    # The narrative's data and the report, built once at the end, read every training.
    monkeypatch.setattr(render, "report_texts", while_reporting(render.report_texts))
    monkeypatch.setattr(render, "report_data", while_reporting(render.report_data))
    result = CliRunner().invoke(app, ["start", "--budget", "8", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None
    probes = store.probes(session.id)
    baselines = {p.id for p in probes if p.kind == "baseline"}
    others = [p for p in probes if p.kind != "baseline"]
    # Each verdict reads the baselines' scores once and no other probe's: the only
    # configuration trained twice is the candidate and its confirmation, and a verdict leaves
    # its own configuration out of the noise model. (Reading every earlier probe's scores for
    # every verdict made a 300-training session's per-training cost grow with its length.)
    assert [p.kind for p in others].count("confirm") == 1
    assert [r for r in reads if r not in baselines] == []


def test_results_tsv_is_appended_in_order_and_rewritten_otherwise(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path)
    rewrites: list[int] = []
    original = Store.write_tsv

    def counting(self: Store) -> None:
        rewrites.append(1)
        original(self)

    monkeypatch.setattr(Store, "write_tsv", counting)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for sid, minute in (("early", 0), ("late", 5)):
        store.create_session(
            SessionRow(id=sid, status="running", started_at=t0.replace(minute=minute),
                       budget_runs=9, policy="sweep",
                       campaign={"objective": {"target": "facts"}}, campaign_path="x")
        )  # fmt: skip

    def finish(sid: str, pid: str) -> None:
        store.add_probe(ProbeRow(id=pid, session_id=sid, kind="probe", changes={"k": pid},
                                 steps=1, seed=0, hypothesis=f"h {pid}"))  # fmt: skip
        store.mark_running(pid, tmp_path / pid, {})
        result = ProbeResult(pid, ProbeStatus.OK, scores=(Score("q", "facts", 1.0),))
        store.finish_probe(pid, result, {"target_delta": 0.1}, "discard")
        assert store.tsv_path.read_text() == store.render_tsv()  # the file is always the view

    for pid in ("e1", "e2", "e3"):
        finish("early", pid)
    assert len(rewrites) == 1  # the first creates the file; the next two are appended
    finish("late", "l1")
    assert len(rewrites) == 1  # a later session's probe sorts last: appended
    finish("early", "e4")  # sorts before l1: the file is rewritten
    assert len(rewrites) == 2
    store.tsv_path.write_text(store.tsv_path.read_text() + "a stray line\n")
    finish("late", "l2")  # the file no longer holds exactly the earlier rows: rewritten
    assert len(rewrites) == 3

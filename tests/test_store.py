"""The store's contract, over every backend (SQLite file, PostgreSQL server)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.store.store import Store, utcnow
from agent.store.tables import DecisionRow, ProbeRow, SessionRow
from probes.spec import ProbeResult, ProbeStatus, Score

_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(tmp_path)
    base = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"t{next(_db_counter)}_{abs(hash(tmp_path)) % 10**8}"
    with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return Store(tmp_path, url=base.rsplit("/", 1)[0] + f"/{name}")


def _session(store: Store, sid: str = "s1") -> SessionRow:
    return store.create_session(
        SessionRow(
            id=sid, status="running", started_at=utcnow(), budget_runs=8, budget_seconds=None,
            seconds_used=0.0, policy="sweep",
            campaign={"objective": {"target": "facts", "guards": ["voice"]}},
            campaign_path="/x/search_space.yaml",
        )
    )


def _probe(sid: str, pid: str, kind: str = "probe", changes: dict | None = None) -> ProbeRow:
    return ProbeRow(
        id=pid, session_id=sid, seq=0, kind=kind, lane="hyperparameters",
        changes=changes or {"learning_rate": 0.002}, steps=30, seed=0,
        hypothesis="raise\tthe lr\nbecause", state="pending",
    )


def test_probe_lifecycle_and_budget(store: Store, tmp_path: Path) -> None:
    _session(store)
    a = store.add_probe(_probe("s1", "probe-a", "baseline", {}))
    b = store.add_probe(
        _probe("s1", "probe-b"),
        DecisionRow(session_id="s1", created_at=utcnow(), policy="sweep", action="probe",
                    proposal={"lane": "hyperparameters"}, accepted=True, input_tokens=10,
                    output_tokens=5, cost_usd=0.01),
    )
    assert (a.seq, b.seq) == (1, 2)
    assert store.runs_used("s1") == 0
    store.mark_running("probe-b", tmp_path / "runs" / "probe-b", {"params": {}})
    store.mark_running("probe-b", tmp_path / "runs" / "probe-b.attempt2", {"params": {}})
    assert store.runs_used("s1") == 1  # a re-run is charged once
    assert store.get_probe("probe-b").attempts == 2  # type: ignore[union-attr]
    result = ProbeResult(
        probe_id="probe-b", status=ProbeStatus.OK,
        scores=(Score("f-1", "facts", 7.5), Score("f-1", "facts", 7.0, repeat=1, critical=True,
                                                   components={"voice": 8.0})),
        metrics={"train_loss": 0.5}, runtime_s=1.5,
    )
    verdict = {"target": "facts", "target_delta": 1.25, "ci_low": 0.5, "ci_high": 2.0,
               "guard_ok": True, "worst_guard": "voice", "worst_guard_delta": -0.1}
    store.finish_probe("probe-b", result, verdict, "candidate")
    assert store.scores("probe-b") == list(result.scores)
    assert [d.cost_usd for d in store.decisions("s1")] == [0.01]
    assert store.decisions("s1")[0].probe_id == "probe-b"
    assert [p.id for p in store.find_probe("probe-")] == ["probe-a", "probe-b"]
    assert [p.id for p in store.find_probe("probe-b")] == ["probe-b"]
    # TSV: one row per finished probe, tabs and newlines kept out of cells.
    tsv = (tmp_path / "results.tsv").read_text()
    assert tsv == store.render_tsv()
    lines = tsv.splitlines()
    assert len(lines) == 2
    row = dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=True))
    assert row["change"] == "learning_rate=0.002"
    assert row["target_delta"] == "1.25" and row["status"] == "candidate"
    assert row["critical"] == "1" and row["description"] == "raise the lr because"
    store.set_verdict("probe-b", {**verdict, "target_delta": 0.5}, "discard")
    assert "\tdiscard\t" in (tmp_path / "results.tsv").read_text()


def test_sessions_and_events(store: Store, tmp_path: Path) -> None:
    _session(store, "s1")
    store.update_session("s1", status="finished")
    _session(store, "s2")
    assert store.unfinished_session().id == "s2"  # type: ignore[union-attr]
    assert store.add_seconds("s2", 2.0) == 2.0
    assert store.add_seconds("s2", 1.5) == 3.5
    store.event("s2", "start", "line one\nwith a newline", "probe-x")
    store.event("s2", "verdict", "keep")
    log = (tmp_path / "runs" / "progress.log").read_text().splitlines()
    assert len(log) == 2 and "[probe-x] line one with a newline" in log[0]
    (tmp_path / "runs" / "progress.log").write_text("garbage\n")
    store.sync_views()
    assert (tmp_path / "runs" / "progress.log").read_text().splitlines()[1].endswith("keep")


def test_whole_session_on_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from agent.cli import app
    from tests.conftest import make_workspace

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "whole_session"')
    url = postgres_url.rsplit("/", 1)[0] + "/whole_session"
    monkeypatch.setenv("AUTORESEARCH_DB", url)
    ws = make_workspace(tmp_path / "ws")
    result = CliRunner().invoke(app, ["start", "--budget", "6", "-w", str(ws)])
    assert result.exit_code == 0, result.output
    store = Store(ws)
    assert store.url == url
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    assert store.runs_used(session.id) == 6
    assert (ws / "results.tsv").read_text() == store.render_tsv()
    assert not (ws / "runs" / "autoresearch.db").exists()


def test_a_database_of_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    """Additive migration: columns added since a database was written appear, with their
    defaults for the old rows (a probe of an old session is still charged to its budget)."""
    import sqlite3

    store = Store(tmp_path)
    _session(store)
    store.add_probe(_probe("s1", "probe-old"))
    store.mark_running("probe-old", tmp_path / "runs" / "probe-old", {"params": {}})
    store.close()
    db = tmp_path / "runs" / "autoresearch.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_probes_run_key")
        for column in ("in_budget", "reused_from", "run_key"):
            conn.execute(f"ALTER TABLE probes DROP COLUMN {column}")
    with sqlite3.connect(db) as conn:
        before = {row[1] for row in conn.execute("PRAGMA table_info(probes)")}
    assert "in_budget" not in before
    reopened = Store(tmp_path)
    with sqlite3.connect(db) as conn:
        after = {row[1]: row for row in conn.execute("PRAGMA table_info(probes)")}
    assert {"in_budget", "reused_from", "run_key"} <= set(after)
    old = reopened.get_probe("probe-old")
    assert old is not None and old.in_budget is True and old.reused_from is None
    assert reopened.runs_used("s1") == 1  # counted, and in the budget by the default
    reopened.close()


def test_an_older_database_migrates_on_either_backend(store: Store, tmp_path: Path) -> None:
    """The same additive migration on SQLite and PostgreSQL: a boolean column's default is
    written in the backend's own syntax (PostgreSQL refuses `BOOLEAN DEFAULT 1`)."""
    from sqlalchemy import text

    _session(store)
    store.add_probe(_probe("s1", "probe-old"))
    store.mark_running("probe-old", tmp_path / "runs" / "probe-old", {"params": {}})
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_probes_run_key"))
        for column in ("in_budget", "counted", "run_key"):
            conn.execute(text(f"ALTER TABLE probes DROP COLUMN {column}"))
    url = store.url
    store.close()
    reopened = Store(tmp_path, url=url)
    old = reopened.get_probe("probe-old")
    assert old is not None
    # The old row reads the defaults: in the budget, not yet counted, no run key.
    assert (old.in_budget, old.counted, old.run_key) == (True, False, None)
    reopened.close()

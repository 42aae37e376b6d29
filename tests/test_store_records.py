"""What the store writes is what a user reads back: every field of every record, checked
against the database file itself (plain sqlite3, not the store's own readers), the order of
every list it returns, the rules of baseline reuse, the budget counter, and the additive
migration of a database written by an older version.

Lists are checked with SQLite's `reverse_unordered_selects` on: a query that forgets its
ORDER BY then returns its rows backwards instead of, by luck, in insertion order.
"""

from __future__ import annotations

import csv
import io
import json
import locale
import math
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from agent.store.store import Store
from agent.store.tables import DecisionRow, ProbeRow, SessionRow
from probes.spec import ProbeResult, ProbeStatus, Score

T0 = datetime(2026, 3, 1, 9, 0, 0)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _reverse_unordered(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA reverse_unordered_selects=ON")
    # Speed only (no test here pulls the plug): no fsync, no journal file per commit.
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA journal_mode=MEMORY")
    cursor.close()


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file with the current schema and no rows (creating one costs fsyncs)."""
    db = tmp_path_factory.mktemp("template") / "runs" / "autoresearch.db"
    Store(db.parents[1], url=f"sqlite:///{db}").close()
    return db


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: Path) -> Iterator[Store]:
    monkeypatch.delenv("AUTORESEARCH_DB", raising=False)
    (tmp_path / "ws" / "runs").mkdir(parents=True)
    shutil.copyfile(empty_db, tmp_path / "ws" / "runs" / "autoresearch.db")
    s = Store(tmp_path / "ws")
    event.listen(s.engine, "connect", _reverse_unordered)
    s.engine.dispose()  # every connection from now on has the pragma
    yield s
    s.close()


def _db(store: Store) -> sqlite3.Connection:
    conn = sqlite3.connect(store.runs_dir / "autoresearch.db")
    conn.row_factory = sqlite3.Row
    return conn


def _one(store: Store, sql: str, *params: Any) -> sqlite3.Row:
    with _db(store) as conn:
        rows = conn.execute(sql, params).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def _session(
    store: Store, sid: str, started_at: datetime = T0, status: str = "running"
) -> SessionRow:
    return store.create_session(
        SessionRow(
            id=sid,
            status=status,
            started_at=started_at,
            budget_runs=8,
            budget_seconds=None,
            seconds_used=0.0,
            policy="sweep",
            campaign={"objective": {"target": "facts", "guards": ["voice"]}},
            campaign_path="/x/search_space.yaml",
        )
    )


def _probe(sid: str, pid: str, **values: Any) -> ProbeRow:
    fields: dict[str, Any] = {
        "id": pid,
        "session_id": sid,
        "seq": 0,
        "kind": "probe",
        "lane": "hyperparameters",
        "changes": {"learning_rate": 0.002},
        "steps": 30,
        "seed": 0,
        "hypothesis": f"hypothesis of {pid}",
        "state": "pending",
    }
    fields.update(values)
    return ProbeRow(**fields)


def _result(pid: str, *scores: Score, **values: Any) -> ProbeResult:
    return ProbeResult(probe_id=pid, status=ProbeStatus.OK, scores=scores, **values)


def _read_tsv(path: Path) -> list[dict[str, str]]:
    """results.tsv read with the dialect its contract names (tests/test_tsv_contract.py)."""
    with path.open(newline="", encoding="utf-8") as fh:
        header, *body = list(
            csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        )
    return [dict(zip(header, row, strict=True)) for row in body]


# ---- the workspace and its connections ----------------------------------------------------


def test_a_new_workspace_gets_its_directories_and_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTORESEARCH_DB", raising=False)
    ws = tmp_path / "not" / "yet" / "there"
    s = Store(ws)
    db = ws / "runs" / "autoresearch.db"
    assert s.url == f"sqlite:///{db}"
    _session(s, "s1")
    s.close()
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id FROM sessions").fetchall() == [("s1",)]


def test_sqlite_connections_enforce_foreign_keys_and_wait_for_locks(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    with pytest.raises(IntegrityError):  # a probe of no session is refused
        store.add_probe(_probe("no-such-session", "orphan"))


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time is UTC+5:45."""
    monkeypatch.setenv("TZ", "XYZ-05:45")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamps_are_utc_whatever_the_local_timezone(store: Store, far_from_utc: None) -> None:
    _session(store, "s1")
    before = _now()
    store.event("s1", "start", "go")
    after = _now()
    row = _one(store, "SELECT created_at FROM events")
    created = datetime.fromisoformat(row["created_at"])
    assert before - timedelta(seconds=1) <= created <= after + timedelta(seconds=1)


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The process's locale encoding is ASCII (a cron job, a minimal container)."""
    if sys.flags.utf8_mode:
        pytest.skip("UTF-8 mode: the locale does not choose file encodings")
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        with open(__file__, encoding=None) as fh:
            assert fh.encoding.lower() not in ("utf-8", "utf8")
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, old)


def test_progress_log_and_results_tsv_are_utf8_whatever_the_locale(
    store: Store, ascii_locale: None
) -> None:
    _session(store, "s1")
    store.add_probe(_probe("s1", "p1", hypothesis="élever le taux — 学習率"))
    store.finish_probe("p1", _result("p1"), None, "discard")
    store.event("s1", "verdict", "gardé: +0,5 ± 0,1")
    log = store.log_path.read_bytes().decode("utf-8")
    assert log.endswith(" gardé: +0,5 ± 0,1\n")
    assert _read_tsv(store.tsv_path)[0]["description"] == "élever le taux — 学習率"
    store.sync_views()  # the rebuilt views too
    assert store.log_path.read_bytes().decode("utf-8") == log
    assert _read_tsv(store.tsv_path)[0]["description"] == "élever le taux — 学習率"


# ---- sessions ------------------------------------------------------------------------------


def test_session_lookups_go_by_start_time_not_insertion_order(store: Store) -> None:
    # Inserted p, q, r, s, t; started s < p < t < r < q.
    _session(store, "p", T0 + timedelta(hours=1))
    _session(store, "q", T0 + timedelta(hours=4), status="finished")
    _session(store, "r", T0 + timedelta(hours=3))
    _session(store, "s", T0)
    _session(store, "t", T0 + timedelta(hours=2), status="failed")
    assert [x.id for x in store.all_sessions()] == ["s", "p", "t", "r", "q"]
    assert store.latest_session().id == "q"  # type: ignore[union-attr]
    assert store.unfinished_session().id == "r"  # type: ignore[union-attr]  # newest running
    store.update_session("r", status="finished")
    assert store.unfinished_session().id == "p"  # type: ignore[union-attr]


def test_active_seconds_add_up_and_never_go_back(store: Store) -> None:
    _session(store, "s1")
    assert store.add_seconds("s1", 0.25) == 0.25
    assert store.add_seconds("s1", -5.0) == 0.25  # a clock step backwards adds nothing
    assert store.add_seconds("s1", 0.5) == 0.75
    assert _one(store, "SELECT seconds_used FROM sessions")["seconds_used"] == 0.75


# ---- probes --------------------------------------------------------------------------------


def test_a_probe_is_pending_then_running_with_where_and_what_it_runs(
    store: Store, tmp_path: Path
) -> None:
    _session(store, "s1")
    store.add_probe(_probe("s1", "p1"))
    row = _one(store, "SELECT state, seq, counted, attempts, run_dir, spec, started_at FROM probes")
    assert (row["state"], row["seq"], row["counted"], row["attempts"]) == ("pending", 1, 0, 0)
    assert (row["run_dir"], row["spec"], row["started_at"]) == (None, None, None)
    run_dir = tmp_path / "ws" / "runs" / "p1"
    spec = {"params": {"learning_rate": 0.002}, "steps": 30, "seed": 0}
    before = _now()
    store.mark_running("p1", run_dir, spec)
    after = _now()
    row = _one(store, "SELECT state, counted, attempts, run_dir, spec, started_at FROM probes")
    assert (row["state"], row["counted"], row["attempts"]) == ("running", 1, 1)
    assert row["run_dir"] == str(run_dir)
    assert json.loads(row["spec"]) == spec
    assert before <= datetime.fromisoformat(row["started_at"]) <= after


def test_a_finished_probe_keeps_every_field_of_its_result(store: Store) -> None:
    _session(store, "s1")
    store.add_probe(_probe("s1", "p1"))
    meta = {"judge_model": "judge-1", "rubric_hash": "abc123"}
    scores = (
        Score("f-1", "facts", 7.5, components={"accuracy": 8.0}, meta=meta),
        # An unscorable prompt is stored without a number, whatever the trainer put there.
        Score("f-2", "facts", 0.0, repeat=1, meta=meta, error="judge_error: timeout"),
        Score("v-1", "voice", 2.0, repeat=2, critical=True),
    )
    result = _result(
        "p1",
        *scores,
        metrics={"train_loss": 0.5, "eval_loss": 0.75},
        error="warning: slow",
        log_tail="step 30/30\ndone",
        runtime_s=12.5,
    )
    verdict = {"target": "facts", "target_delta": 1.25, "guard_ok": True}
    before = _now()
    store.finish_probe("p1", result, verdict, "candidate")
    after = _now()
    row = _one(
        store,
        "SELECT state, finished_at, runtime_s, metrics, error, log_tail, status, verdict"
        " FROM probes",
    )
    assert row["state"] == "finished"
    assert before <= datetime.fromisoformat(row["finished_at"]) <= after
    assert row["runtime_s"] == 12.5
    assert json.loads(row["metrics"]) == {"train_loss": 0.5, "eval_loss": 0.75}
    assert (row["error"], row["log_tail"]) == ("warning: slow", "step 30/30\ndone")
    assert (row["status"], json.loads(row["verdict"])) == ("candidate", verdict)
    with _db(store) as conn:
        stored = conn.execute(
            "SELECT probe_id, prompt_id, category, repeat, score, critical, components, meta,"
            " error FROM scores ORDER BY id"
        ).fetchall()
    decoded = [
        (*r[:6], *(None if c is None else json.loads(c) for c in r[6:8]), r[8]) for r in stored
    ]
    assert decoded == [
        ("p1", "f-1", "facts", 0, 7.5, 0, {"accuracy": 8.0}, meta, None),
        ("p1", "f-2", "facts", 1, None, 0, None, meta, "judge_error: timeout"),
        ("p1", "v-1", "voice", 2, 2.0, 1, None, None, None),
    ]


def test_finishing_a_probe_again_replaces_its_scores_and_no_others(store: Store) -> None:
    _session(store, "s1")
    for pid in ("a", "b"):
        store.add_probe(_probe("s1", pid))
        store.finish_probe(
            pid,
            _result(pid, Score(f"{pid}-1", "facts", 5.0), Score(f"{pid}-2", "facts", 6.0)),
            None,
            "discard",
        )
    store.finish_probe("a", _result("a", Score("a-3", "facts", 9.0)), None, "keep")
    with _db(store) as conn:
        left = conn.execute("SELECT probe_id, prompt_id FROM scores ORDER BY id").fetchall()
    assert sorted(tuple(r) for r in left) == [("a", "a-3"), ("b", "b-1"), ("b", "b-2")]


def test_scores_come_back_in_order_and_unscorable_ones_only_when_asked(store: Store) -> None:
    _session(store, "s1")
    store.add_probe(_probe("s1", "p1"))
    meta = {"judge_model": "judge-1"}
    written = [
        Score("f-3", "facts", 4.0, meta=meta),
        Score("f-1", "facts", math.nan, repeat=1, meta=meta, error="judge_error: 500"),
        Score("f-2", "facts", 6.5, repeat=2, critical=True, components={"a": 1.0}),
    ]
    store.finish_probe("p1", _result("p1", *written), None, "discard")
    ok = store.scores("p1")
    assert ok == [written[0], written[2]]  # an unscorable prompt takes no part
    every = store.scores("p1", include_errors=True)
    assert [s.prompt_id for s in every] == ["f-3", "f-1", "f-2"]
    failed = every[1]
    assert math.isnan(failed.score)
    assert (failed.repeat, failed.meta, failed.error) == (1, meta, "judge_error: 500")
    assert (every[0].meta, every[0].error) == (meta, None)


def test_runs_used_counts_charged_in_budget_runs_of_that_session_only(
    store: Store, tmp_path: Path
) -> None:
    _session(store, "s1")
    _session(store, "s2", T0 + timedelta(hours=1))
    for sid, pid, in_budget, runs in [
        ("s1", "a", True, 2),  # re-run after an interruption: still one
        ("s1", "b", True, 1),
        ("s1", "c", False, 1),  # a manual replay: outside the budget
        ("s1", "d", True, 0),  # never launched
        ("s2", "e", True, 1),
    ]:
        store.add_probe(_probe(sid, pid, in_budget=in_budget))
        for _ in range(runs):
            store.mark_running(pid, tmp_path / pid, {})
    assert (store.runs_used("s1"), store.runs_used("s2"), store.runs_used("s3")) == (2, 1, 0)


def test_probes_of_a_session_in_sequence(store: Store) -> None:
    _session(store, "s1")
    _session(store, "s2", T0 + timedelta(hours=1))
    for sid, pid in [("s1", "z"), ("s2", "y"), ("s1", "x"), ("s1", "w")]:
        store.add_probe(_probe(sid, pid))
    assert [(p.id, p.seq) for p in store.probes("s1")] == [("z", 1), ("x", 2), ("w", 3)]
    assert [(p.id, p.seq) for p in store.probes("s2")] == [("y", 1)]


# ---- baseline reuse ------------------------------------------------------------------------


def _finished_baseline(
    store: Store, sid: str, pid: str, key: str, finished_at: datetime, **values: Any
) -> None:
    store.add_probe(_probe(sid, pid, kind="baseline", changes={}))
    store.finish_probe(pid, _result(pid, Score("f-1", "facts", 5.0)), None, "baseline")
    store.update_probe(pid, run_key=key, finished_at=finished_at, **values)


def test_a_finished_baseline_of_another_session_with_the_same_key_is_reused(
    store: Store,
) -> None:
    _session(store, "old")
    _finished_baseline(store, "old", "old-b0", "key-1", T0)
    found = store.reusable_run("key-1", exclude_session="new")
    assert found is not None and found.id == "old-b0"


@pytest.mark.parametrize(
    ("why", "values", "key", "exclude"),
    [
        ("another content key", {}, "key-2", "new"),
        ("not finished (interrupted)", {"state": "running"}, "key-1", "new"),
        ("a crashed run (its scores are not what the training gives)", {"status": "crash"},
         "key-1", "new"),
        ("the asking session's own run", {}, "key-1", "old"),
    ],
)
def test_a_run_is_not_reused_when(
    store: Store, why: str, values: dict[str, Any], key: str, exclude: str
) -> None:
    _session(store, "old")
    _finished_baseline(store, "old", "old-b0", "key-1", T0, **values)
    assert store.reusable_run(key, exclude_session=exclude) is None, why


@pytest.mark.parametrize("status", ["keep", "discard", "candidate", "guard_fail", "inconclusive"])
def test_a_probe_run_of_any_verdict_is_reusable(store: Store, status: str) -> None:
    """The cache holds trainings, not verdicts: the reusing session judges afresh."""
    _session(store, "old")
    _finished_baseline(store, "old", "old-p0", "key-1", T0, status=status, kind="probe")
    found = store.reusable_run("key-1", exclude_session="new")
    assert found is not None and found.id == "old-p0"


def test_the_first_finished_of_several_reusable_runs_is_the_one_reused(store: Store) -> None:
    _session(store, "old")
    _session(store, "older", T0 - timedelta(days=1))
    # Inserted late, early, latest: the earliest finished is neither first nor last.
    _finished_baseline(store, "old", "late", "key-1", T0 + timedelta(hours=2))
    _finished_baseline(store, "older", "early", "key-1", T0 + timedelta(hours=1))
    _finished_baseline(store, "old", "latest", "key-1", T0 + timedelta(hours=3))
    found = store.reusable_run("key-1", exclude_session="new")
    assert found is not None and found.id == "early"


# ---- decisions and events ------------------------------------------------------------------


def _decision(sid: str, n: int, **values: Any) -> DecisionRow:
    fields: dict[str, Any] = {
        "session_id": sid,
        "created_at": T0 + timedelta(minutes=n),
        "policy": "claude",
        "action": "probe",
        "proposal": {"lane": "hyperparameters", "n": n},
        "accepted": n % 2 == 0,
        "reject_reason": None if n % 2 == 0 else f"reason {n}",
        "rationale": f"rationale {n}",
        "input_tokens": 100 + n,
        "output_tokens": 10 + n,
        "cache_read_tokens": 50 + n,
        "cache_write_tokens": 5 + n,
        "cost_usd": 0.25 * n,
    }
    fields.update(values)
    return DecisionRow(**fields)


def test_decisions_are_stored_whole_and_listed_per_session_in_order(store: Store) -> None:
    _session(store, "s1")
    _session(store, "s2", T0 + timedelta(hours=1))
    store.add_decision(_decision("s1", 1))
    store.add_decision(_decision("s2", 2))
    store.add_decision(_decision("s1", 3))
    store.add_probe(_probe("s1", "p1"), _decision("s1", 4))
    with _db(store) as conn:
        rows = conn.execute(
            "SELECT session_id, probe_id, created_at, policy, action, proposal, accepted,"
            " reject_reason, rationale, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens, cost_usd FROM decisions ORDER BY id"
        ).fetchall()
    assert [tuple(r) for r in rows] == [
        (
            sid,
            "p1" if n == 4 else None,
            str(T0 + timedelta(minutes=n)) + ".000000",
            "claude",
            "probe",
            json.dumps({"lane": "hyperparameters", "n": n}),
            int(n % 2 == 0),
            None if n % 2 == 0 else f"reason {n}",
            f"rationale {n}",
            100 + n,
            10 + n,
            50 + n,
            5 + n,
            0.25 * n,
        )
        for sid, n in [("s1", 1), ("s2", 2), ("s1", 3), ("s1", 4)]
    ]
    listed = store.decisions("s1")
    assert [d.rationale for d in listed] == ["rationale 1", "rationale 3", "rationale 4"]
    assert [d.cost_usd for d in listed] == [0.25, 0.75, 1.0]


def test_events_are_listed_in_order_and_per_session(store: Store) -> None:
    _session(store, "s1")
    _session(store, "s2", T0 + timedelta(hours=1))
    for sid, message in [("s1", "one"), ("s2", "two"), ("s1", "three"), ("s1", "four")]:
        store.event(sid, "note", message)
    assert [e.message for e in store.events()] == ["one", "two", "three", "four"]
    assert [e.message for e in store.events("s1")] == ["one", "three", "four"]
    assert [e.message for e in store.events("s2")] == ["two"]


def test_progress_log_lines_carry_the_recorded_time_and_survive_a_rebuild(
    store: Store,
) -> None:
    _session(store, "s1")
    store.event("s1", "start", "session\tstarted\nnow")
    store.event("s1", "verdict", "keep", "probe-7")
    with _db(store) as conn:
        stamps = [
            datetime.fromisoformat(r[0]).isoformat(sep=" ", timespec="seconds")
            for r in conn.execute("SELECT created_at FROM events ORDER BY id")
        ]
    expected = (
        f"{stamps[0]} start      session started now\n{stamps[1]} verdict    [probe-7] keep\n"
    )
    assert store.log_path.read_text(encoding="utf-8") == expected
    store.log_path.write_text("torn line", encoding="utf-8")
    store.sync_views()
    assert store.log_path.read_text(encoding="utf-8") == expected


# ---- results.tsv ---------------------------------------------------------------------------


def test_results_tsv_lists_sessions_by_start_time_and_probes_in_sequence(store: Store) -> None:
    # The later session is written first; each has three finished probes.
    _session(store, "new", T0 + timedelta(days=1))
    _session(store, "old", T0)
    for sid in ("new", "old"):
        for n in range(3):
            pid = f"{sid}-{n}"
            store.add_probe(_probe(sid, pid))
            store.finish_probe(pid, _result(pid), None, "discard")
    store.add_probe(_probe("old", "old-pending"))  # not finished: not listed
    listed = [r["probe_id"] for r in _read_tsv(store.tsv_path)]
    assert listed == ["old-0", "old-1", "old-2", "new-0", "new-1", "new-2"]


def test_results_tsv_cells_that_fall_back(store: Store) -> None:
    _session(store, "s1")  # the campaign's target is "facts"
    cases = [
        # pid, hypothesis, error, verdict, status
        ("own-target", "a", None, {"target": "style"}, "keep"),
        ("no-verdict", "", "trainer crashed:\nexit 1", None, "crash"),
        ("no-text", "", None, None, "discard"),
    ]
    for pid, hypothesis, error, verdict, status in cases:
        store.add_probe(_probe("s1", pid, hypothesis=hypothesis))
        store.finish_probe(pid, _result(pid, error=error), verdict, status)
    store.update_probe("no-text", status=None)  # a row from before verdicts had a status
    store.write_tsv()
    rows = {r["probe_id"]: r for r in _read_tsv(store.tsv_path)}
    assert rows["own-target"]["target"] == "style"
    assert rows["no-verdict"]["target"] == "facts"
    assert rows["no-verdict"]["description"] == "trainer crashed: exit 1"
    assert rows["no-text"]["description"] == ""
    assert rows["no-text"]["status"] == ""


def test_results_tsv_escapes_quotes_and_backslashes(store: Store) -> None:
    _session(store, "s1")
    text = 'say "hi" to C:\\data'
    store.add_probe(_probe("s1", "p1", hypothesis=text))
    store.finish_probe("p1", _result("p1"), None, "discard")
    raw = store.tsv_path.read_text(encoding="utf-8")
    assert raw.splitlines()[1].endswith('\tsay \\"hi\\" to C:\\\\data')
    assert _read_tsv(store.tsv_path)[0]["description"] == text
    assert list(csv.reader(io.StringIO(raw), delimiter="\t", escapechar="\\"))[1][-1] == text


# ---- migration of an older database --------------------------------------------------------

# Columns an older version lacked (none of them indexed), with the value an old row reads.
DROPPED: dict[str, dict[str, Any]] = {
    "sessions": {"forced": 0, "schema_version": 1, "power": None, "narrative": None},
    "probes": {"hypothesis": "", "attempts": 0, "in_budget": 1, "reused_from": None},
    "scores": {"meta": None, "critical": 0},
    "decisions": {"cost_usd": 0.0, "cache_read_tokens": 0, "rationale": None},
    "events": {"probe_id": None},
}


def _columns(db: Path) -> dict[str, dict[str, str]]:
    with sqlite3.connect(db) as conn:
        return {
            table: {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({table})")}
            for table in DROPPED
        }


def test_an_older_database_gains_every_missing_column_with_its_type_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTORESEARCH_DB", raising=False)
    fresh = Store(tmp_path / "fresh")
    fresh.close()
    want = _columns(fresh.runs_dir / "autoresearch.db")
    old = Store(tmp_path / "old")
    _session(old, "s1")
    old.add_probe(_probe("s1", "p1"), _decision("s1", 1))
    old.mark_running("p1", tmp_path / "p1", {})
    old.finish_probe("p1", _result("p1", Score("f-1", "facts", 5.0)), None, "discard")
    old.event("s1", "note", "hello", "p1")
    old.close()
    db = old.runs_dir / "autoresearch.db"
    with sqlite3.connect(db) as conn:
        for table, columns in DROPPED.items():
            for column in columns:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    assert all(not set(DROPPED[t]) & set(c) for t, c in _columns(db).items())

    reopened = Store(tmp_path / "old")
    assert _columns(db) == want  # every column back, with the declared type
    with sqlite3.connect(db) as conn:
        for table, columns in DROPPED.items():
            names = ", ".join(columns)
            got = conn.execute(f"SELECT {names} FROM {table}").fetchall()
            assert got == [tuple(columns.values())], table
    probe = reopened.get_probe("p1")
    assert probe is not None and (probe.hypothesis, probe.attempts) == ("", 0)
    assert probe.in_budget is True and reopened.runs_used("s1") == 1
    assert reopened.decisions("s1")[0].cost_usd == 0.0
    assert reopened.get_session("s1").forced is False  # type: ignore[union-attr]
    reopened.close()
    again = Store(tmp_path / "old")  # nothing left to add: opens as is
    assert _columns(db) == want
    again.close()


def test_find_probe_takes_an_exact_id_first_and_a_literal_prefix(store: Store) -> None:
    _session(store, "s1")
    for pid in ("p1", "p10", "a_b", "axb"):
        store.add_probe(_probe("s1", pid))
    assert [p.id for p in store.find_probe("p1")] == ["p1"]  # exact, though p10 shares it
    assert sorted(p.id for p in store.find_probe("p")) == ["p1", "p10"]
    # "_" is a character of the id, not SQL's one-character wildcard.
    assert [p.id for p in store.find_probe("a_")] == ["a_b"]
    assert store.find_probe("zz") == []


def test_set_verdict_rewrites_the_verdict_and_status_and_results_tsv(store: Store) -> None:
    _session(store, "s1")
    store.add_probe(_probe("s1", "p1"))
    store.mark_running("p1", store.runs_dir / "p1", {})
    store.finish_probe("p1", _result("p1", Score("q", "facts", 1.0)), {"reason": "a"}, "candidate")
    store.set_verdict("p1", {"reason": "superseded", "target_delta": 0.5}, "keep")
    row = _one(store, "select verdict, status from probes where id = ?", "p1")
    assert json.loads(row["verdict"]) == {"reason": "superseded", "target_delta": 0.5}
    assert row["status"] == "keep"
    assert _read_tsv(store.tsv_path)[0]["status"] == "keep"
    assert _read_tsv(store.tsv_path)[0]["target_delta"] == "0.5"


def test_results_tsv_keeps_the_database_order_across_sessions_started_together(
    store: Store,
) -> None:
    """Two sessions with the same start time interleave by seq in the database's order: a row
    that belongs before one already in the file forces a rewrite, never an append after it."""
    _session(store, "a")
    _session(store, "b")  # the same started_at
    for sid, pid in [("a", "a1"), ("a", "a2"), ("b", "b1")]:
        store.add_probe(_probe(sid, pid))
    for pid in ["a1", "a2", "b1"]:  # b1 (seq 1) finishes after a2 (seq 2)
        store.finish_probe(pid, _result(pid, Score("f-1", "facts", 5.0)), None, "discard")
    file_ids = [r["probe_id"] for r in _read_tsv(store.tsv_path)]
    render_ids = [r["probe_id"] for r in store.tsv_rows()]
    assert sorted(file_ids) == ["a1", "a2", "b1"]
    assert file_ids == render_ids and file_ids.index("b1") < file_ids.index("a2")

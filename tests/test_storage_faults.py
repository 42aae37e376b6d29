"""Filesystem and database faults (issue 10 item 6): disk full, a read-only or failing disk, a
workspace that is a file, a prompts file that is not UTF-8. Each is one clear line naming the
path and what to do, exit code 2, and — once the cause is gone — a clean `resume` that
finishes the session with every training recorded once and the budget exact."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from typer.testing import CliRunner

from agent.cli import app
from agent.store.store import Store
from tests.conftest import make_workspace

BUDGET = 6


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def db_error(message: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("UPDATE probes", {}, sqlite3.OperationalError(message))


def os_error(code: int, path: str) -> OSError:
    return OSError(code, errno.errorcode[code], path)


FAULTS = [
    # (what fails, the error, the words the one line must hold)
    ("finish_probe", lambda ws: db_error("database or disk is full"),
     lambda ws: f"cannot write {ws / 'runs' / 'autoresearch.db'}: no space left; free space"),
    ("finish_probe", lambda ws: db_error("disk I/O error"),
     lambda ws: f"cannot write {ws / 'runs' / 'autoresearch.db'}: disk I/O error; check the disk"),
    ("mark_running", lambda ws: db_error("attempt to write a readonly database"),
     lambda ws: f"cannot write {ws / 'runs' / 'autoresearch.db'}: read-only file system"),
    ("_append_tsv", lambda ws: os_error(errno.ENOSPC, str(ws / "results.tsv")),
     lambda ws: f"cannot write {ws / 'results.tsv'}: no space left; free space"),
    ("event", lambda ws: os_error(errno.EROFS, str(ws / "runs" / "progress.log")),
     lambda ws: f"cannot write {ws / 'runs' / 'progress.log'}: read-only file system"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "error", "expected"), FAULTS)
def test_a_fault_mid_session_is_one_line_and_resume_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, error: Any, expected: Any
) -> None:
    ws = make_workspace(tmp_path / "ws")
    original = getattr(Store, method)
    calls = {"n": 0}

    def faulty(self: Store, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:  # past the baselines: a session with records to lose
            raise error(ws)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, method, faulty)
    code, out = invoke("start", "--budget", str(BUDGET), "-w", str(ws))
    assert code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {expected(ws)}"), out
    assert "`autoresearch resume` continues" in errors[0]
    assert "Traceback" not in out

    store = Store(ws)
    session = store.latest_session()
    assert session is not None and session.status == "running"  # resumable, not failed
    before = {p.id: p.status for p in store.probes(session.id) if p.state == "finished"}
    assert len(before) >= 2
    store.close()

    monkeypatch.setattr(Store, method, original)  # the disk is fixed
    code, out = invoke("resume", "-w", str(ws))
    assert code == 0, out
    store = Store(ws)
    row = store.get_session(session.id)
    assert row is not None and row.status == "finished"
    probes = store.probes(session.id)
    assert all(p.state == "finished" for p in probes)
    # Nothing recorded before the fault was lost or judged again.
    assert {p.id: p.status for p in probes if p.id in before} == before
    assert store.runs_used(session.id) == BUDGET
    assert (ws / "results.tsv").read_text() == store.render_tsv()
    assert (ws / "SESSION_REPORT.md").exists()


def test_a_workspace_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a workspace")
    for command in (["start", "--budget", "4"], ["status"], ["check"], ["report"]):
        code, out = invoke(*command, "-w", str(path))
        assert code == 2, (command, out)
        assert out.strip().startswith("error:") and str(path) in out, (command, out)
        assert "Traceback" not in out
    assert path.read_text() == "not a workspace"


def test_a_prompts_file_that_is_not_utf8_names_file_line_and_column(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    prompts = ws / "probe-prompts.jsonl"
    data = prompts.read_bytes().replace(b"question 3 about facts", b"question \xff3 about facts")
    prompts.write_bytes(data)
    line = data.split(b"\n").index(next(x for x in data.split(b"\n") if b"\xff" in x)) + 1
    column = next(x for x in data.split(b"\n") if b"\xff" in x).index(b"\xff") + 1
    expected = f"{prompts}:{line}: not UTF-8 text (byte 0xff at column {column}): save eval prompts"
    for command in (["check"], ["start", "--budget", "4"]):
        code, out = invoke(*command, "-w", str(ws))
        assert code == 2, out
        assert expected in out, out
    assert not (ws / "runs" / "autoresearch.db").exists() or Store(ws).latest_session() is None

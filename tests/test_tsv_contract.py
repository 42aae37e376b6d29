"""results.tsv against its contract (DESIGN.md §5.3) and the database, cell by cell.

Other tests compare the file with `Store.render_tsv()`, a render from the same code, so a
column filled from the wrong field (ci_high from ci_low, say) passes them. Here every cell of
every row is recomputed in the test from the database's probe rows (their `verdict` dicts, the
scores' critical flags) and compared with what the file says.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.store.store import Store
from tests.conftest import make_workspace

CONTRACT_COLUMNS = [
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
"""The header of DESIGN.md §5.3 (`probe_id  session  kind ... status  description`)."""

NUMBER_COLUMNS = {
    "target_delta": "target_delta",
    "ci_low": "ci_low",
    "ci_high": "ci_high",
    "worst_guard_delta": "worst_guard_delta",
}
"""TSV column -> verdict key."""


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        header, *body = list(reader)
    for row in body:
        assert len(row) == len(header), row
    return header, [dict(zip(header, row, strict=True)) for row in body]


def parse_change(cell: str) -> dict[str, str]:
    if cell == "recipe":
        return {}
    out = {}
    for part in cell.split(","):
        key, sep, value = part.partition("=")
        assert sep == "=" and key and value, f"change {cell!r} is not k=v[,k=v]"
        out[key] = value
    return out


def same_value(text: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return text == str(value)
    return float(text) == pytest.approx(value, rel=1e-3, abs=1e-12)


def assert_number(cell: str, value: float | None, column: str, probe_id: str) -> None:
    if value is None:
        assert cell == "", (probe_id, column, cell)
        return
    assert math.isfinite(float(cell)), (probe_id, column, cell)
    # Four significant digits are enough to tell every pair of these columns apart here.
    assert float(cell) == pytest.approx(value, rel=1e-3, abs=1e-9), (probe_id, column, cell, value)


@pytest.fixture(scope="module")
def session_tsv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store, str]:
    ws = make_workspace(tmp_path_factory.mktemp("tsv") / "ws")
    result = CliRunner().invoke(app, ["start", "--budget", "8", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    store = Store(ws)
    session = store.latest_session()
    assert session is not None
    return ws, store, session.id


def test_header_is_the_contracts_column_list(session_tsv: tuple[Path, Store, str]) -> None:
    ws, _, _ = session_tsv
    first_line = (ws / "results.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "\t".join(CONTRACT_COLUMNS)
    assert read_tsv(ws / "results.tsv")[0] == CONTRACT_COLUMNS


def check_every_cell(ws: Path, store: Store, session_id: str) -> None:
    _, rows = read_tsv(ws / "results.tsv")
    probes = [p for p in store.probes(session_id) if p.state == "finished"]
    probes.sort(key=lambda p: p.seq)
    # One row per finished probe, in the order they were run.
    assert [r["probe_id"] for r in rows] == [p.id for p in probes]
    target_of_campaign = "facts"  # tests/conftest.py's campaign

    for row, probe in zip(rows, probes, strict=True):
        v: dict[str, Any] = probe.verdict or {}
        pid = probe.id
        assert row["session"] == session_id, pid
        assert row["kind"] == probe.kind, pid
        assert row["lane"] == (probe.lane or ""), pid
        changes = parse_change(row["change"])
        assert set(changes) == set(probe.changes or {}), (pid, row["change"])
        for key, value in (probe.changes or {}).items():
            assert same_value(changes[key], value), (pid, key, changes[key], value)
        assert row["steps"] == str(probe.steps) and int(row["steps"]) > 0, pid
        assert row["seed"] == str(probe.seed), pid
        assert row["target"] == (v.get("target") or target_of_campaign), pid
        for column, key in NUMBER_COLUMNS.items():
            assert_number(row[column], v.get(key), column, pid)
        if "guard_ok" in v:
            assert row["guard_ok"] == ("true" if v["guard_ok"] else "false"), pid
        else:
            assert row["guard_ok"] == "", pid
        assert row["worst_guard"] == (v.get("worst_guard") or ""), pid
        n_critical = sum(1 for s in store.scores(pid, include_errors=True) if s.critical)
        assert row["critical"] == str(n_critical), pid
        assert row["status"] == (probe.status or ""), pid
        assert row["description"] == " ".join((probe.hypothesis or probe.error or "").split())
        if v:
            assert row["status"] == v["status"], pid  # the verdict and the row agree


def test_every_cell_equals_the_database(session_tsv: tuple[Path, Store, str]) -> None:
    check_every_cell(*session_tsv)


def test_cells_follow_edited_database_rows(
    session_tsv: tuple[Path, Store, str], tmp_path: Path
) -> None:
    """On a copy of the session whose rows were edited: the description is the hypothesis
    (the error when there is none), on one line, never the agent's later reading; a zero is
    written as a number, not left empty; an unfinished probe has no row."""
    ws, _, session_id = session_tsv
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    store = Store(copy)
    probes = [p for p in store.probes(session_id) if p.state == "finished"]
    store.update_probe(probes[-1].id, reading="a reading, not the hypothesis")
    store.update_probe(probes[-2].id, hypothesis="two\tlines:\nraise it", reading="later")
    store.update_probe(probes[-3].id, hypothesis="", error="trainer exited 1\n(see log)")
    judged = next(p for p in probes if p.verdict)
    store.update_probe(judged.id, verdict={**(judged.verdict or {}), "worst_guard_delta": 0.0})
    running = probes[1]  # a baseline (the judged row above is another)
    store.update_probe(running.id, state="running")
    store.write_tsv()
    check_every_cell(copy, store, session_id)
    _, rows = read_tsv(copy / "results.tsv")
    described = {r["probe_id"]: r["description"] for r in rows}
    assert described[probes[-1].id] == probes[-1].hypothesis
    assert described[probes[-2].id] == "two lines: raise it"
    assert described[probes[-3].id] == "trainer exited 1 (see log)"
    assert running.id not in described and len(rows) == len(probes) - 1
    assert float(next(r for r in rows if r["probe_id"] == judged.id)["worst_guard_delta"]) == 0.0


def test_the_session_exercises_every_kind_of_cell(session_tsv: tuple[Path, Store, str]) -> None:
    """The cell-by-cell test above is only as strong as the variety of this session."""
    ws, _, _ = session_tsv
    _, rows = read_tsv(ws / "results.tsv")
    assert {r["kind"] for r in rows} >= {"baseline", "probe", "confirm"}
    assert {r["guard_ok"] for r in rows} == {"", "true", "false"}
    assert any(int(r["critical"]) > 0 for r in rows)
    assert any(r["change"] == "recipe" for r in rows)
    assert {r["status"] for r in rows} >= {"baseline", "keep", "candidate", "guard_fail"}
    judged = [r for r in rows if r["target_delta"]]
    assert judged and all(
        float(r["ci_low"]) < float(r["target_delta"]) < float(r["ci_high"]) for r in judged
    )
    assert any(r["worst_guard"] != "" and r["worst_guard_delta"] != "" for r in judged)

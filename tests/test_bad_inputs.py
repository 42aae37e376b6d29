"""The bad-input corpus (issue 10): one bad input per file in tests/bad_inputs/, each with the
expected first line of its message. Every case runs against a copy of a workspace that already
holds a finished session, and must give its message (never a traceback), its exit code, and
lose nothing already recorded.

A case file: `what` (the class of mistake), `edit` (file -> [[old, new], ...] applied to the
test workspace) or `write` (file -> whole new content), `command` (default `check`), `env`,
`runtime` (a mistake in what the trainer writes, seen only when a probe runs: the probe
crashes with the message as its error and the session goes on), `exit`, `expect` (text the
first line of the message holds).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from tests.conftest import make_workspace

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = sorted(CORPUS.glob("*.yaml"))


def snapshot(ws: Path) -> dict[str, Any]:
    """What is recorded, read with sqlite3: every session and probe row, results.tsv."""
    db = sqlite3.connect(ws / "runs" / "autoresearch.db")
    try:
        sessions = db.execute("select id, status from sessions order by id").fetchall()
        probes = db.execute("select id, state, status, verdict from probes order by id").fetchall()
    finally:
        db.close()
    return {"sessions": sessions, "probes": probes, "tsv": (ws / "results.tsv").read_text()}


def first_message_line(output: str) -> str:
    """The first line of the verdict on the input: the first `error:` line (or, after
    "error: preflight failed:", the first problem listed), else the `ok:` line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line == "error: preflight failed:" and i + 1 < len(lines):
            return lines[i + 1].removeprefix("- ")
        if line.startswith("error:"):
            return line
    return next((line for line in lines if line.startswith("ok:")), "")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("corpus") / "ws")
    result = CliRunner().invoke(app, ["start", "--budget", "4", "-w", str(ws)])
    assert result.exit_code == 0, result.output
    return ws


def test_the_corpus_is_large_enough() -> None:
    print(f"bad-input corpus: {len(CASES)} cases")
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_input(
    case: Path, recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = yaml.safe_load(case.read_text())
    ws = tmp_path / "ws"
    shutil.copytree(recorded, ws)
    for name, edits in (spec.get("edit") or {}).items():
        text = (ws / name).read_text()
        for old, new in edits:
            assert old in text, f"{case.name}: {old!r} not in {name}"
            text = text.replace(old, new, 1)
        (ws / name).write_text(text)
    for name, content in (spec.get("write") or {}).items():
        (ws / name).write_text(content)
    for key, value in (spec.get("env") or {}).items():
        monkeypatch.setenv(key, value)
    if spec.get("runtime"):
        # The probes (not the baselines) misbehave: the session must go on. (Which change
        # comes first depends on what the earlier session already judged: campaign memory.)
        monkeypatch.setenv("FAKE_MODE_WHEN", "probe")
    before = snapshot(ws)

    default = ["start", "--budget", "5"] if spec.get("runtime") else ["check"]
    command = spec.get("command") or default
    result = CliRunner().invoke(app, [*command, "-w", str(ws)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case.name}: {result.exception!r}"
    )
    output = result.output
    assert "Traceback" not in output, output
    assert result.exit_code == spec["exit"], f"{case.name}: exit {result.exit_code}\n{output}"

    after = snapshot(ws)
    if spec.get("runtime"):
        # The earlier session's records are untouched; the new session recorded the crash.
        assert set(before["probes"]) <= set(after["probes"])
        assert after["tsv"].startswith(before["tsv"].rstrip("\n").split("\n", 1)[0])
        db = sqlite3.connect(ws / "runs" / "autoresearch.db")
        errors = [
            e for (e,) in db.execute(
                "select error from probes where status = 'crash' order by seq"
            )
        ]  # fmt: skip
        db.close()
        assert errors, output
        first = errors[0].splitlines()[0]
    else:
        assert after == before, f"{case.name}: a refused input changed the records"
        first = first_message_line(output)
    assert spec["expect"] in first, f"{case.name}: expected {spec['expect']!r} in {first!r}"

"""Kill torture (issue 10): a session is killed at 50 seeded points — inside trainings, right
after database commits, while results.tsv or progress.log is rebuilt, while the report is
written — then resumed until it is done. Every time: each training recorded once (a finished
probe is never trained again), the budget spent exactly, results.tsv and progress.log equal
the database, and the report equals one rendered from the database.

A kill is a BaseException raised at the hook; from then on the process is "dead": every
later write it attempts raises too, as nothing runs after a kill -9 (tests/test_kill_resume.py
does real kill -9s of a child process at a few points; this covers many more, in-process).
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import agent.report.render as render
import agent.runtime as runtime
import agent.store.store as store_module
from agent.cli import app
from agent.store.store import Store
from probes.spec import ProbeResult, ProbeSpec, ProbeStatus, Score
from probes.trainers.base import Trainer
from tests.conftest import make_workspace, write_prompts
from tests.fake_trainer import quality

BUDGET = 6
PROMPTS = 6  # per category: few, to keep 50 sessions fast (the power gate is passed with --force)
KILLS = 50


class Killed(BaseException):
    """kill -9: not an Exception, so nothing in the loop may catch it."""


class Killer:
    """Counts the hooks the loop passes; raises at the `at`-th, then at every later write."""

    def __init__(self, at: int | None = None):
        self.at, self.hits, self.dead = at, 0, False
        self.kinds: list[str] = []

    def hook(self, kind: str) -> None:
        self.hits += 1
        self.kinds.append(kind)
        if self.hits == self.at:
            self.dead = True
            raise Killed(f"killed at hook {self.hits} ({kind})")

    def check_alive(self) -> None:
        if self.dead:
            raise Killed("a dead process writes nothing")


class InstantTrainer(Trainer):
    """Scores at once from the fake world; logs every training it starts."""

    def __init__(self, killer: Killer, started: list[str]):
        self.killer, self.started = killer, started

    def run(self, spec: ProbeSpec) -> ProbeResult:
        self.killer.check_alive()
        self.started.append(spec.probe_id)
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        self.killer.hook("train")  # killed mid-training
        shift = random.Random(spec.seed * 7919).gauss(0.0, 0.05)
        scores = []
        for category in ("facts", "voice", "offtask"):
            for i in range(PROMPTS):
                pid = f"{category}-{i:02d}"
                rng = random.Random(zlib.crc32(f"{spec.seed}/{pid}".encode()))
                value = quality(category, spec.params) + shift + rng.gauss(0.0, 0.4)
                scores.append(Score(pid, category, min(10.0, max(0.0, value))))
        return ProbeResult(spec.probe_id, ProbeStatus.OK, scores=tuple(scores))


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"killer": Killer(), "started": []}
    original_tx = Store.tx
    original_write = store_module.write_text_whole

    @contextmanager
    def tx(self: Store) -> Iterator[Any]:
        state["killer"].check_alive()
        with original_tx(self) as db:
            yield db
        state["killer"].hook("commit")  # killed right after a commit

    def write_whole(path: Path, text: str) -> None:
        state["killer"].check_alive()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        # Killed with the new file beside the old one, not yet in its place.
        report = path.name == "SESSION_REPORT.md" or path.parent.name == "sessions"
        state["killer"].hook("report" if report else "view")
        os.replace(tmp, path)

    monkeypatch.setattr(Store, "tx", tx)
    monkeypatch.setattr(store_module, "write_text_whole", write_whole)
    monkeypatch.setattr(render, "write_text_whole", write_whole)
    monkeypatch.setattr(
        runtime, "build_trainer", lambda campaign: InstantTrainer(state["killer"], state["started"])
    )
    yield state
    assert original_write is not None


def run_until_done(ws: Path, state: dict[str, Any]) -> int:
    """start (killed or not), then resume until the session and its report are done;
    returns how many commands it took. A finished probe must never be trained again."""
    runner = CliRunner()
    for attempt in range(12):
        store = Store(ws)
        latest = store.latest_session()
        finished = set()
        if latest is not None:
            finished = {p.id for p in store.probes(latest.id) if p.state == "finished"}
            if latest.status != "running" and render.report_archive_path(ws, latest.id).exists():
                store.close()
                return attempt
        store.close()
        already = len(state["started"])
        command = ["start", "--budget", str(BUDGET), "--force"] if latest is None else ["resume"]
        try:
            result = runner.invoke(app, [*command, "-w", str(ws)])
        except Killed:
            state["killer"] = Killer()  # the next command is a fresh, living process
            continue
        finally:
            retrained = finished & set(state["started"][already:])
            assert not retrained, f"finished probes trained again: {retrained}"
        assert result.exit_code == 0, result.output
    raise AssertionError("the session never finished")


def workspace(root: Path) -> Path:
    ws = make_workspace(root)
    write_prompts(ws / "probe-prompts.jsonl", {c: PROMPTS for c in ("facts", "voice", "offtask")})
    return ws


def check_records(ws: Path) -> None:
    store = Store(ws)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    probes = store.probes(session.id)
    assert all(p.state == "finished" for p in probes)
    assert store.runs_used(session.id) == BUDGET
    assert (ws / "results.tsv").read_text() == store.render_tsv()
    log = (ws / "runs" / "progress.log").read_text().splitlines()
    assert len(log) == len(store.events())
    expected, expected_archive = render.report_texts(store, session.id)
    assert (ws / "SESSION_REPORT.md").read_text() == expected
    assert render.report_archive_path(ws, session.id).read_text() == expected_archive
    store.close()


def test_kill_torture(tmp_path: Path, hooked: dict[str, Any]) -> None:
    # An uninterrupted session counts the hooks (and is itself checked).
    ws = workspace(tmp_path / "clean")
    run_until_done(ws, hooked)
    check_records(ws)
    total = hooked["killer"].hits
    kinds = hooked["killer"].kinds
    assert {"train", "commit", "view", "report"} <= set(kinds)
    # Every report and view hook, every training, the rest of the commits seeded.
    must = [i + 1 for i, k in enumerate(kinds) if k in ("report", "view", "train")]
    rest = [i for i in range(1, total + 1) if i not in must]
    points = sorted(
        set(must[:KILLS]) | set(random.Random(3).sample(rest, KILLS - len(must[:KILLS])))
    )
    assert len(points) >= 50

    survived = 0
    for n, at in enumerate(points):
        ws = workspace(tmp_path / f"k{n}")
        hooked["killer"] = Killer(at)
        hooked["started"] = []
        run_until_done(ws, hooked)
        check_records(ws)
        survived += 1
    print(f"kill torture: {survived}/{len(points)} kills survived ({total} hooks per session)")
    assert survived == len(points)

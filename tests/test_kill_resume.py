"""kill -9 of the loop at several points, then `resume`: nothing finished is lost or
duplicated, the budget counts each training once, results.tsv equals the database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.store.store import Store
from tests.conftest import make_workspace

BUDGET = 8


def _cli(workspace: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args, "-w", str(workspace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


# (trainings started before the kill, extra delay): during the first baseline, during the
# second baseline, mid-probe, during the budget's last training, and at random moments that
# land between probes or while the loop writes its records.
KILL_POINTS = [(1, 0.1), (2, 0.15), (4, 0.1), (5, -1.0), (7, -1.0), (8, 0.1)]


@pytest.mark.parametrize(("started", "delay"), KILL_POINTS)
def test_kill_9_then_resume(tmp_path: Path, started: int, delay: float) -> None:
    workspace = make_workspace(tmp_path / "ws")
    markers = tmp_path / "markers"
    env = {**os.environ, "FAKE_SLEEP": "0.3", "FAKE_MARKERS": str(markers)}
    proc = _cli(workspace, "start", "--budget", str(BUDGET), env=env)
    _wait_for(lambda: markers.exists() and len(list(markers.iterdir())) >= started)
    if delay < 0:
        delay = random.Random(started).uniform(0.25, 0.45)  # around the end of a training
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "running"
    finished_before = {
        p.id: (p.status, p.seed) for p in store.probes(session.id) if p.state == "finished"
    }
    store.close()

    resumed = _cli(workspace, "resume", env={**os.environ})
    output = resumed.communicate(timeout=120)[0].decode()
    assert resumed.returncode == 0, output

    store = Store(workspace)
    session = store.get_session(session.id)
    assert session is not None and session.status == "finished"
    probes = store.probes(session.id)
    # Nothing finished before the kill was lost or changed.
    after = {p.id: (p.status, p.seed) for p in probes}
    for probe_id, value in finished_before.items():
        assert after[probe_id] == value
    # The budget counts each training once and is spent exactly.
    assert store.runs_used(session.id) == BUDGET
    assert all(p.state == "finished" for p in probes)
    assert len(probes) == BUDGET
    # No change was run twice as a probe.
    changes = [tuple(sorted(p.changes.items())) for p in probes if p.kind == "probe"]
    assert len(changes) == len(set(changes))
    # Views equal the database.
    assert (workspace / "results.tsv").read_text() == store.render_tsv()
    log_lines = (workspace / "runs" / "progress.log").read_text().splitlines()
    assert len(log_lines) == len(store.events())
    # Each run folder belongs to one attempt.
    dirs = [p.run_dir for p in probes]
    assert len(dirs) == len(set(dirs))

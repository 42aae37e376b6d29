"""Budget accounting under random interleavings of finish, crash, kill and resume (hypothesis).

A session runs in this process against an in-process trainer that follows a script drawn by
hypothesis: each training finishes, crashes, or is killed mid-training; the loop is also killed
at random points between its own writes (after a probe was recorded, after it was marked
running but before its trainer started, after an event). A kill is a BaseException that no
code of the loop may swallow, like kill -9. After each kill the session is resumed, until it
ends. The expectations come from the trainer's own log of what it was asked to run, never
from the store's counters.
"""

from __future__ import annotations

import math
import random
import tempfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.session import BudgetSpec, WorkspaceLock
from agent.store.store import Store
from probes.spec import ProbeResult, ProbeSpec, ProbeStatus, Score
from probes.trainers.base import Trainer
from tests.conftest import make_workspace
from tests.fake_trainer import quality


class Killed(BaseException):
    """The process died here (kill -9): nothing after this point of the loop ran."""


class ScriptedTrainer(Trainer):
    """Trains in-process from a known world; the n-th training's fate comes from `script`
    ("ok", "crash" or "kill"; "ok" once the script runs out). Logs every call it gets."""

    def __init__(self, script: list[str], calls: list[tuple[str, str]]):
        self.script, self.calls = script, calls

    def run(self, spec: ProbeSpec) -> ProbeResult:
        fate = self.script.pop(0) if self.script else "ok"
        self.calls.append((spec.probe_id, fate))
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        if fate == "kill":
            raise Killed(f"killed while training {spec.probe_id}")
        if fate == "crash":
            return ProbeResult(spec.probe_id, ProbeStatus.CRASH, error="CUDA out of memory")
        prompts = [f"{c}-{i:02d}" for c in ("facts", "voice", "offtask") for i in range(24)]
        shift = random.Random(spec.seed * 7919).gauss(0.0, 0.05)
        scores = []
        for prompt_id in prompts:
            category = prompt_id.split("-")[0]
            rng = random.Random(zlib.crc32(f"{spec.seed}/{prompt_id}".encode()))
            difficulty = (zlib.crc32(prompt_id.encode()) % 100) / 100 - 0.5
            value = quality(category, spec.params) + difficulty + shift + rng.gauss(0.0, 0.4)
            scores.append(Score(prompt_id, category, min(10.0, max(0.0, value))))
        return ProbeResult(spec.probe_id, ProbeStatus.OK, scores=tuple(scores))


class KillingObserver:
    """Kills the loop right after its n-th observable write (events, probe start/finish)."""

    def __init__(self, kill_at: set[int], seen: list[int]):
        self.kill_at, self.seen = kill_at, seen

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.seen[0] += 1
        if self.seen[0] in self.kill_at:
            raise Killed(f"killed after {name} #{self.seen[0]}")


FATES = st.sampled_from(["ok", "ok", "ok", "crash", "kill"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    budget=st.integers(min_value=4, max_value=9),
    script=st.lists(FATES, max_size=14),
    loop_kills=st.sets(st.integers(min_value=1, max_value=80), max_size=4),
)
def test_each_training_is_charged_once_whatever_dies_when(
    budget: int, script: list[str], loop_kills: set[int]
) -> None:
    from agent.runtime import open_session

    calls: list[tuple[str, str]] = []
    seen = [0]
    trainer = ScriptedTrainer(list(script), calls)
    observer = KillingObserver(loop_kills, seen)
    with tempfile.TemporaryDirectory() as tmp:
        workspace = make_workspace(Path(tmp) / "ws")
        finished_at_kill: dict[str, tuple[str | None, int]] = {}
        resumes = 0
        for attempt in range(len(script) + len(loop_kills) + 2):
            try:
                with WorkspaceLock(workspace / "runs"):
                    session = open_session(
                        workspace,
                        budget=None if attempt else BudgetSpec(runs=budget),
                        resume=attempt > 0,
                        trainer=trainer,
                        observer=observer,
                    )
                    resumes += attempt > 0
                    session.run()
                break
            except Killed:
                store = Store(workspace)
                latest = store.latest_session()
                if latest is not None:
                    for p in store.probes(latest.id):
                        if p.state == "finished":
                            # What a kill leaves finished stays finished, untouched, for good.
                            assert finished_at_kill.setdefault(p.id, (p.status, p.seed)) == (
                                p.status,
                                p.seed,
                            )
                store.close()
                if latest is None or latest.status != "running":
                    break  # killed after the session had ended: nothing to resume
        store = Store(workspace)
        row = store.latest_session()
        assert row is not None
        if row.status == "running":
            # The last kill landed after the final write; one more resume ends it.
            with WorkspaceLock(workspace / "runs"):
                open_session(workspace, budget=None, resume=True, trainer=trainer).run()
            row = store.get_session(row.id)
            assert row is not None
        assert row.status in {"finished", "underpowered", "failed"}, row.status
        probes = store.probes(row.id)

        started = Counter(probe_id for probe_id, _ in calls)
        returned = Counter(probe_id for probe_id, fate in calls if fate != "kill")
        # Every training the trainer really started belongs to a recorded probe ...
        assert set(started) <= {p.id for p in probes}
        # ... the budget charges each probe once, however often a kill made it re-run ...
        assert store.runs_used(row.id) == len(started) <= budget
        # ... each probe's trainings all died but the last, and nothing is trained after it
        # returned: a finished probe is never trained again.
        for probe_id in started:
            assert returned[probe_id] <= 1, probe_id
            fates = [fate for pid, fate in calls if pid == probe_id]
            assert all(f == "kill" for f in fates[:-1]), (probe_id, fates)
        by_id = {p.id: p for p in probes}
        for probe_id in returned:
            assert by_id[probe_id].state == "finished"
            crashed = [fate for pid, fate in calls if pid == probe_id][-1] == "crash"
            assert (by_id[probe_id].status == "crash") == crashed
        for probe_id, value in finished_at_kill.items():
            assert (by_id[probe_id].status, by_id[probe_id].seed) == value
        if row.status == "finished":
            # Nothing left half-done, and the budget was spent unless the policy concluded.
            assert all(p.state == "finished" for p in probes)
            if row.conclusion is None:
                assert store.runs_used(row.id) == budget
            # results.tsv holds one line per finished training.
            tsv = (workspace / "results.tsv").read_text().splitlines()
            assert len(tsv) - 1 == len(probes)
        assert not math.isnan(row.seconds_used)
        store.close()

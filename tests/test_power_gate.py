"""The power gate end to end: a campaign shaped like seed 003's (about 12 prompts per
category, one eval, guard tolerance 0.5, eval noise of several points per prompt, a seed
that moves the whole model) stops after its baseline as `underpowered`, spends nothing more,
says what would fix it, and leaves its baseline for the next session."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.store.store import Store
from tests.conftest import make_workspace, write_prompts
from tests.test_session import cli


@pytest.fixture
def seed003(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = make_workspace(tmp_path / "ws")
    text = (ws / "search_space.yaml").read_text()
    text = text.replace("  max_mde: 1.5", "  max_mde: 1.0").replace(
        "guard_tolerance: 1.0", "guard_tolerance: 0.5"
    )
    (ws / "search_space.yaml").write_text(text)
    write_prompts(ws / "probe-prompts.jsonl", {"facts": 12, "voice": 12, "offtask": 12})
    monkeypatch.setenv("FAKE_PROMPT_SD", "4.0")  # seed 003: 3-8 points per prompt
    monkeypatch.setenv("FAKE_SEED_SD", "0.2")
    monkeypatch.setenv("FAKE_MARKERS", str(tmp_path / "markers"))
    return ws


def trainings_started(ws: Path) -> int:
    """The trainer's own start markers: what really ran, whatever the database says."""
    folder = ws.parent / "markers"
    return len(list(folder.glob("*.started"))) if folder.exists() else 0


def test_seed003_shape_stops_underpowered_with_the_fix_spelled_out(seed003: Path) -> None:
    code, out = cli("start", "--budget", "8", workspace=seed003)
    assert code == 3, out
    store = Store(seed003)
    session = store.latest_session()
    assert session is not None and session.status == "underpowered"
    assert trainings_started(seed003) == 3  # the baseline, nothing more
    assert store.runs_used(session.id) == 3
    assert [p.kind for p in store.probes(session.id)] == ["baseline"] * 3
    message = session.error or ""
    assert "underpowered" in message
    assert "guard voice: tolerance 0.50 is below" in message
    assert "target facts" in message
    # The fixes are concrete: prompts, repeats or seeds, or the tolerance it would take.
    assert "facts prompts" in message  # how many, or that no number of them suffices
    assert "objective.guard_tolerance voice:" in message
    assert session.power and session.power["underpowered"]
    assert (seed003 / "SESSION_REPORT.md").exists()
    code, out = cli("power", workspace=seed003)
    assert code == 0 and "underpowered" in out and "what would fix it" in out


def test_the_next_session_reuses_the_baseline_and_force_goes_on(seed003: Path) -> None:
    assert cli("start", "--budget", "8", workspace=seed003)[0] == 3
    code, out = cli("start", "--budget", "8", workspace=seed003)
    assert code == 3, out
    store = Store(seed003)
    first, second = store.all_sessions()[:2]
    assert trainings_started(seed003) == 3  # nothing trained twice
    assert store.runs_used(second.id) == 0
    reused = store.probes(second.id)
    assert [p.reused_from for p in reused] == [p.id for p in store.probes(first.id)]
    assert [store.scores(p.id) for p in reused] == [
        store.scores(p.id) for p in store.probes(first.id)
    ]
    assert any(e.kind == "reused" for e in store.events(second.id))

    code, out = cli("start", "--budget", "5", "--force", workspace=seed003)
    assert code == 0, out
    third = Store(seed003).latest_session()
    assert third is not None and third.forced and third.status == "finished"
    # Baselines came free, so the whole budget went to probes and confirmations.
    assert trainings_started(seed003) == 3 + 5
    assert Store(seed003).runs_used(third.id) == 5


def test_a_changed_input_is_never_reused(seed003: Path) -> None:
    assert cli("start", "--budget", "8", workspace=seed003)[0] == 3
    prompts = seed003 / "probe-prompts.jsonl"
    prompts.write_text(prompts.read_text().replace("question 0 about facts", "question 0?"))
    assert cli("start", "--budget", "8", workspace=seed003)[0] == 3
    assert trainings_started(seed003) == 6
    assert cli("start", "--budget", "8", "--no-cache", workspace=seed003)[0] == 3
    assert trainings_started(seed003) == 9

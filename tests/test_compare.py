"""`autoresearch compare A B`: per category and per prompt, B against A, with both
generations; its numbers are the database's scores (checked here from the stored scores and
the stored verdicts, not through the code under test)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.compare import CompareError, compare
from agent.store.store import Store
from tests.conftest import finished_fake_session

runner = CliRunner()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A budget-8 session of the fake trainer (a keep, a discard, a guard_fail)."""
    return finished_fake_session(tmp_path_factory.mktemp("compare") / "ws")


def _prompt_means(store: Store, probe_id: str) -> dict[tuple[str, str], float]:
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for s in store.scores(probe_id):
        acc[(s.category, s.prompt_id)].append(s.score)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def test_a_probe_against_its_baseline_matches_its_verdict(finished: Path) -> None:
    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    probe = next(p for p in store.probes(session.id) if p.status == "guard_fail")
    result = compare(store, None, probe, top=3)
    assert result.a.startswith("baseline (3 seeds") and result.b == probe.id
    assert probe.verdict is not None
    stored = {c["category"]: c["delta"] for c in probe.verdict["categories"]}
    assert {c: d for c, _, _, d, _ in result.categories} == pytest.approx(stored)
    assert len(result.moved) == 3


def test_two_probes_side_by_side_in_the_cli(finished: Path) -> None:
    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    probes = [p for p in store.probes(session.id) if p.kind == "probe" and p.verdict]
    a, b = probes[0], probes[1]
    result = compare(store, a, b, top=4)
    # Same baseline: B − A per category is the difference of their verdicts' deltas.
    da = {c["category"]: c["delta"] for c in a.verdict["categories"]}  # type: ignore[index]
    db = {c["category"]: c["delta"] for c in b.verdict["categories"]}  # type: ignore[index]
    assert {c: d for c, _, _, d, _ in result.categories} == pytest.approx(
        {c: db[c] - da[c] for c in da}
    )
    ma, mb = _prompt_means(store, a.id), _prompt_means(store, b.id)
    biggest = max(abs(mb[k] - ma[k]) for k in ma)
    assert abs(result.moved[0].delta) == pytest.approx(biggest)
    assert [abs(m.delta) for m in result.moved] == sorted(
        (abs(m.delta) for m in result.moved), reverse=True
    )
    out = runner.invoke(app, ["compare", a.id, b.id, "--top", "2", "-w", str(finished)])
    assert out.exit_code == 0, out.output
    first = result.moved[0]
    assert f"{first.prompt_id} at seed {a.seed}" in out.output  # A's generation
    assert f"{first.prompt_id} at seed {b.seed}" in out.output  # B's, beside it
    data = json.loads(
        runner.invoke(app, ["compare", a.id, b.id, "--json", "-w", str(finished)]).output
    )
    assert [c["category"] for c in data["categories"]] == [c for c, *_ in result.categories]


def test_what_cannot_be_compared_is_refused_with_the_reason(finished: Path) -> None:
    store = Store(finished)
    with pytest.raises(CompareError, match="name at least one probe"):
        compare(store, None, None)
    out = runner.invoke(app, ["compare", "probe-nope", "baseline", "-w", str(finished)])
    assert out.exit_code == 2 and "no probe 'probe-nope'" in out.output

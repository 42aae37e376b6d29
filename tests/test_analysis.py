"""`agent.analysis.session_frame()` and results.tsv as pandas reads them: typed columns whose
numbers are the database's."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.analysis import AnalysisError, session_frame
from agent.cli import app
from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

runner = CliRunner()


def start(workspace: Path, *args: str) -> None:
    result = runner.invoke(app, ["start", *args, "-w", str(workspace)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def campaign_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sessions (the second reuses the first's baseline): read, never written, by the
    tests of this module."""
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path_factory.mktemp("analysis") / "ws", campaign=text)
    start(workspace, "--budget", "8")
    start(workspace, "--budget", "4")
    return workspace


def test_results_tsv_reads_with_typed_columns(campaign_workspace: Path) -> None:
    tsv = pd.read_csv(campaign_workspace / "results.tsv", sep="\t", dtype={"guard_ok": "boolean"})
    assert {c: str(tsv[c].dtype) for c in ("steps", "seed", "critical")} == dict.fromkeys(
        ("steps", "seed", "critical"), "int64"
    )
    for column in ("target_delta", "ci_low", "ci_high", "worst_guard_delta"):
        assert tsv[column].dtype == "float64", column
    assert str(tsv["guard_ok"].dtype) == "boolean"
    probes = tsv[tsv["kind"] != "baseline"]
    assert (
        probes["target_delta"].notna().all()
        and tsv[tsv["kind"] == "baseline"]["target_delta"].isna().all()
    )
    assert set(probes["guard_ok"].dropna()) <= {True, False}


def test_session_frame_holds_the_databases_numbers(campaign_workspace: Path) -> None:
    store = Store(campaign_workspace)
    first, second = store.all_sessions()
    frame = session_frame(campaign_workspace)  # the latest session
    assert set(frame["session"]) == {second.id}
    everything = session_frame(campaign_workspace, campaign=True)
    tsv = pd.read_csv(campaign_workspace / "results.tsv", sep="\t")
    # Same trainings, same order as results.tsv; its numbers rounded to 4 significant digits.
    assert everything["probe_id"].tolist() == tsv["probe_id"].tolist()
    assert everything["critical"].tolist() == tsv["critical"].tolist()
    for ours, theirs in zip(everything["target_delta"], tsv["target_delta"], strict=True):
        assert (math.isnan(ours) and math.isnan(theirs)) or float(f"{ours:.4g}") == theirs
    assert str(everything["guard_ok"].dtype) == "boolean"
    assert str(everything["started_at"].dtype).startswith("datetime64")
    # Per category, the probe's mean: per prompt over repeats, then over prompts (computed
    # here from the stored scores), and the verdict's delta.
    first_frame = session_frame(campaign_workspace, first.id)
    for row in first_frame.itertuples():
        by_prompt: dict[tuple[str, str], list[float]] = defaultdict(list)
        for score in store.scores(row.probe_id):
            by_prompt[(score.category, score.prompt_id)].append(score.score)
        by_category: dict[str, list[float]] = defaultdict(list)
        for (category, _), values in by_prompt.items():
            by_category[category].append(sum(values) / len(values))
        for category, values in by_category.items():
            assert getattr(row, f"score_{category}") == pytest.approx(sum(values) / len(values))
        if row.kind == "baseline":
            assert math.isnan(row.delta_facts) and math.isnan(row.target_delta)
        else:
            assert row.delta_facts == pytest.approx(row.target_delta)
            probe = store.get_probe(row.probe_id)
            assert probe is not None and probe.verdict is not None
            voice = next(c for c in probe.verdict["categories"] if c["category"] == "voice")
            assert row.delta_voice == pytest.approx(voice["delta"])


def test_session_frame_names_what_it_cannot_find(tmp_path: Path, campaign_workspace: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no session has run"):
        session_frame(tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []  # reading created nothing
    with pytest.raises(AnalysisError, match="'zzz' matches none"):
        session_frame(campaign_workspace, "zzz")
    with pytest.raises(AnalysisError, match=r"matches .*, "):  # both sessions share the day
        session_frame(campaign_workspace, "2")


def test_the_reports_cost_counts_what_was_spent_here(campaign_workspace: Path) -> None:
    """The second session reused the first's baseline: the report's cost charges it nothing,
    and the total is the sum of the stored wall times of the trainings this session ran."""
    from agent.report.cost import cost_summary

    store = Store(campaign_workspace)
    _first, second = store.all_sessions()
    finished = [p for p in store.probes(second.id) if p.state == "finished"]
    reused = [p for p in finished if p.reused_from]
    assert reused and all(p.kind == "baseline" for p in reused)
    cost = cost_summary(store, second.id)
    assert cost["reused"] == len(reused) and cost["trainings"] == len(finished) - len(reused)
    assert cost["trainings"] == store.runs_used(second.id)
    spent = sum(p.runtime_s or 0.0 for p in finished if not p.reused_from)
    assert cost["seconds"] == pytest.approx(spent)
    assert all(r["seconds"] is None for r in cost["rows"] if r["reused_from"])
    result = runner.invoke(app, ["report", "--session", second.id, "-w", str(campaign_workspace)])
    assert result.exit_code == 0, result.output
    text = (campaign_workspace / "SESSION_REPORT.md").read_text()
    assert f"{cost['trainings']} trainings run, {len(reused)} reused from earlier sessions" in text
    assert text.count("| reused |") == len(reused)
    # A reused training's judge was paid by its own session: not counted again here.
    from agent.report.render import report_data

    for p in reused:
        store.update_probe(p.id, metrics={**(p.metrics or {}), "judge_cost_usd": 1.0})
    assert report_data(store, second.id)["judge_cost_usd"] == 0.0

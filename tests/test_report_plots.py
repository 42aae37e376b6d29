"""The report's plots: drawn beside the archived report, linked from both copies, each showing
the database's numbers (computed here independently), and never costing the report."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.report import plots
from agent.report.render import plots_folder, report_data
from agent.store.store import Store
from tests.conftest import FAKE_TRAINER, finished_fake_session

runner = CliRunner()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A budget-8 session of the fake trainer (a keep, a discard, a guard_fail)."""
    return finished_fake_session(tmp_path_factory.mktemp("plots") / "ws")


def _reported(finished: Path) -> tuple[Store, Any, str]:
    """The workspace's store, its session and its report, written afresh by `report`."""
    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    result = runner.invoke(app, ["report", "-w", str(finished)])
    assert result.exit_code == 0, result.output
    return store, session, (finished / "SESSION_REPORT.md").read_text()


def test_plots_are_written_viewable_and_linked_from_both_reports(finished: Path) -> None:
    from matplotlib.image import imread

    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    folder = plots_folder(finished, session.id)
    for name in plots.PLOT_FILES:
        image = imread(folder / name)  # a PNG matplotlib reads back
        assert image.shape[0] > 100 and image.shape[1] > 100, name
        assert image[..., :3].std() > 0.05, f"{name} is blank"
    archive = finished / "docs" / "sessions" / f"SESSION_REPORT_{session.id}.md"
    for report in (finished / "SESSION_REPORT.md", archive):
        text = report.read_text()
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert sorted(Path(link).name for link in links) == sorted(plots.PLOT_FILES)
        assert all((report.parent / link).is_file() for link in links), links
        assert not re.search(r"-0\.00(?!\d)", text)  # no negative zero (ids hold -0.0005)


def test_each_plot_draws_the_databases_numbers(finished: Path) -> None:
    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    probes = store.probes(session.id)
    data = report_data(store, session.id)
    cells = plots.heatmap_cells(data["runs"], data["categories"])
    judged = [p for p in probes if p.kind != "baseline" and p.verdict]
    assert len(cells.rows) == len(judged)
    for row_deltas, row_significant, run in zip(
        cells.deltas, cells.significant, data["runs"], strict=True
    ):
        probe = store.get_probe(run["id"])
        assert probe is not None and probe.verdict is not None
        for j, category in enumerate(cells.categories):
            c = next(c for c in probe.verdict["categories"] if c["category"] == category)
            assert row_deltas[j] == c["delta"]
            assert row_significant[j] == (not c["ci_low"] <= 0.0 <= c["ci_high"])
    forest = plots.forest_rows(data["runs"])
    assert [r[1] for r in forest] == sorted((p.verdict["target_delta"] for p in judged),
                                            reverse=True)  # fmt: skip
    points = plots.progress_points(probes)
    assert [x for x, _, _ in points] == list(range(1, store.runs_used(session.id) + 1))
    keeps = [p.verdict["target_delta"] for p in judged if p.status == "keep"]
    assert keeps, "the fake session keeps a change"
    assert points[-1][1] == max(keeps) and points[0][1] == 0.0
    # Before the first keep the recipe is the best: the curve only rises at a keep.
    first_keep = min(p.seq for p in judged if p.status == "keep")
    charged = sorted((p for p in probes if p.counted), key=lambda p: p.seq)
    at = next(i for i, p in enumerate(charged) if p.seq == first_keep)
    assert all(y == 0.0 for _, y, _ in points[:at]) and points[at][1] > 0


def test_a_plot_that_fails_costs_the_report_nothing(
    finished: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("no fonts on this machine")

    monkeypatch.setattr(plots, "write_plots", broken)
    result = runner.invoke(app, ["report", "-w", str(finished)])
    assert result.exit_code == 0, result.output
    text = (finished / "SESSION_REPORT.md").read_text()
    assert "Plots could not be drawn (RuntimeError: no fonts on this machine)" in text
    assert "## Probes" in text and "![" not in text


def test_the_html_report_is_one_page_with_no_external_reference(finished: Path) -> None:
    from html.parser import HTMLParser

    result = runner.invoke(app, ["report", "--html", "-w", str(finished)])
    assert result.exit_code == 0, result.output
    page = (finished / "SESSION_REPORT.html").read_text()

    class Refs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.refs: list[tuple[str, str, str]] = []
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            for name, value in attrs:
                if name in ("src", "href", "action", "srcset", "poster") and value:
                    self.refs.append((tag, name, value))

    parser = Refs()
    parser.feed(page)
    assert parser.refs, "the plots are images"
    assert all(value.startswith(("data:image/png;base64,", "#")) for _, _, value in parser.refs)
    assert "link" not in parser.tags and "script" not in parser.tags
    assert sum(1 for tag, _, _ in parser.refs if tag == "img") == len(plots.PLOT_FILES)
    markdown = (finished / "SESSION_REPORT.md").read_text()
    assert parser.tags.count("table") == markdown.count("\n|---")  # every table rendered
    assert "Session report" in page and not re.search(r"-0\.00(?!\d)", page)


def test_evaluation_health_shows_the_noisiest_prompts_and_what_moved(finished: Path) -> None:
    from collections import defaultdict
    from statistics import stdev

    store = Store(finished)
    session = store.latest_session()
    assert session is not None
    probes = store.probes(session.id)
    baselines = [p for p in probes if p.kind == "baseline"]

    def prompt_means(probe_id: str) -> dict[tuple[str, str], float]:
        acc: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in store.scores(probe_id):
            acc[(s.category, s.prompt_id)].append(s.score)
        return {k: sum(v) / len(v) for k, v in acc.items()}

    per_seed = [prompt_means(b.id) for b in baselines]
    sds = {k: stdev(m[k] for m in per_seed) for k in per_seed[0]}
    noisiest = max(sds, key=lambda k: sds[k])
    text = (finished / "SESSION_REPORT.md").read_text()
    health = text.split("## Evaluation health", 1)[1].split("\n## ", 1)[0]
    first_row = next(line for line in health.splitlines() if line.startswith(f"| {noisiest[0]} |"))
    assert f"| {noisiest[1]} | {sds[noisiest]:.2f} |" in first_row
    assert "Small categories" not in health  # 24 prompts each
    # The best probe's most-moved prompt: the largest |probe - baseline mean| over prompts.
    best = max(
        (p for p in probes if p.kind == "probe" and p.verdict),
        key=lambda p: p.verdict["target_delta"],
    )  # type: ignore[index]
    base = {k: sum(m[k] for m in per_seed) / len(per_seed) for k in per_seed[0]}
    mine = prompt_means(best.id)
    biggest = max(abs(mine[k] - base[k]) for k in base)
    section = health.split("for the best probe", 1)[1]
    top_row = next(
        line
        for line in section.splitlines()
        if line.startswith("| ") and "---" not in line and "category" not in line
    )
    assert top_row.rstrip(" |").endswith(f"{biggest:.2f}")
    assert "Every prompt was scored: no judge error." in health


def test_a_confirmation_is_shown_beside_the_run_it_reproduces(finished: Path) -> None:
    store, session, text = _reported(finished)
    section = text.split("### Confirmations and replays", 1)[1].split("\n### ", 1)[0]
    confirms = [p for p in store.probes(session.id) if p.kind == "confirm"]
    assert confirms
    for confirm in confirms:
        parent = store.get_probe(confirm.parent_id or "")
        assert parent is not None and parent.verdict and confirm.verdict
        first, again = parent.verdict["target_delta"], confirm.verdict["target_delta"]
        row = f"| {first:+.2f} | {again:+.2f} | {again - first:+.2f} | {confirm.status} |"
        assert row in section, (row, section)


def test_the_tldr_is_three_lines_true_of_the_stored_verdicts(finished: Path) -> None:
    store, session, text = _reported(finished)
    lines = text.split("\n\n")[1].splitlines()
    assert len(lines) == 3 and [line.split("**")[1] for line in lines] == [
        "Kept:", "Refused:", "Resolution:",
    ]  # fmt: skip
    probes = store.probes(session.id)
    (keep,) = [p for p in probes if p.status == "keep"]
    v = keep.verdict or {}
    assert (
        f"`learning_rate=0.002`: facts {v['target_delta']:+.2f} "
        f"[{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]" in lines[0]
    )
    failed = [p for p in probes if p.status == "guard_fail"]
    assert failed
    for p in failed:
        pv = p.verdict or {}
        assert f"`{p.changes and next(iter(p.changes))}=" in lines[1]
        for guard in pv.get("regressed_guards", []):
            c = next(c for c in pv["categories"] if c["category"] == guard)
            assert f"{guard} {c['delta']:+.2f}, shown below {c['threshold']:+.2f}" in lines[1]
    assert f"{store.runs_used(session.id)} trainings in" in lines[2]
    # The setup names the trainer that produced these numbers.
    assert f"| trainer | command: {sys.executable} {FAKE_TRAINER} --config" in text
    assert f"effects of {session.mde:.2f} and above" in lines[2] or session.mde is None

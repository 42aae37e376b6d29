"""End to end on the demo lab: the README's main command, with small settings.

These train real LoRA probes with TRL on the demo base model (built offline on first use and
cached under $AUTORESEARCH_CACHE, ~1 minute once).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from agent.store.store import Store

ROOT = Path(__file__).parents[1]
runner = CliRunner()


def _small(workspace: Path, *, steps: int = 40) -> None:
    """The same campaign, with probes short enough for a test."""
    path = workspace / "search_space.yaml"
    campaign = yaml.safe_load(path.read_text())
    campaign["probe"]["steps"] = steps
    campaign["probe"]["baseline_seeds"] = 2
    campaign["agent"]["policy"] = "optuna"
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))


def _check_session(workspace: Path, trainings: int) -> Store:
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    assert store.runs_used(session.id) == trainings
    probes = store.probes(session.id)
    assert [p.kind for p in probes[:2]] == ["baseline", "baseline"]
    assert all(p.status != "crash" for p in probes), [(p.id, p.error) for p in probes]
    assert all(p.kind == "baseline" or p.verdict for p in probes)
    assert (workspace / "results.tsv").read_text() == store.render_tsv()
    for p in probes:
        run_dir = Path(p.run_dir or "")
        for name in ("adapter", "dataset.json", "scores.jsonl", "metrics.json", "config.json"):
            assert (run_dir / name).exists(), (p.id, name)
    return store


@pytest.mark.slow
def test_demo_lab_session(tmp_path: Path) -> None:
    workspace = tmp_path / "lab"
    workspace.mkdir()
    for name in ("search_space.yaml", "program.md"):
        shutil.copy(ROOT / name, workspace / name)
    shutil.copytree(ROOT / "data", workspace / "data")
    _small(workspace)
    result = runner.invoke(app, ["start", "--budget", "4", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    store = _check_session(workspace, 4)
    session = store.latest_session()
    assert session is not None and session.noise
    # The offline policy proposed knobs of the lanes, within their ranges.
    probe = next(p for p in store.probes(session.id) if p.kind == "probe")
    assert probe.lane in {"hyperparameters", "data_mixture", "curriculum"}
    assert "facts" in (workspace / "SESSION_REPORT.md").read_text()
    assert (workspace / "runs" / "optuna.db").exists()


@pytest.mark.slow
def test_init_workspace_runs_its_example_command_trainer(tmp_path: Path) -> None:
    workspace = tmp_path / "mine"
    result = runner.invoke(app, ["init", str(workspace)])
    assert result.exit_code == 0, result.output
    _small(workspace, steps=20)
    result = runner.invoke(app, ["start", "--budget", "3", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    _check_session(workspace, 3)

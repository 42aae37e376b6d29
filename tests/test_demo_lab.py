"""End to end on the demo lab: the README's main command, with small settings, and the root
campaign itself through its power gate.

These train real LoRA probes with TRL on the demo base model (built offline on first use and
cached under $AUTORESEARCH_CACHE, ~1 minute once). The small settings (2 baseline seeds, 20-40
steps) cannot resolve anything, so the mechanics tests pass `--force` past the power gate;
`test_root_campaign_passes_the_power_gate` checks that the unchanged root campaign can.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.campaign import load_campaign
from agent.cli import app
from agent.stats import PowerReport, max_confirmations, power_report
from agent.store.store import Store
from agent.verdict import NoiseModel, Verdict

ROOT = Path(__file__).parents[1]
runner = CliRunner()


def _copy_root(tmp_path: Path) -> Path:
    """The repository root's demo workspace (campaign, brief, data), copied."""
    workspace = tmp_path / "lab"
    workspace.mkdir()
    for name in ("search_space.yaml", "program.md"):
        shutil.copy(ROOT / name, workspace / name)
    shutil.copytree(ROOT / "data", workspace / "data")
    return workspace


def _small(workspace: Path, *, steps: int = 40) -> None:
    """The same campaign, with probes short enough for a test (underpowered: the tests that
    use it are about mechanics and pass --force)."""
    path = workspace / "search_space.yaml"
    campaign = yaml.safe_load(path.read_text())
    campaign["probe"]["steps"] = steps
    campaign["probe"]["baseline_seeds"] = 2
    campaign["agent"]["policy"] = "optuna"
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))


TRL_FILES = ("adapter", "dataset.json", "scores.jsonl", "metrics.json", "config.json")


def _check_session(
    workspace: Path, trainings: int, *, forced: bool = True, files: tuple[str, ...] = TRL_FILES
) -> Store:
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    assert session.forced is forced
    assert store.runs_used(session.id) == trainings
    probes = store.probes(session.id)
    assert [p.kind for p in probes[:2]] == ["baseline", "baseline"]
    assert all(p.status != "crash" for p in probes), [(p.id, p.error) for p in probes]
    assert all(p.kind == "baseline" or p.verdict for p in probes)
    assert (workspace / "results.tsv").read_text() == store.render_tsv()
    for p in probes:
        run_dir = Path(p.run_dir or "")
        for name in files:
            assert (run_dir / name).exists(), (p.id, name)
    return store


@pytest.mark.slow
def test_init_workspace_runs_its_example_command_trainer(tmp_path: Path) -> None:
    workspace = tmp_path / "mine"
    result = runner.invoke(app, ["init", str(workspace)])
    assert result.exit_code == 0, result.output
    # The example trainer is self-contained: a user reads it without autoresearch's code.
    script = (workspace / "train_probe.py").read_text()
    assert "import probes" not in script and "from probes" not in script
    assert "import agent" not in script and "from agent" not in script
    _small(workspace, steps=20)
    result = runner.invoke(app, ["start", "--force", "--budget", "3", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    _check_session(workspace, 3, files=("scores.jsonl", "metrics.json", "config.json"))
    # It reads the recipe keys it names and refuses any other.
    path = workspace / "search_space.yaml"
    campaign = yaml.safe_load(path.read_text())
    campaign["recipe"]["lora_r"] = 8
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    runner.invoke(app, ["start", "--new", "--force", "--budget", "3", "-w", str(workspace)])
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None
    crashed = [p for p in store.probes(session.id) if p.status == "crash"]
    assert crashed and "recipe key 'lora_r' is not one this trainer reads" in (
        crashed[0].log_tail or ""
    )


@pytest.mark.slow
def test_root_campaign_passes_the_power_gate(tmp_path: Path) -> None:
    """The root campaign, unchanged, can resolve what it asks: after its baseline the power
    gate lets the session go on (no --force), for the README's `start --budget 8` too.

    Trains the baseline seeds and one probe of the real demo (about 20-50 s each)."""
    workspace = _copy_root(tmp_path)
    campaign = load_campaign(workspace / "search_space.yaml")
    seeds = campaign.probe.baseline_seeds
    result = runner.invoke(app, ["start", "--budget", str(seeds + 1), "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    store = _check_session(workspace, seeds + 1, forced=False)
    session = store.latest_session()
    assert session is not None and session.noise and session.power
    assert PowerReport.from_dict(session.power).underpowered == []
    # `start --budget 8` tests its first confirmation at a stricter level (two confirmations
    # to pay for, not one): the same baseline must pass that gate too.
    noise = NoiseModel.from_dict(session.noise)
    at_8 = power_report(noise, campaign.objective, max_confirmations=max_confirmations(8, seeds))
    assert at_8.underpowered == [], at_8.underpowered
    assert at_8.mde <= campaign.objective.max_mde
    # The offline policy's first probe is the demo's find (docs/demo-lab.md): the recipe keeps
    # half the facts source, and weight_facts 2.5 raised facts by about +3 in every session
    # measured (baseline noise ±0.2-0.6), so a screen delta below +1.0 means the lab changed.
    probe = next(p for p in store.probes(session.id) if p.kind == "probe")
    assert probe.lane == "data_mixture" and probe.changes == {"weight_facts": 2.5}
    assert campaign.lanes[probe.lane]["weight_facts"].contains(2.5)
    assert probe.verdict is not None
    delta = Verdict.from_dict(probe.verdict).target_delta
    assert delta is not None and delta > 1.0, probe.verdict
    assert "facts" in (workspace / "SESSION_REPORT.md").read_text()
    assert (workspace / "runs" / "optuna.db").exists()

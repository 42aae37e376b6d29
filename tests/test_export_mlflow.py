"""`autoresearch export mlflow` against a local tracking store (SQLite): the session is a parent
run, each finished training a nested run holding the database's numbers; exporting twice is
refused and writes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra: pip install -e '.[mlflow]'")
runner = CliRunner()


def test_a_session_becomes_a_parent_run_with_a_nested_run_per_training(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    assert runner.invoke(app, ["start", "--budget", "8", "-w", str(workspace)]).exit_code == 0
    uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    result = runner.invoke(
        app, ["export", "mlflow", "--tracking-uri", uri, "--experiment", "lab", "-w", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None
    finished = [p for p in store.probes(session.id) if p.state == "finished"]

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lab")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("autoresearch.kind") == "session"]
    assert parent.data.tags["autoresearch.session_id"] == session.id
    assert parent.data.params["target"] == "facts"
    assert parent.data.metrics["trainings"] == store.runs_used(session.id)
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert f"SESSION_REPORT_{session.id}.md" in parent_files and "plots" in parent_files
    children = {
        r.data.tags["autoresearch.probe_id"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert children.keys() == {p.id for p in finished}
    for probe in finished:
        run = children[probe.id]
        assert run.data.params["seed"] == str(probe.seed)
        assert probe.spec is not None
        assert float(run.data.params["learning_rate"]) == probe.spec["params"]["learning_rate"]
        assert run.data.tags["status"] == (probe.status or "")
        for c in (probe.verdict or {}).get("categories", []):
            assert run.data.metrics[f"delta_{c['category']}"] == pytest.approx(c["delta"])
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert probe.run_dir is not None
        expected = [
            json.loads(line)["loss"]
            for line in (Path(probe.run_dir) / "train_history.jsonl").read_text().splitlines()
        ]
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(expected)
        files = {a.path for a in client.list_artifacts(run.info.run_id, "run")}
        assert "run/scores.jsonl" in files and not any("adapter" in f for f in files)

    again = runner.invoke(
        app, ["export", "mlflow", "--tracking-uri", uri, "--experiment", "lab", "-w", str(workspace)]
    )
    assert again.exit_code == 2 and "already in experiment 'lab'" in " ".join(again.output.split())
    assert len(client.search_runs([experiment.experiment_id], max_results=1000)) == len(runs)

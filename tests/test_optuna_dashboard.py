"""optuna-dashboard on the optuna policy's storage: the test opens `runs/optuna.db` the way
the dashboard does (an RDBStorage on the URL, every study, every trial) and checks that what
it would show is the session's: one study per lane named for the session, each judged probe a
finished trial whose value is the probe's target delta from the database."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

runner = CliRunner()


def test_the_dashboard_reads_every_probe_with_its_target_delta(tmp_path: Path) -> None:
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("policy: sweep", "policy: optuna")
    assert "policy: optuna" in text
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    result = runner.invoke(app, ["start", "--budget", "8", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None
    judged = {
        p.id: p.verdict["target_delta"]
        for p in store.probes(session.id)
        if p.kind == "probe" and p.verdict and p.verdict.get("target_delta") is not None
    }
    assert judged

    # What `optuna-dashboard sqlite:///runs/optuna.db` does: open the URL, list the studies,
    # read each study's trials (params with their distributions, values, user attributes).
    storage = RDBStorage(f"sqlite:///{workspace / 'runs' / 'optuna.db'}")
    studies = storage.get_all_studies()
    assert studies and all(
        s.study_name.startswith(f"autoresearch:{session.id}:") for s in studies
    )
    shown: dict[str, float] = {}
    for study in studies:
        assert study.user_attrs["session_id"] == session.id
        for trial in storage.get_all_trials(study._study_id):
            assert set(trial.params) == set(trial.distributions)
            if trial.state is TrialState.COMPLETE and "probe_id" in trial.user_attrs:
                assert trial.value is not None
                shown[trial.user_attrs["probe_id"]] = trial.value
    assert shown.keys() == judged.keys()
    assert all(abs(shown[k] - judged[k]) < 1e-9 for k in judged)

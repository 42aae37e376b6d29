"""`autoresearch export mlflow`: a session in MLflow, to browse in its UI.

The session is a parent run (its objective, budget and policy as params; its MDE and
trainings as metrics; the report and its plots as artifacts), and every finished training a
nested run (`mlflow.parentRunId`): the resolved recipe and seed as params, per-category scores
and deltas, the target's interval and the wall time as metrics, the loss curve as the
`train_loss` metric by step, the verdict as tags, and the run folder's small files (scores,
metrics, verdict, generations, loss history; never the adapter) as artifacts.

The tracking store defaults to `sqlite:///<workspace>/runs/mlflow.db` (MLflow's file store is
in maintenance mode); `--tracking-uri` takes any MLflow URI. A session already exported to
that experiment is refused, naming its run, so an export never doubles. mlflow is an optional
extra (`pip install -e ".[mlflow]"`), imported only here.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.proposals import format_changes
from agent.stats import category_means
from agent.store.store import Store
from agent.training_log import read_history

SESSION_TAG = "autoresearch.session_id"
PROBE_TAG = "autoresearch.probe_id"
KIND_TAG = "autoresearch.kind"  # "session" on the parent run, the training's kind on a child
RUN_FILES = (
    "scores.jsonl",
    "metrics.json",
    "verdict.json",
    "outputs.jsonl",
    "train_history.jsonl",
    "config.json",
)
"""What of a run folder goes to MLflow: small, readable files; the adapter stays in runs/."""


class ExportError(RuntimeError):
    """The export cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    child_run_ids: dict[str, str]  # probe id -> MLflow run id


def default_tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{(workspace / 'runs' / 'mlflow.db').resolve()}"


def _text(value: Any, limit: int = 500) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def export_session(
    store: Store,
    session_id: str,
    *,
    tracking_uri: str | None = None,
    experiment: str = "autoresearch",
) -> Exported:
    """Export one session (module doc); returns the MLflow ids written."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError(
            "mlflow is not installed: pip install -e '.[mlflow]' (or pip install mlflow)"
        ) from None

    session = store.get_session(session_id)
    if session is None:
        raise ExportError(f"no session {session_id!r} in this workspace")
    uri = tracking_uri or default_tracking_uri(store.workspace)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        artifacts = (store.runs_dir / "mlflow-artifacts").resolve().as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=artifacts)
    else:
        experiment_id = found.experiment_id
    earlier = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SESSION_TAG}` = '{session_id}' and tags.`{KIND_TAG}` = 'session'",
        max_results=1,
    )
    if earlier:
        raise ExportError(
            f"session {session_id} is already in experiment {experiment!r} at {uri} "
            f"(run {earlier[0].info.run_id}); delete that run to export it again"
        )

    now = int(time.time() * 1000)
    campaign = session.campaign or {}
    objective = campaign.get("objective", {})
    probe_settings = campaign.get("probe", {})
    parent = client.create_run(
        experiment_id,
        run_name=f"session {session_id}",
        tags={SESSION_TAG: session_id, KIND_TAG: "session", "status": session.status or ""},
    )
    parent_id = parent.info.run_id
    params = {
        "target": objective.get("target"),
        "guards": ",".join(objective.get("guards", [])),
        "min_improvement": objective.get("min_improvement"),
        "steps": probe_settings.get("steps"),
        "baseline_seeds": probe_settings.get("baseline_seeds"),
        "policy": session.policy,
        "budget": session.budget_runs
        if session.budget_runs is not None
        else session.budget_seconds,
    }
    session_metrics: dict[str, Any] = {
        "mde": session.mde,
        "trainings": float(store.runs_used(session_id)),
    }
    client.log_batch(
        parent_id,
        params=[Param(k, _text(v)) for k, v in params.items() if v is not None],
        metrics=[Metric(k, float(v), now, 0) for k, v in session_metrics.items() if _finite(v)],
    )
    report = store.workspace / "docs" / "sessions" / f"SESSION_REPORT_{session_id}.md"
    if report.is_file():
        client.log_artifact(parent_id, str(report))
    plots = store.workspace / "docs" / "sessions" / f"{session_id}-plots"
    if plots.is_dir():
        client.log_artifacts(parent_id, str(plots), artifact_path="plots")

    children: dict[str, str] = {}
    for probe in store.probes(session_id):
        if probe.state != "finished":
            continue
        verdict = probe.verdict or {}
        run = client.create_run(
            experiment_id,
            run_name=f"{probe.kind}: {format_changes(probe.changes or {}) or 'recipe'}",
            tags={
                "mlflow.parentRunId": parent_id,
                PROBE_TAG: probe.id,
                SESSION_TAG: session_id,
                KIND_TAG: probe.kind,
                "status": probe.status or "",
                "reason": _text(verdict.get("reason") or probe.error or "", 5000),
                **({"reused_from": probe.reused_from} if probe.reused_from else {}),
            },
        )
        run_id = run.info.run_id
        recipe = dict((probe.spec or {}).get("params") or {})
        run_params = {**recipe, "seed": probe.seed, "steps": probe.steps, "lane": probe.lane}
        run_params["change"] = format_changes(probe.changes or {}) or "recipe"
        metrics: dict[str, Any] = {
            f"score_{c}": v for c, v in category_means([store.scores(probe.id)]).items()
        }
        for c in verdict.get("categories", []):
            metrics[f"delta_{c['category']}"] = c["delta"]
        for key in ("target_delta", "ci_low", "ci_high"):
            metrics[key] = verdict.get(key)
        metrics["runtime_s"] = None if probe.reused_from else probe.runtime_s
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)]
        for entry in read_history(Path(probe.run_dir) if probe.run_dir else None):
            step = int(entry.get("step", 0))
            batch.append(Metric("train_loss", float(entry["loss"]), now, step))
        params_list = [Param(str(k), _text(v)) for k, v in run_params.items() if v is not None]
        # MLflow takes at most 1000 metrics and 100 params per call.
        for i in range(0, max(len(batch), len(params_list), 1), 100):
            client.log_batch(run_id, metrics=batch[i : i + 100], params=params_list[i : i + 100])
        folder = Path(probe.run_dir) if probe.run_dir else None
        if folder is not None and folder.is_dir():
            with tempfile.TemporaryDirectory() as staging:
                for name in RUN_FILES:
                    if (folder / name).is_file():
                        (Path(staging) / name).write_bytes((folder / name).read_bytes())
                client.log_artifacts(run_id, staging, artifact_path="run")
        client.set_tag(run_id, "verdict", _text(probe.status or probe.kind))
        client.set_terminated(run_id, "FINISHED" if probe.status != "crash" else "FAILED")
        children[probe.id] = run_id
    client.set_terminated(parent_id)
    return Exported(uri, experiment_id, parent_id, children)

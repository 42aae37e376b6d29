"""Sessions as pandas DataFrames, for a notebook: `session_frame()`.

    from agent.analysis import session_frame
    df = session_frame("path/to/workspace")                 # the latest session
    df = session_frame("path/to/workspace", campaign=True)  # every session of the workspace

One row per finished training (baselines, probes, confirmations, replays), in the order
results.tsv lists them, with typed columns: the verdict's numbers as floats (NaN where a
baseline has none), `guard_ok` as pandas' nullable boolean, times as datetimes, and per
category the probe's mean score (`score_<category>`) and its delta against the baseline
(`delta_<category>`, oriented so positive is better, NaN for a baseline). `critical` counts
the training's critically failing scores, as results.tsv does. The numbers are the database's,
not re-derived: the same as `status`, `show`, results.tsv and the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.proposals import format_changes
from agent.stats import category_means
from agent.store.store import Store

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "session": "string",
    "probe_id": "string",
    "kind": "string",
    "lane": "string",
    "change": "string",
    "steps": "int64",
    "seed": "int64",
    "status": "string",
    "target": "string",
    "target_delta": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "guard_ok": "boolean",
    "worst_guard": "string",
    "worst_guard_delta": "float64",
    "critical": "int64",
    "runtime_s": "float64",
    "reused_from": "string",
    "started_at": "datetime64[ns]",
    "finished_at": "datetime64[ns]",
}
"""The fixed columns and their dtypes; `score_<category>` and `delta_<category>` follow."""

DB_PATH = Path("runs") / "autoresearch.db"


class AnalysisError(ValueError):
    """No such session, or an ambiguous one: the message says which."""


def _sessions(store: Store, session: str | None, campaign: bool) -> list[Any]:
    if campaign:
        return store.all_sessions()
    if session is None:
        latest = store.latest_session()
        if latest is None:
            raise AnalysisError(f"{store.workspace}: no session has run in this workspace")
        return [latest]
    found = store.find_session(session)
    if len(found) != 1:
        which = ", ".join(s.id for s in found) or "none"
        raise AnalysisError(f"{store.workspace}: session {session!r} matches {which}")
    return found


def session_frame(
    workspace: Path | str = ".", session: str | None = None, *, campaign: bool = False
) -> pd.DataFrame:
    """The session's finished trainings as a DataFrame (module doc): the latest session, the
    one `session` names (an id or a unique prefix), or every session with `campaign=True`."""
    import pandas as pd

    workspace = Path(workspace)
    if not os.environ.get("AUTORESEARCH_DB") and not (workspace / DB_PATH).exists():
        # Reading never creates: Store() would make an empty database here.
        raise AnalysisError(f"{workspace}: no {DB_PATH}: no session has run in this workspace")
    store = Store(workspace)
    rows: list[dict[str, Any]] = []
    categories: set[str] = set()
    for s in _sessions(store, session, campaign):
        target = (s.campaign or {}).get("objective", {}).get("target")
        for probe in store.probes(s.id):
            if probe.state != "finished":
                continue
            v = probe.verdict or {}
            scores = store.scores(probe.id)
            row: dict[str, Any] = {
                "session": s.id,
                "probe_id": probe.id,
                "kind": probe.kind,
                "lane": probe.lane,
                "change": format_changes(probe.changes or {}),
                "steps": probe.steps,
                "seed": probe.seed,
                "status": probe.status,
                "target": v.get("target") or target,
                "target_delta": v.get("target_delta"),
                "ci_low": v.get("ci_low"),
                "ci_high": v.get("ci_high"),
                "guard_ok": v.get("guard_ok"),
                "worst_guard": v.get("worst_guard"),
                "worst_guard_delta": v.get("worst_guard_delta"),
                "critical": sum(1 for score in scores if score.critical),
                "runtime_s": probe.runtime_s,
                "reused_from": probe.reused_from,
                "started_at": probe.started_at,
                "finished_at": probe.finished_at,
            }
            for category, mean in category_means([scores]).items():
                row[f"score_{category}"] = mean
                categories.add(category)
            for c in v.get("categories", []):
                row[f"delta_{c['category']}"] = c["delta"]
                categories.add(c["category"])
            rows.append(row)
    extra = [f"{kind}_{c}" for c in sorted(categories) for kind in ("score", "delta")]
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *extra])
    types: dict[str, Any] = {**COLUMNS, **dict.fromkeys(extra, "float64")}
    return frame.astype(types)

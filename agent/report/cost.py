"""The report's "Cost": what the session spent, per training and in total.

Time is the stored wall time of each training (`runtime_s`, process start to scores), split
into training and evaluation where the trainer recorded them (`train_runtime_s`,
`eval_runtime_s`); GPU-hours only where a trainer recorded `gpu_hours`. A training reused from
an earlier session cost nothing here and is listed as such. Agent and judge spend are the
report's own totals (`report_data`), shown beside these.
"""

from __future__ import annotations

from typing import Any

from agent.proposals import format_changes
from agent.store.store import Store


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def cost_summary(store: Store, session_id: str) -> dict[str, Any]:
    """Per training (in the order they ran) and totals; plain data for the template."""
    rows: list[dict[str, Any]] = []
    for p in sorted(store.probes(session_id), key=lambda p: p.seq):
        if p.state != "finished":
            continue
        metrics = p.metrics or {}
        rows.append(
            {
                "id": p.id,
                "kind": p.kind,
                "change": format_changes(p.changes or {}) if p.kind != "baseline" else "recipe",
                "status": p.status,
                "reused_from": p.reused_from,
                "seconds": None if p.reused_from else p.runtime_s,
                # A reused training's metrics are its original's: nothing was spent here.
                "train_s": None if p.reused_from else _number(metrics, "train_runtime_s"),
                "eval_s": None if p.reused_from else _number(metrics, "eval_runtime_s"),
                "gpu_hours": _number(metrics, "gpu_hours"),
            }
        )
    paid = [r for r in rows if not r["reused_from"]]
    by_kind: dict[str, float] = {}
    for r in paid:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0.0) + (r["seconds"] or 0.0)
    gpu = [r["gpu_hours"] for r in paid if r["gpu_hours"] is not None]
    return {
        "rows": rows,
        "trainings": len(paid),
        "reused": len(rows) - len(paid),
        "seconds": sum(r["seconds"] or 0.0 for r in paid),
        "by_kind": by_kind,
        "gpu_hours": sum(gpu) if gpu else None,
    }

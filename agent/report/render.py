"""SESSION_REPORT.md: a view of one session's records, rendered with Jinja2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.proposals import format_changes
from agent.store.store import Store
from agent.verdict import NoiseModel
from probes.durations import format_duration

TEMPLATE = "session_report.md.j2"
VERDICT_ORDER = ["keep", "candidate", "inconclusive", "discard", "guard_fail", "crash"]


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def report_data(store: Store, session_id: str) -> dict[str, Any]:
    """Everything the report shows, as plain data (also given to an LLM policy's narrative)."""
    session = store.get_session(session_id)
    if session is None:
        raise KeyError(session_id)
    campaign = session.campaign
    objective = campaign["objective"]
    categories = [objective["target"], *objective["guards"]]
    probes = store.probes(session_id)
    noise = NoiseModel.from_dict(session.noise) if session.noise else None

    baselines = [p for p in probes if p.kind == "baseline"]
    baseline_rows = []
    for p in baselines:
        scores = store.scores(p.id) if p.status == "baseline" else []
        means: dict[str, float] = {}
        for c in categories:
            vals = [s.score for s in scores if s.category == c]
            means[c] = sum(vals) / len(vals) if vals else float("nan")
        baseline_rows.append(
            {"id": p.id, "seed": p.seed, "status": p.status, "means": means, "error": p.error}
        )

    runs: list[dict[str, Any]] = []
    for p in probes:
        if p.kind == "baseline" or p.state != "finished":
            continue
        v = p.verdict or {}
        cats = {c["category"]: c for c in v.get("categories", [])}
        runs.append(
            {
                "id": p.id,
                "kind": p.kind,
                "lane": p.lane or "",
                "change": format_changes(p.changes or {}),
                "seed": p.seed,
                "status": p.status,
                "target_delta": v.get("target_delta"),
                "ci_low": v.get("ci_low"),
                "ci_high": v.get("ci_high"),
                "deltas": {c: cats[c]["delta"] if c in cats else None for c in categories},
                "reason": v.get("reason") or p.error or "",
                "hypothesis": p.hypothesis or "",
                "reading": p.reading or "",
                "parent": p.parent_id,
                "runtime_s": p.runtime_s,
                "error": p.error,
                "log_tail": p.log_tail or "",
                "changes": dict(p.changes or {}),
                "verdict": p.verdict,
            }
        )
    # Findings read the probes in the order they ran; the table shows them by target delta.
    findings = _findings(runs, campaign)
    runs.sort(key=lambda r: (r["target_delta"] is None, -(r["target_delta"] or 0.0)))
    kept = [r for r in runs if r["status"] == "keep"]
    candidates = [r for r in runs if r["status"] == "candidate"]
    confirmed_parents = {r["parent"] for r in runs if r["kind"] == "confirm"}
    unconfirmed = [r for r in candidates if r["id"] not in confirmed_parents]
    failures = [r for r in runs if r["status"] in ("crash", "guard_fail")]
    failures += [
        {
            "id": b["id"],
            "kind": "baseline",
            "change": "recipe",
            "status": b["status"],
            "reason": b["error"] or "",
            "log_tail": "",
        }
        for b in baseline_rows
        if b["status"] == "crash"
    ]
    decisions = store.decisions(session_id)
    cost = sum(d.cost_usd for d in decisions)
    judge_cost = sum((p.metrics or {}).get("judge_cost_usd", 0.0) for p in probes)
    tokens_in = sum(d.input_tokens for d in decisions)
    tokens_out = sum(d.output_tokens for d in decisions)
    fallbacks = [d for d in decisions if "fallback" in d.policy]
    rejected = [d for d in decisions if not d.accepted]
    counts = {s: sum(1 for r in runs if r["status"] == s) for s in VERDICT_ORDER}

    lanes: dict[str, dict[str, Any]] = {}
    for lane in campaign["lanes"]:
        lane_runs = [r for r in runs if r["lane"] == lane and r["kind"] == "probe"]
        best = max(
            (r for r in lane_runs if r["target_delta"] is not None),
            key=lambda r: r["target_delta"],
            default=None,
        )
        lanes[lane] = {
            "tried": len(lane_runs),
            "kept": sum(1 for r in runs if r["lane"] == lane and r["status"] == "keep"),
            "best": best,
        }

    if kept:
        best = max(kept, key=lambda r: r["target_delta"] or 0.0)
        conclusion = (
            f"Finding: {best['change']} improves {objective['target']} by "
            f"{_fmt(best['target_delta'], True)} (interval {_fmt(best['ci_low'], True)} to "
            f"{_fmt(best['ci_high'], True)}) over the same-step baseline, confirmed with a fresh "
            "seed, with no guard regressing beyond its tolerance."
        )
    else:
        promising = [
            r for r in runs if r["status"] == "inconclusive" and (r["ci_low"] or 0.0) > 0.0
        ]
        if promising or unconfirmed:
            shown = ", ".join(
                f"`{r['change']}` ({_fmt(r['target_delta'], True)} "
                f"[{_fmt(r['ci_low'], True)}, {_fmt(r['ci_high'], True)}], {r['status']})"
                for r in [*unconfirmed, *promising]
            )
            conclusion = (
                f"No confirmed finding yet. Promising and worth a replay or a larger budget: "
                f"{shown} — each improved {objective['target']} on this run, but not beyond "
                "the measured noise and a confirmation with a fresh seed."
            )
        else:
            conclusion = (
                "Clean negative result: no change tried improved "
                f"{objective['target']} beyond the measured noise without a guard regressing."
            )
            one_sided = [f["knob"] for f in findings if f.get("classification") == "one-sided"]
            if one_sided:
                conclusion += (
                    f" This says nothing of the directions not tried: {', '.join(one_sided)} "
                    "moved one way only (see Sensitivities)."
                )
            else:
                conclusion += " The recipe stands at or near its optimum for the knobs tried."
    elapsed = session.seconds_used or 0.0
    return {
        "session": {
            "id": session.id,
            "status": session.status,
            "policy": session.policy,
            "started_at": session.started_at.strftime("%Y-%m-%d %H:%M"),
            "elapsed": format_duration(elapsed),
            "budget": (
                f"{session.budget_runs} trainings"
                if session.budget_runs is not None
                else format_duration(session.budget_seconds or 0)
            ),
            "runs_used": store.runs_used(session_id),
            "error": session.error,
            "conclusion_note": session.conclusion,
        },
        "objective": objective,
        "probe": campaign["probe"],
        "categories": categories,
        "baselines": baseline_rows,
        "noise": noise.to_dict() if noise else None,
        "seed_spread": {c: noise.seed_spread(c) for c in categories} if noise else {},
        "mde": session.mde,
        "runs": runs,
        "kept": kept,
        "unconfirmed": unconfirmed,
        "failures": failures,
        "counts": counts,
        "lanes": lanes,
        "findings": findings,
        "conclusion": conclusion,
        "cost_usd": cost,
        "judge_cost_usd": judge_cost,
        "tokens": {"input": tokens_in, "output": tokens_out},
        "fallbacks": len(fallbacks),
        "rejected": [
            {"policy": d.policy, "reason": d.reject_reason, "proposal": d.proposal}
            for d in rejected
        ],
        "narrative": session.narrative,
    }


def _findings(runs: list[dict[str, Any]], campaign: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-knob sensitivities (agent/findings.py), as plain rows for the template."""
    from agent.findings import knob_findings_from_report_runs

    return knob_findings_from_report_runs(runs, campaign)


def render_report(data: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _fmt
    env.filters["signed"] = lambda v: _fmt(v, True)
    return env.get_template(TEMPLATE).render(**data)


def write_report(store: Store, session_id: str) -> tuple[Path, Path]:
    """Write SESSION_REPORT.md in the workspace and its archive copy under docs/sessions/."""
    data = report_data(store, session_id)
    text = render_report(data)
    path = store.workspace / "SESSION_REPORT.md"
    path.write_text(text, encoding="utf-8")
    archive = store.workspace / "docs" / "sessions" / f"SESSION_REPORT_{session_id}.md"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text(text, encoding="utf-8")
    return path, archive

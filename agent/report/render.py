"""SESSION_REPORT.md: a view of one session's records, rendered with Jinja2."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.proposals import format_changes
from agent.stats import SESSION_ALPHA, PowerReport
from agent.store.store import Store
from agent.verdict import NoiseModel
from probes.durations import format_duration
from probes.redaction import environment_secrets, redact
from probes.textfiles import write_text_whole

TEMPLATE = "session_report.md.j2"
VERDICT_ORDER = ["keep", "candidate", "inconclusive", "discard", "guard_fail", "crash"]


def _fmt(value: float | None, signed: bool = False) -> str:
    """Two decimals; never "-0.00" (a value that rounds to zero prints as 0.00 / +0.00)."""
    if value is None:
        return "—"
    if value != value:  # NaN
        return "nan"
    r = round(value, 2)
    r = r if r != 0 else 0.0
    return f"{r:+.2f}" if signed else f"{r:.2f}"


_NEGATIVE_ZERO = re.compile(r"-(0\.0+)(?![0-9])")


def _duration(seconds: float | None) -> str:
    """A time as the report shows it: tenths of a second under a minute, "—" when unknown."""
    if seconds is None:
        return "—"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def no_negative_zero(text: str) -> str:
    """Verdict reasons format with "+.2f": a delta that rounds to zero reads +0.00."""
    return _NEGATIVE_ZERO.sub(r"+\1", text)


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
                "reason": no_negative_zero(v.get("reason") or p.error or ""),
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
    power, recomputed = _power(session, noise)
    forced = bool(getattr(session, "forced", False))
    # Findings read the probes in the order they ran; the table shows them by target delta.
    findings_all = _findings(runs, campaign, power)
    findings = [k.to_dict() for k in findings_all.knobs]
    untried = _untried(runs, campaign)
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
    reproductions = _reproductions(store, runs, objective["target"])
    decisions = store.decisions(session_id)
    cost = sum(d.cost_usd for d in decisions)
    # A reused training's metrics are its original session's: its judge was paid there.
    judge_cost = sum(
        (p.metrics or {}).get("judge_cost_usd", 0.0) for p in probes if not p.reused_from
    )
    tokens_in = sum(d.input_tokens for d in decisions)
    tokens_out = sum(d.output_tokens for d in decisions)
    fallbacks = [d for d in decisions if "fallback" in d.policy]
    rejected = [d for d in decisions if not d.accepted]
    counts = {s: sum(1 for r in runs if r["status"] == s) for s in VERDICT_ORDER}

    lanes: dict[str, dict[str, Any]] = {}
    for lane in campaign["lanes"]:
        lane_runs = [r for r in runs if r["lane"] == lane and r["kind"] == "probe"]
        lane_kept = [r for r in runs if r["lane"] == lane and r["status"] == "keep"]
        best = max(
            (r for r in lane_kept or lane_runs if r["target_delta"] is not None),
            key=lambda r: r["target_delta"],
            default=None,
        )
        lanes[lane] = {
            "tried": len(lane_runs),
            "kept": sum(1 for r in runs if r["lane"] == lane and r["status"] == "keep"),
            "best": best,
        }

    promising = [r for r in runs if r["status"] == "inconclusive" and (r["ci_low"] or 0.0) > 0.0]
    conclusion = conclusion_text(
        status=session.status,
        error=session.error,
        objective=objective,
        noise_measured=noise is not None,
        baselines=baseline_rows,
        power=power,
        forced=forced,
        kept=kept,
        unconfirmed=unconfirmed,
        promising=promising,
        untried=untried,
    )
    elapsed = session.seconds_used or 0.0
    trainer = campaign.get("trainer") or {}
    if trainer.get("kind") == "trl":
        trainer_text = (
            f"trl {trainer.get('objective', 'sft')} on {trainer.get('model')} "
            f"(dtype {trainer.get('dtype', 'auto')}, data {trainer.get('data')})"
        )
    else:
        trainer_text = (
            f"{trainer.get('kind', 'command')}: {' '.join(map(str, trainer.get('argv') or []))}"
        )
    tldr = tldr_lines(
        runs,
        objective,
        power,
        f"{store.runs_used(session_id)} trainings in {format_duration(elapsed)}",
    )
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
        "trainer": trainer_text,
        "probe": campaign["probe"],
        "categories": categories,
        "baselines": baseline_rows,
        "noise": noise.to_dict() if noise else None,
        "seed_spread": {c: noise.seed_spread(c) for c in categories} if noise else {},
        "mde": power.mde if power is not None else session.mde,
        "power": power.to_dict() if power is not None else None,
        "power_recomputed": recomputed,
        "forced": forced,
        "guarantee": guarantee_text(power),
        "resolution": resolution_text(power, objective),
        "tolerances": _tolerances(power, objective),
        "finding_level": findings_all.level,
        "session_alpha": power.session_alpha if power is not None else SESSION_ALPHA,
        "judged": findings_all.judged,
        "untried": untried,
        "runs": runs,
        "kept": kept,
        "reproductions": reproductions,
        "unconfirmed": unconfirmed,
        "failures": failures,
        "counts": counts,
        "lanes": lanes,
        "findings": findings,
        "conclusion": conclusion,
        "tldr": tldr,
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


def tldr_lines(
    runs: list[dict[str, Any]], objective: dict[str, Any], power: PowerReport | None, spent: str
) -> list[str]:
    """Three lines: what was kept, what was refused (and why), what the session could resolve
    and what it spent. Each states only what the numbers beside it in the report show."""
    from agent.findings import signed

    target = objective["target"]
    keeps = [r for r in runs if r["status"] == "keep" and r["target_delta"] is not None]
    if keeps:
        kept = "; ".join(
            f"`{r['change']}`: {target} {signed(r['target_delta'])} "
            f"[{signed(r['ci_low'])}, {signed(r['ci_high'])}]"
            for r in sorted(keeps, key=lambda r: -r["target_delta"])
        )
        first = f"**Kept:** {kept}, each confirmed on a fresh seed judged alone."
    else:
        first = "**Kept:** nothing."
    refused = []
    for r in runs:
        if r["status"] != "guard_fail":
            continue
        v = r["verdict"] or {}
        by_name = {c["category"]: c for c in v.get("categories", [])}
        why = [
            f"{g} {signed(by_name[g]['delta'])}, shown below {signed(by_name[g]['threshold'])}"
            for g in v.get("regressed_guards", [])
            if g in by_name and by_name[g].get("threshold") is not None
        ]
        if not why and v.get("new_critical", 0.0) >= 1.0:
            why = [f"{v['new_critical']:.1f} more critically failing prompts per run"]
        refused.append(f"`{r['change']}` ({'; '.join(why) or 'see below'})")
    crashed = sum(1 for r in runs if r["status"] == "crash")
    second = "**Refused:** " + (
        "; ".join(refused) if refused else "nothing: no guard was shown to regress"
    )
    if crashed:
        second += f"; {crashed} training(s) crashed"
    second += "."
    if power is not None:
        third = (
            f"**Resolution:** {target} effects of {power.mde:.2f} and above are kept with 80% "
            f"power (min_improvement {power.min_improvement:.2f}); {spent}."
        )
    else:
        third = f"**Resolution:** not measured (no baseline noise); {spent}."
    return [first, second, third]


def _reproductions(store: Store, runs: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Each confirmation and replay beside the run it repeats: both runs' own target delta
    against the baseline (a replay's verdict pools the two runs; this table does not)."""
    from agent.compare import CompareError, compare

    def own_delta(probe_id: str) -> float | None:
        row = store.get_probe(probe_id)
        if row is None:
            return None
        try:
            comparison = compare(store, None, row, top=0)
        except CompareError:
            return None
        return next((d for c, _, _, d, _ in comparison.categories if c == target), None)

    out = []
    for r in runs:
        if r["kind"] not in ("confirm", "replay") or not r["parent"]:
            continue
        first, again = own_delta(r["parent"]), own_delta(r["id"])
        if first is None or again is None:
            continue
        out.append({"id": r["id"], "parent": r["parent"], "change": r["change"],
                    "kind": r["kind"], "first": first, "again": again,
                    "difference": again - first, "status": r["status"]})  # fmt: skip
    return sorted(out, key=lambda row: str(row["id"]))


def _findings(
    runs: list[dict[str, Any]], campaign: dict[str, Any], power: PowerReport | None
) -> Any:
    """Per-knob sensitivities (agent/findings.py)."""
    from agent.findings import findings_from_report_runs

    return findings_from_report_runs(runs, campaign, power=power)


def _untried(runs: list[dict[str, Any]], campaign: dict[str, Any]) -> list[str]:
    """Every move of a declared knob that no single-knob probe judged."""
    from agent.findings import records_from_report_runs, untried_moves

    records = records_from_report_runs(runs, str(campaign["objective"]["target"]))
    missing = untried_moves(records, campaign.get("recipe", {}), campaign.get("lanes", {}))
    return [move for moves in missing.values() for move in moves]


def _power(session: Any, noise: NoiseModel | None) -> tuple[PowerReport | None, bool]:
    """The session's stored power report, or (for a session recorded before it was stored)
    one recomputed from its baseline noise; (report, recomputed)."""
    stored = getattr(session, "power", None)
    if stored:
        return PowerReport.from_dict(stored), False
    if noise is None:
        return None, False
    from agent.campaign import Objective
    from agent.stats import max_confirmations, power_report

    try:
        objective = Objective.model_validate(session.campaign["objective"])
        seeds = int(session.campaign["probe"]["baseline_seeds"])
    except (KeyError, TypeError, ValueError):
        return None, False
    most = max_confirmations(session.budget_runs, seeds)
    return power_report(noise, objective, max_confirmations=most), True


def _tolerance(objective: dict[str, Any], guard: str) -> float:
    tol: Any = objective.get("guard_tolerance", 0.5)
    if isinstance(tol, dict):
        tol = tol.get(guard, tol.get("default", 0.5))
    return float(tol)


def _tolerances(power: PowerReport | None, objective: dict[str, Any]) -> list[dict[str, Any]]:
    """Per guard: its tolerance and the one an unchanged guard needs to pass at 80% power."""
    needed = power.guard_tolerance_needed if power is not None else {}
    return [
        {"guard": g, "tolerance": _tolerance(objective, g), "needed": needed.get(g)}
        for g in objective.get("guards", [])
    ]


def guarantee_text(power: PowerReport | None) -> str:
    """The session's error guarantee, from its power report."""
    if power is None:
        return "No baseline was measured, so no change could be kept."
    if power.max_confirmations is None:
        budget = (
            "a wall-clock budget sets no cap: the j-th confirmation is tested at "
            f"{power.session_alpha:.0%} / 2^j"
        )
    else:
        n = power.max_confirmations
        budget = f"budget allows {n} confirmation{'s' if n != 1 else ''}"
    return (
        f"At most {power.session_alpha:.0%} chance that this session kept any change that does "
        f"nothing (each confirmation tested at its alpha-spending level; {budget})."
    )


def resolution_text(power: PowerReport | None, objective: dict[str, Any]) -> str:
    """What the session resolves: the target MDE, and each guard's tolerance vs the needed."""
    if power is None:
        return "No power estimate: what this session could resolve is unknown."
    target = power.target
    if power.mde == float("inf"):
        text = f"This session cannot resolve {target} effects of any size"
    else:
        text = (
            f"This session resolves {target} effects of {_fmt(power.mde)} and above (kept "
            f"with 80% power at the first confirmation's level; min_improvement "
            f"{_fmt(power.min_improvement)})"
        )
    guards = [
        f"{t['guard']} needs {_fmt(t['needed'])} (has {_fmt(t['tolerance'])})"
        for t in _tolerances(power, objective)
        if t["needed"] is not None
    ]
    if guards:
        text += "; guard tolerance an unchanged guard passes with 80% power: " + ", ".join(guards)
    return text + "."


def _why_nothing_measured(baselines: list[dict[str, Any]], error: str | None) -> str:
    crashed = [b for b in baselines if b["status"] == "crash"]
    errors = [str(b["error"] or "") for b in crashed]
    if baselines and len(crashed) == len(baselines):
        if all("timed out" in e for e in errors):
            why = f"every baseline training timed out ({errors[-1]})"
        else:
            why = f"every baseline training crashed (last: {errors[-1] or 'no error recorded'})"
    elif crashed:
        why = f"{len(crashed)} of {len(baselines)} baseline trainings crashed"
    elif not baselines:
        why = "no baseline training ran"
    else:
        why = "the baseline was not finished"
    if error and error not in why:
        why += f"; the session stopped: {error}"
    return why


def _moves(items: list[str]) -> str:
    return ", ".join(items)


def conclusion_text(
    *,
    status: str,
    error: str | None,
    objective: dict[str, Any],
    noise_measured: bool,
    baselines: list[dict[str, Any]],
    power: PowerReport | None,
    forced: bool,
    kept: list[dict[str, Any]],
    unconfirmed: list[dict[str, Any]],
    promising: list[dict[str, Any]],
    untried: list[str],
) -> str:
    """The report's TL;DR: what the session found, and what it could and could not resolve.

    "Clean negative" only when the session could see min_improvement (its power report names
    nothing underpowered), tried every knob every way (numeric up and down, every choice),
    kept nothing and left no candidate unconfirmed.
    """
    target = objective["target"]
    if not noise_measured:
        return (
            f"This session measured nothing: {_why_nothing_measured(baselines, error)}. "
            "Without a measured baseline no change was judged; this is not a negative result."
        )
    resolves = resolution_text(power, objective)
    reasons = "; ".join(power.underpowered) if power is not None else ""
    if status == "underpowered":
        fixes = "; ".join(power.fixes) if power is not None else ""
        text = (
            "Stopped after the baseline as underpowered: this campaign cannot resolve what it "
            f"asks ({reasons or error or 'see the power report'}), so no probe was trained."
        )
        if fixes:
            text += f" Any one of these would fix it: {fixes}."
        return f"{text} {resolves}"
    parts: list[str] = []
    if forced and reasons:
        parts.append(
            "This session ran past the power gate (--force): it could not resolve what it "
            f"asks ({reasons})."
        )
    if kept:
        first, *others = sorted(kept, key=lambda r: -(r["target_delta"] or 0.0))
        for i, r in enumerate([first, *others]):
            v = r.get("verdict") or {}
            alpha = v.get("alpha")
            level = f" at one-sided {alpha:.3g}" if alpha else ""
            lead = "Finding:" if i == 0 else "Also kept:"
            parts.append(
                f"{lead} {r['change']} improves {target} by {_fmt(r['target_delta'], True)} "
                f"[{_fmt(r['ci_low'], True)}, {_fmt(r['ci_high'], True)}] on an independent "
                f"fresh-seed confirmation (judged alone{level}), with every guard shown "
                "within its tolerance."
            )
        parts.append(resolves)
        return " ".join(parts)
    if promising or unconfirmed:
        shown = ", ".join(
            f"`{r['change']}` ({_fmt(r['target_delta'], True)} "
            f"[{_fmt(r['ci_low'], True)}, {_fmt(r['ci_high'], True)}], {r['status']})"
            for r in [*unconfirmed, *promising]
        )
        parts.append(
            f"No confirmed finding yet. Promising and worth a replay or a larger budget: "
            f"{shown} — each improved {target} on its run (interval above zero), but none "
            "was kept: a keep needs a fresh-seed confirmation that clears min_improvement with "
            "every guard shown within its tolerance."
        )
    elif power is not None and not power.underpowered and not untried:
        parts.append(
            "Clean negative result: no change was kept, none is left unconfirmed, the session "
            "was powered for what it asks (its power report names nothing underpowered), and "
            "it tried every knob both ways (every choice of the categorical ones)."
        )
    else:
        parts.append("No change was kept.")
    parts.append(resolves)
    gaps = []
    if reasons and not (forced and reasons):
        gaps.append(f"it could not resolve what it asks ({reasons})")
    if untried:
        gaps.append(f"not tried: {_moves(untried)}")
    if gaps:
        parts.append(f"So this is not a clean negative: {'; '.join(gaps)}.")
    return " ".join(parts)


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
    env.filters["duration"] = _duration
    return env.get_template(TEMPLATE).render(**data)


def report_archive_path(workspace: Path, session_id: str) -> Path:
    """The session's own copy of its report (SESSION_REPORT.md holds only the latest)."""
    return workspace / "docs" / "sessions" / f"SESSION_REPORT_{session_id}.md"


PLOT_CAPTIONS = {
    "heatmap.png": ("Δ per category", "every training against the baseline; hatched, grey "
                    "numbers: the interval includes 0"),
    "forest.png": ("Target Δ with intervals", "dashed: min_improvement; shaded: effects "
                   "below the MDE, kept with less than 80% power"),
    "loss.png": ("Training loss", "each probe against the baseline seeds (grey)"),
    "progress.png": ("Progress", "the best confirmed target Δ against the trainings spent"),
}  # fmt: skip


def plots_folder(workspace: Path, session_id: str) -> Path:
    """Where a session's plots are drawn: beside its archived report."""
    return workspace / "docs" / "sessions" / f"{session_id}-plots"


def report_texts(store: Store, session_id: str) -> tuple[str, str]:
    """(SESSION_REPORT.md's text, its archive copy's): one report, the plots (drawn here)
    linked relative to each file. A plot that fails costs the report nothing: it says so."""
    from agent.report.plots import write_plots

    data = report_data(store, session_id)
    folder = plots_folder(store.workspace, session_id)
    error = None
    try:
        names = write_plots(store, session_id, data, folder)
    except Exception as exc:  # matplotlib, a font, a full disk: never the report
        names, error = [], redact(f"{type(exc).__name__}: {exc}", environment_secrets())

    from agent.report.health import evaluation_health

    try:
        health: dict[str, Any] | None = evaluation_health(
            store, session_id, data["runs"], data["categories"]
        )
    except Exception:  # the section is a reading aid: its failure costs the report nothing
        health = None
    from agent.report.cost import cost_summary

    data = {**data, "health": health, "cost": cost_summary(store, session_id)}

    def links(prefix: str) -> list[dict[str, str]]:
        return [
            {"path": prefix + name, "title": PLOT_CAPTIONS[name][0], "what": PLOT_CAPTIONS[name][1]}
            for name in names
        ]

    root = render_report(
        {**data, "plots": links(f"docs/sessions/{folder.name}/"), "plot_error": error}
    )
    archive = render_report({**data, "plots": links(f"{folder.name}/"), "plot_error": error})
    return root, archive


def write_report(store: Store, session_id: str) -> tuple[Path, Path]:
    """Write SESSION_REPORT.md in the workspace, its archive copy under docs/sessions/ and
    the plots beside the archive copy."""
    root, archived = report_texts(store, session_id)
    path = store.workspace / "SESSION_REPORT.md"
    write_text_whole(path, root)
    # The archive copy last: `resume` takes its absence to mean the report is not written.
    archive = report_archive_path(store.workspace, session_id)
    archive.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(archive, archived)
    return path, archive


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2328; line-height: 1.5; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f6f8fa; }
code { background: #f6f8fa; padding: 0.1rem 0.3rem; border-radius: 4px; }
img { max-width: 100%; border: 1px solid #d0d7de; }
"""


def html_report(markdown_text: str, base: Path, title: str) -> str:
    """The report as one self-contained HTML page: its markdown rendered (CommonMark and
    tables, raw HTML in the text escaped), every image inlined as a data: URI read from
    `base`, no external reference. An image that cannot be read is replaced by its alt text."""
    import base64
    import html

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def inline(match: re.Match[str]) -> str:
        src, alt = html.unescape(match.group(1)), match.group(2)
        path = (base / src).resolve()
        if not src.startswith(("http:", "https:", "//", "data:")) and path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return f'<img src="data:image/png;base64,{data}" alt="{alt}">'
        return f"<em>[{alt}: image not available]</em>"

    body = re.sub(r'<img src="([^"]*)" alt="([^"]*)"[^>]*>', inline, body)
    # Links out of the page would be external references: keep their text only.
    body = re.sub(r'<a href="(?!#)[^"]*">(.*?)</a>', r"\1", body, flags=re.S)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{HTML_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def write_html_report(store: Store, session_id: str) -> Path:
    """SESSION_REPORT.html beside SESSION_REPORT.md: the same report, plots inlined."""
    root, _archive = report_texts(store, session_id)
    path = store.workspace / "SESSION_REPORT.html"
    write_text_whole(path, html_report(root, store.workspace, f"Session report — {session_id}"))
    return path

"""Rendering a session for a language model: objective, search space, history, lanes, budget.

Pure functions, no API calls. Two kinds of text are kept apart:

* **Authoritative** text is rendered from the campaign and the loop's own numbers (objective,
  thresholds, search space, budget, noise). It sits outside any data block.
* **Recorded** text — hypotheses, readings and rationales written by a model earlier, reasons
  quoting proposals, anything derived from training data or model outputs — is only ever put
  inside one `<session_data>` block, sanitized so it cannot close that block or pose as
  markup. The system prompt says that block holds data, never instructions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from agent.campaign import Campaign, Knob
from agent.policies.base import Budget, ProbeRecord
from agent.proposals import format_changes
from agent.verdict import NoiseModel, Verdict

DATA_TAG = "session_data"
WIN_STATUSES = ("keep", "candidate")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TAG = re.compile(r"<\s*/?\s*[A-Za-z_][\w\-]*")


def sanitize(text: Any, limit: int = 300) -> str:
    """Recorded text made safe for a data block: one line, no control characters, no
    markup-like tags (so it cannot close the block), at most `limit` characters."""
    s = "" if text is None else str(text)
    s = _CONTROL.sub(" ", s)
    s = " ".join(s.split())
    s = _TAG.sub(lambda m: m.group(0).replace("<", "‹"), s)
    s = s.replace("|", "/")  # keeps markdown table cells intact
    if len(s) > limit:
        s = s[: limit - 1].rstrip() + "…"
    return s


def data_block(body: str) -> str:
    """Wrap recorded text in the one data block (its content must already be sanitized)."""
    closing = re.compile(rf"<\s*/?\s*{DATA_TAG}", re.IGNORECASE)
    body = closing.sub(lambda m: m.group(0).replace("<", "‹"), body)
    return f"<{DATA_TAG}>\n{body}\n</{DATA_TAG}>"


def _num(x: float | None, signed: bool = True) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _span(delta: float | None, low: float | None, high: float | None) -> str:
    if delta is None:
        return "—"
    if low is None or high is None:
        return _num(delta)
    return f"{_num(delta)} [{_num(low)}, {_num(high)}]"


# ---------------------------------------------------------------------------------------------
# Stable parts (system prompt)
# ---------------------------------------------------------------------------------------------


def objective_text(campaign: Campaign) -> str:
    """The objective and thresholds, read-only to the model."""
    o = campaign.objective
    direction = "higher is better" if o.higher_is_better else "lower is better"
    lines = [
        f"- Target category: {o.target} (scores: {direction}; deltas below are oriented so "
        "positive is always better).",
        f"- A change is kept only when the target's confidence interval clears "
        f"{o.min_improvement:g} and the baseline's seed-to-seed noise, and it is then confirmed "
        "by a replay with a fresh seed.",
    ]
    if o.guards:
        tol = ", ".join(f"{g} (may drop at most {o.tolerance_for(g):g})" for g in o.guards)
        lines.append(f"- Guard categories: {tol}.")
    else:
        lines.append("- No guard categories.")
    if o.critical_below is not None:
        lines.append(
            f"- A per-prompt score {'below' if o.higher_is_better else 'above'} "
            f"{o.critical_below:g} is a critical failure; new critical failures fail a "
            "probe."
        )
    lines.append(
        f"- Every probe trains {campaign.probe.steps} steps and is compared with a "
        "baseline trained for the same steps, never with production numbers."
    )
    return "\n".join(lines)


def knob_line(name: str, knob: Knob, recipe_value: Any) -> str:
    return f"  - {name}: {knob.describe()}; recipe value {recipe_value!r}"


def search_space_text(campaign: Campaign) -> str:
    """The knobs by lane, with ranges and the recipe's values."""
    lines = []
    for lane, knobs in campaign.lanes.items():
        lines.append(f"- lane `{lane}`:")
        for name, knob in knobs.items():
            if name in campaign.protected:
                continue
            lines.append(knob_line(name, knob, campaign.recipe.get(name)))
    if campaign.protected:
        lines.append(f"- protected (never change): {', '.join(sorted(campaign.protected))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Per-turn parts
# ---------------------------------------------------------------------------------------------


def budget_text(budget: Budget) -> str:
    parts = []
    if budget.runs_total is not None:
        parts.append(
            f"{budget.runs_left} of {budget.runs_total} probe runs left ({budget.runs_used} used)"
        )
    else:
        parts.append(f"{budget.runs_used} probe runs used (no run limit)")
    if budget.seconds_total is not None and budget.seconds_left is not None:
        parts.append(
            f"{budget.seconds_left / 60:.0f} of {budget.seconds_total / 60:.0f} minutes left"
        )
    return "; ".join(parts)


def noise_text(campaign: Campaign, noise: NoiseModel | None, mde: float | None) -> str:
    lines = []
    if noise is not None and noise.seed_sd:
        cats = campaign.objective.categories
        shown = ", ".join(f"{c} {noise.seed_spread(c):.2f}" for c in cats if c in noise.seed_sd)
        lines.append(
            f"- Baseline seed-to-seed spread (sd of category means over "
            f"{noise.seeds} seeds): {shown or 'not measured'}."
        )
    else:
        lines.append("- Baseline noise: not measured yet.")
    if mde is not None:
        lines.append(
            f"- Smallest target effect this prompt set can detect (MDE): {mde:.2f}. "
            "Effects smaller than this will read as inconclusive."
        )
    return "\n".join(lines)


def _verdict_cells(v: Verdict | None, campaign: Campaign) -> tuple[str, str]:
    if v is None:
        return "—", "—"
    target = _span(v.target_delta, v.ci_low, v.ci_high)
    guards = []
    for g in campaign.objective.guards:
        c = v.category(g)
        if c is not None:
            guards.append(f"{g} {_span(c.delta, c.ci_low, c.ci_high)}")
    if v.new_critical:
        guards.append(f"new critical {v.new_critical:.1f}")
    return target, "; ".join(guards) or "—"


def history_table(history: Sequence[ProbeRecord], campaign: Campaign) -> str:
    """The probes so far as a compact markdown table (recorded text sanitized)."""
    if not history:
        return "No probes yet."
    target = campaign.objective.target
    rows = [
        f"| probe | kind | lane | change | {target} Δ [CI] | guards Δ [CI] | verdict | "
        "hypothesis | reading |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in history:
        t, g = _verdict_cells(r.verdict, campaign)
        change = format_changes(r.changes) if r.kind != "baseline" else "recipe (baseline)"
        if r.parent_id:
            change += f" (of {r.parent_id})"
        rows.append(
            "| "
            + " | ".join(
                [
                    sanitize(r.probe_id, 60),
                    sanitize(r.kind, 20),
                    sanitize(r.lane or "—", 40),
                    sanitize(change, 120),
                    t,
                    g,
                    sanitize(r.status, 20),
                    sanitize(r.hypothesis, 160),
                    sanitize(r.reading or "", 160),
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def record_detail(record: ProbeRecord, campaign: Campaign) -> str:
    """One probe in full: every category, the verdict's reason (for readings)."""
    lines = [
        f"probe {sanitize(record.probe_id, 60)} ({sanitize(record.kind, 20)}), lane "
        f"{sanitize(record.lane or '—', 40)}, change "
        f"{sanitize(format_changes(record.changes), 200)}, seed {record.seed}",
        f"hypothesis: {sanitize(record.hypothesis)}",
        f"verdict: {sanitize(record.status, 20)}",
    ]
    v = record.verdict
    if v is not None:
        lines.append(f"reason: {sanitize(v.reason, 400)}")
        for c in v.categories:
            lines.append(
                f"- {sanitize(c.category, 60)} ({c.role}): baseline "
                f"{c.baseline_mean:.2f} → probe {c.probe_mean:.2f}, delta "
                f"{_span(c.delta, c.ci_low, c.ci_high)} over {c.n_prompts} prompts"
            )
    return "\n".join(lines)


def lane_status(campaign: Campaign, history: Sequence[ProbeRecord], plateau: int = 3) -> list[str]:
    """One line per lane: probes run, best target delta, wins, whether it has stalled."""
    lines = []
    probes = [r for r in history if r.kind == "probe"]
    for lane in campaign.lanes:
        mine = [r for r in probes if r.lane == lane]
        scored = [
            (r.verdict.target_delta, i, r)
            for i, r in enumerate(mine)
            if r.verdict is not None and r.verdict.target_delta is not None
        ]
        best = max(scored)[2] if scored else None
        wins = [r.probe_id for r in mine if r.status in WIN_STATUSES]
        since = 0
        for r in reversed(mine):
            if r.status in WIN_STATUSES:
                break
            since += 1
        parts = [f"{len(mine)} probe(s)"]
        if best is not None and best.verdict is not None:
            parts.append(
                f"best {target_delta_text(best.verdict)} "
                f"({sanitize(format_changes(best.changes), 80)})"
            )
        if wins:
            parts.append(f"wins {', '.join(sanitize(w, 60) for w in wins)}")
        if mine and since >= plateau:
            parts.append(f"STALLED ({since} probes in a row without a win: switch lanes)")
        lines.append(f"- {lane}: " + "; ".join(parts))
    return lines


def target_delta_text(v: Verdict) -> str:
    return _span(v.target_delta, v.ci_low, v.ci_high)


def wins(history: Iterable[ProbeRecord]) -> list[ProbeRecord]:
    """Probes whose verdict is keep or candidate, in order."""
    return [r for r in history if r.kind == "probe" and r.status in WIN_STATUSES]


def combination_hint(
    campaign: Campaign, history: Sequence[ProbeRecord], budget: Budget
) -> str | None:
    """Near the end of the budget, the separately confirmed wins that could be combined."""
    if budget.runs_total is None or budget.runs_left is None:
        return None
    if budget.runs_left > max(2, budget.runs_total // 4):
        return None
    # `keep` sits on the confirmation rows (the candidate's own row says `candidate`).
    from agent.proposals import COMBINATION_LANE, confirmed_changes

    knobs = confirmed_changes(history)
    if len(knobs) < 2:
        return None
    return (
        "The budget is nearly spent. You may propose one combination of the separately "
        f"confirmed wins with lane {COMBINATION_LANE!r}: {format_changes(knobs)} "
        "(any subset of two or more of them)."
    )


def to_json(data: Any, limit: int = 60000) -> str:
    """Report data as JSON for a data block, truncated to `limit` characters."""
    text = json.dumps(data, default=str, indent=1, sort_keys=True)
    if len(text) > limit:
        text = text[:limit] + "\n… (truncated)"
    return text

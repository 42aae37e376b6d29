"""`autoresearch compare A B`: two trainings side by side, per category and per prompt.

A and B are probes (ids or unique prefixes), or `baseline` for the baseline of the other
one's session (its seeds' per-prompt means). Deltas are B − A, oriented so that positive
means B is better (`higher_is_better` of the campaign B was measured in). The prompts that
moved most come with both generations (outputs.jsonl in each run folder, when the trainer
wrote one) so a person can read what changed.

This is a description of two runs, not a verdict: the session's verdicts (against the
baseline's noise) are `show`'s and the report's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.stats import average_prompt_means, means_by_category, run_prompt_means
from agent.store.store import Store
from agent.store.tables import ProbeRow
from probes.spec import EvalPrompt, load_prompts

BASELINE = "baseline"


class CompareError(ValueError):
    """The two sides cannot be compared; the message says why."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its label, per-prompt means and generations."""

    label: str
    prompt_means: dict[tuple[str, str], float]
    outputs: dict[str, str]  # prompt id -> the first repeat's generation
    session_id: str
    eval_prompts: str | None


@dataclass(frozen=True)
class PromptMove:
    category: str
    prompt_id: str
    a: float
    b: float
    delta: float  # oriented: positive is better for B
    prompt: str
    reference: str | None
    output_a: str | None
    output_b: str | None


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    categories: list[tuple[str, float, float, float, int]]  # category, A, B, Δ, prompts
    moved: list[PromptMove]  # largest |Δ| first
    notes: list[str]


def read_outputs(run_dir: str | None) -> dict[str, str]:
    """prompt id -> the first repeat's generation, from the run's outputs.jsonl ({} if none)."""
    if not run_dir:
        return {}
    path = Path(run_dir) / "outputs.jsonl"
    out: dict[str, tuple[int, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or "prompt_id" not in row:
            continue
        repeat = int(row.get("repeat", 0) or 0)
        pid = str(row["prompt_id"])
        if pid not in out or repeat < out[pid][0]:
            out[pid] = (repeat, str(row.get("output", "")))
    return {pid: text for pid, (_, text) in out.items()}


def _probe_side(store: Store, row: ProbeRow) -> Side:
    if row.state != "finished" or row.status == "crash":
        raise CompareError(f"{row.id} has no scores to compare (state {row.state}, {row.status})")
    return Side(
        label=row.id,
        prompt_means=run_prompt_means(store.scores(row.id)),
        outputs=read_outputs(row.run_dir),
        session_id=row.session_id,
        eval_prompts=(row.spec or {}).get("eval_prompts"),
    )


def _baseline_side(store: Store, session_id: str) -> Side:
    runs = [
        p
        for p in store.probes(session_id)
        if p.kind == BASELINE and p.state == "finished" and p.status == BASELINE
    ]
    if not runs:
        raise CompareError(f"session {session_id} has no finished baseline run")
    first = min(runs, key=lambda p: p.seed)
    return Side(
        label=f"baseline ({len(runs)} seeds; generations of seed {first.seed})",
        prompt_means=average_prompt_means([run_prompt_means(store.scores(p.id)) for p in runs]),
        outputs=read_outputs(first.run_dir),
        session_id=session_id,
        eval_prompts=(first.spec or {}).get("eval_prompts"),
    )


def _prompts(*sides: Side) -> dict[str, EvalPrompt]:
    for side in sides:
        if side.eval_prompts and Path(side.eval_prompts).is_file():
            try:
                return {p.id: p for p in load_prompts(Path(side.eval_prompts))}
            except ValueError:
                continue
    return {}


def compare(store: Store, a: ProbeRow | None, b: ProbeRow | None, *, top: int = 5) -> Comparison:
    """Compare two trainings; None on one side means the other's session baseline."""
    if a is None and b is None:
        raise CompareError("name at least one probe: `compare PROBE baseline`")
    side_a = _probe_side(store, a) if a is not None else None
    side_b = _probe_side(store, b) if b is not None else None
    if side_a is None:
        assert side_b is not None
        side_a = _baseline_side(store, side_b.session_id)
    if side_b is None:
        side_b = _baseline_side(store, side_a.session_id)
    session = store.get_session(side_b.session_id)
    higher = bool(((session.campaign if session else {}) or {}).get("objective", {}).get(
        "higher_is_better", True
    ))  # fmt: skip
    sign = 1.0 if higher else -1.0
    notes: list[str] = []
    if side_a.session_id != side_b.session_id:
        notes.append(
            f"different sessions ({side_a.session_id}, {side_b.session_id}): their recipes, "
            "steps or eval sets may differ"
        )
    shared = sorted(set(side_a.prompt_means) & set(side_b.prompt_means))
    only = len(set(side_a.prompt_means) ^ set(side_b.prompt_means))
    if only:
        notes.append(f"{only} prompt(s) scored on one side only are left out")
    if not shared:
        raise CompareError(f"{side_a.label} and {side_b.label} share no scored prompt")
    mean_a = means_by_category({k: side_a.prompt_means[k] for k in shared})
    mean_b = means_by_category({k: side_b.prompt_means[k] for k in shared})
    counts: dict[str, int] = {}
    for category, _ in shared:
        counts[category] = counts.get(category, 0) + 1
    categories = [
        (c, mean_a[c], mean_b[c], sign * (mean_b[c] - mean_a[c]), counts[c]) for c in sorted(mean_a)
    ]
    prompts = _prompts(side_b, side_a)
    moves = []
    for category, pid in shared:
        va, vb = side_a.prompt_means[(category, pid)], side_b.prompt_means[(category, pid)]
        if va == vb:
            continue
        spec = prompts.get(pid)
        moves.append(
            PromptMove(
                category=category,
                prompt_id=pid,
                a=va,
                b=vb,
                delta=sign * (vb - va),
                prompt=spec.prompt if spec else "",
                reference=spec.reference if spec else None,
                output_a=side_a.outputs.get(pid),
                output_b=side_b.outputs.get(pid),
            )
        )
    moves.sort(key=lambda m: (-abs(m.delta), m.category, m.prompt_id))
    return Comparison(side_a.label, side_b.label, categories, moves[:top], notes)


def as_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain data (for `--json`)."""
    return {
        "a": comparison.a,
        "b": comparison.b,
        "categories": [
            {"category": c, "a": a, "b": b, "delta": d, "prompts": n}
            for c, a, b, d, n in comparison.categories
        ],
        "moved": [m.__dict__ for m in comparison.moved],
        "notes": comparison.notes,
    }

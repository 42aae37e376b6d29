"""A training's log made readable: the loss curve a trainer recorded, and its log tail without
the Python dicts transformers prints (`{'loss': '2.994', 'grad_norm': '1.216', ...}`).

Pure functions over text and records; `autoresearch show` renders them.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HISTORY_FILE = "train_history.jsonl"
"""The loss curve the built-in trainer writes beside the adapter (one entry per logging step)."""

# The fields a reader looks at first, in this order, with the names a table shows.
FIRST_FIELDS = (
    ("step", "step"),
    ("epoch", "epoch"),
    ("loss", "loss"),
    ("learning_rate", "lr"),
    ("grad_norm", "grad norm"),
)


def read_history(run_dir: Path | None) -> list[dict[str, Any]]:
    """The logging-step entries (those with a `loss`) of `run_dir`'s train_history.jsonl, in
    step order; [] when there is none or it cannot be read (a crashed or foreign run)."""
    if run_dir is None:
        return []
    path = run_dir / HISTORY_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("loss"), (int, float)):
            out.append(entry)
    return sorted(out, key=lambda e: e.get("step", 0))


def sample_rows(entries: Sequence[dict[str, Any]], most: int = 12) -> list[dict[str, Any]]:
    """At most `most` entries spread evenly over the run, the first and the last included."""
    if len(entries) <= most:
        return list(entries)
    if most < 2:
        return [entries[-1]]
    picks = sorted({round(i * (len(entries) - 1) / (most - 1)) for i in range(most)})
    return [entries[i] for i in picks]


def number(value: Any) -> str:
    """A log value as a person writes it: 4 significant digits, integers as integers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()):
        return str(int(value))
    return f"{value:.4g}"


def _as_number(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def log_dict(line: str) -> dict[str, Any] | None:
    """The dict a line holds when it is a printed Python or JSON dict of log values, else None."""
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return None
    return {k: _as_number(v) for k, v in value.items()}


def readable_entry(entry: dict[str, Any]) -> str:
    """`step 10  loss 6.959  lr 0.00108  grad norm 4.019  epoch 0.04`: the first fields in a
    fixed order, then the rest as `name value`."""
    names = dict(FIRST_FIELDS)
    parts = [f"{names[k]} {number(entry[k])}" for k, _ in FIRST_FIELDS if k in entry]
    parts += [f"{k} {number(v)}" for k, v in entry.items() if k not in names]
    return "  ".join(parts)


def readable_log_tail(text: str, *, omit_log_dicts: bool = False) -> str:
    """`text` with every printed log dict rewritten as one `name value` line (or left out,
    `omit_log_dicts`, when the curve is shown apart); other lines (a warning, a traceback, a
    summary) unchanged."""
    out = []
    for line in text.splitlines():
        entry = log_dict(line)
        if entry is None:
            out.append(line)
        elif not omit_log_dicts:
            out.append(readable_entry(entry))
    return "\n".join(out)

"""The records every trainer speaks: what to run (ProbeSpec) and what came back (ProbeResult).

These types cross process and machine boundaries (the command trainer's config.json,
scores.jsonl, Ray workers), so they are plain frozen dataclasses with explicit
(de)serialization and no heavy imports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from probes.textfiles import read_user_text


class ProbeKind(str, Enum):
    """Why a training run was launched."""

    BASELINE = "baseline"
    PROBE = "probe"
    REPLAY = "replay"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class EvalPrompt:
    """One evaluation prompt (a line of the eval prompts JSONL file)."""

    id: str
    category: str
    prompt: str
    reference: str | None = None
    difficulty: str | float | None = None
    checks: tuple[dict[str, Any], ...] = ()
    group: str | None = None
    """Prompts sharing a group (e.g. two phrasings of one fact) are resampled together by the
    verdict's bootstrap: they are not independent evidence."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalPrompt:
        checks = data.get("checks") or ()
        return cls(
            id=str(data["id"]),
            category=str(data["category"]),
            prompt=str(data["prompt"]),
            reference=None if data.get("reference") is None else str(data["reference"]),
            difficulty=data.get("difficulty"),
            checks=tuple(checks),
            group=None if data.get("group") is None else str(data["group"]),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "category": self.category, "prompt": self.prompt}
        if self.reference is not None:
            out["reference"] = self.reference
        if self.difficulty is not None:
            out["difficulty"] = self.difficulty
        if self.checks:
            out["checks"] = list(self.checks)
        if self.group is not None:
            out["group"] = self.group
        return out


def jsonl_records(text: str, path: Path, error: type[ValueError]) -> Iterator[tuple[int, str, Any]]:
    """(line number, "file:line", parsed value) for every non-blank line of a JSONL text; a
    line that is not JSON raises `error` naming the file and line."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield lineno, where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg})") from None


class PromptFileError(ValueError):
    """An eval prompts file that cannot be used; the message names file and line."""


def load_prompts(path: Path) -> list[EvalPrompt]:
    """Read an eval prompts JSONL file, naming the file and line of any bad record."""
    prompts: list[EvalPrompt] = []
    seen: set[str] = set()
    text = read_user_text(path, "eval prompts", PromptFileError)
    for _lineno, where, data in jsonl_records(text, path, PromptFileError):
        if not isinstance(data, dict):
            raise PromptFileError(f"{where}: expected a JSON object per line")
        for key in ("id", "category", "prompt"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise PromptFileError(
                    f"{where}: key '{key}' is required and must be a non-empty string"
                )
        if data["id"] in seen:
            raise PromptFileError(f"{where}: duplicate prompt id '{data['id']}'")
        if "checks" in data and not isinstance(data["checks"], list):
            raise PromptFileError(f"{where}: key 'checks' must be a list of objects")
        seen.add(data["id"])
        prompts.append(EvalPrompt.from_dict(data))
    return prompts


@dataclass(frozen=True)
class ProbeSpec:
    """A fully resolved training + evaluation run: everything needed to replay it exactly."""

    probe_id: str
    session_id: str
    kind: ProbeKind
    steps: int
    seed: int
    lane: str | None
    changes: dict[str, Any]
    params: dict[str, Any]
    eval_prompts: Path
    out_dir: Path
    eval_repeats: int = 1
    parent_id: str | None = None
    timeout_s: float | None = None
    # Trainer-specific resolved settings (the trl trainer's model, objective, …); opaque to
    # the loop.
    trainer: dict[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """The JSON document a command trainer receives as `{config}` (DESIGN.md §5.2)."""
        return {
            "probe_id": self.probe_id,
            "session_id": self.session_id,
            "kind": self.kind.value,
            "steps": self.steps,
            "seed": self.seed,
            "lane": self.lane,
            "changes": self.changes,
            "params": self.params,
            "eval_prompts": str(self.eval_prompts),
            "eval_repeats": self.eval_repeats,
            "out_dir": str(self.out_dir),
            "parent_id": self.parent_id,
            "timeout_s": self.timeout_s,
            "trainer": self.trainer,
        }

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> ProbeSpec:
        return cls(
            probe_id=data["probe_id"],
            session_id=data["session_id"],
            kind=ProbeKind(data["kind"]),
            steps=int(data["steps"]),
            seed=int(data["seed"]),
            lane=data.get("lane"),
            changes=dict(data.get("changes") or {}),
            params=dict(data["params"]),
            eval_prompts=Path(data["eval_prompts"]),
            out_dir=Path(data["out_dir"]),
            eval_repeats=int(data.get("eval_repeats", 1)),
            parent_id=data.get("parent_id"),
            timeout_s=data.get("timeout_s"),
            trainer=dict(data.get("trainer") or {}),
        )


@dataclass(frozen=True)
class Score:
    """One evaluated prompt, one repeat (a line of scores.jsonl)."""

    prompt_id: str
    category: str
    score: float
    repeat: int = 0
    critical: bool = False
    components: dict[str, float] | None = None
    meta: dict[str, str] | None = None
    """How the score was made, e.g. {"judge_model": …, "rubric_hash": …} for an LLM judge."""
    error: str | None = None
    """Set when the prompt could not be scored (e.g. `judge_error: …`); `score` is then NaN and
    the prompt is left out of every comparison — never counted as a 0."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_id": self.prompt_id,
            "category": self.category,
            "score": None if self.error else self.score,
            "repeat": self.repeat,
        }
        if self.error:
            out["error"] = self.error
        if self.meta:
            out["meta"] = self.meta
        if self.critical:
            out["critical"] = True
        if self.components:
            out["components"] = self.components
        return out


class ScoresFileError(ValueError):
    """A scores.jsonl that breaks the contract; the message names file, line and problem."""


def parse_scores(path: Path, prompts: list[EvalPrompt]) -> list[Score]:
    """Read and validate a trainer's scores.jsonl against the eval prompts it was given.

    Every line must name a known prompt id with its own category and carry a finite score;
    every prompt must be scored at least once (a silently skipped prompt is how seed 003's
    phantom regression happened).
    """
    by_id = {p.id: p for p in prompts}
    if not path.exists():
        raise ScoresFileError(f"{path}: missing: the trainer must write scores.jsonl")
    scores: list[Score] = []
    seen: set[tuple[str, int]] = set()
    text = read_user_text(path, "the trainer's scores", ScoresFileError)
    for _lineno, where, data in jsonl_records(text, path, ScoresFileError):
        if not isinstance(data, dict):
            raise ScoresFileError(f"{where}: expected a JSON object")
        pid = data.get("prompt_id")
        if pid not in by_id:
            raise ScoresFileError(f"{where}: unknown prompt_id {pid!r} (not in the eval prompts)")
        category = data.get("category", by_id[pid].category)
        if category != by_id[pid].category:
            raise ScoresFileError(
                f"{where}: prompt {pid!r} has category {by_id[pid].category!r} "
                f"in the eval prompts, not {category!r}"
            )
        error = data.get("error")
        if error is not None and (not isinstance(error, str) or not error):
            raise ScoresFileError(f"{where}: error must be a non-empty string, got {error!r}")
        raw = data.get("score")
        if error is not None:
            if raw is not None:
                raise ScoresFileError(f"{where}: a line with an error must have score null")
            raw = math.nan
        elif isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise ScoresFileError(f"{where}: score must be a finite number, got {raw!r}")
        repeat = data.get("repeat", 0)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
            raise ScoresFileError(f"{where}: repeat must be a non-negative integer, got {repeat!r}")
        if (pid, repeat) in seen:
            raise ScoresFileError(f"{where}: prompt {pid!r} repeat {repeat} scored twice")
        seen.add((pid, repeat))
        components = data.get("components")
        if components is not None and not isinstance(components, dict):
            raise ScoresFileError(f"{where}: components must be an object")
        meta = data.get("meta")
        if meta is not None and not (
            isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
        ):
            raise ScoresFileError(f"{where}: meta must be an object of strings")
        scores.append(
            Score(
                prompt_id=pid,
                category=category,
                score=float(raw),
                repeat=repeat,
                critical=bool(data.get("critical", False)),
                components=components,
                meta=meta,
                error=error,
            )
        )
    missing = sorted(set(by_id) - {pid for pid, _ in seen})
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ScoresFileError(f"{path}: {len(missing)} eval prompt(s) were not scored: {shown}")
    return scores


def scored(scores: Iterable[Score]) -> list[Score]:
    """The scores that can be compared: prompts that could not be scored are left out."""
    return [s for s in scores if s.error is None]


class ProbeStatus(str, Enum):
    """Outcome of running a probe (before any verdict)."""

    OK = "ok"
    CRASH = "crash"


@dataclass(frozen=True)
class ProbeResult:
    """What a trainer returns for one ProbeSpec. Failures are data, never exceptions."""

    probe_id: str
    status: ProbeStatus
    scores: tuple[Score, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    log_tail: str = ""
    runtime_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.OK

"""The evaluation cache: an identical evaluation is never run twice (seed 001's history cache).

The key hashes everything that can change a score: the adapter's files (content), the base
model's identity, the prompt set (content), the scorers and generation settings, the number of
repeats and the seed, and, with an LLM judge, its rubric hash and scoring settings (a changed
rubric weight, model or instruction misses; retries, timeouts and batch mode do not count).
Any changed setting is a different key, so a miss; a replay whose training reproduced the same
adapter bytes is a legitimate hit. Critical flags are not part of
the stored entry: they are recomputed from the scores with the caller's threshold.

Entries are JSON files ``<cache_dir>/<key>.json``, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probes.evaluation.config import EvalConfig
from probes.spec import EvalPrompt, Score

CACHE_VERSION = 1

_SMALL_FILE = 64 * 1024 * 1024


def hash_folder(path: Path | None) -> str:
    """A content hash of a folder's files (or of one file); ``"none"`` for no path.

    Files larger than 64 MiB contribute their name and size only (base model weights);
    adapters and tokenizers are hashed in full.
    """
    if path is None:
        return "none"
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.name if file == path else file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel or rel.endswith(".lock"):
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size <= _SMALL_FILE:
            with file.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def hash_prompts(prompts: Sequence[EvalPrompt]) -> str:
    payload = [p.to_dict() for p in prompts]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_key(
    *,
    base_model: Path,
    adapter: Path | None,
    prompts: Sequence[EvalPrompt],
    eval_config: EvalConfig,
    repeats: int,
    seed: int,
    device: str,
) -> str:
    """The key of one evaluation (hex)."""
    payload: dict[str, Any] = {
        "version": CACHE_VERSION,
        "base_model": hash_folder(base_model),
        "adapter": hash_folder(adapter),
        "prompts": hash_prompts(prompts),
        "generation": eval_config.generation.model_dump(mode="json"),
        "scorers": [s.model_dump(mode="json") for s in eval_config.scorers],
        "repeats": repeats,
        "seed": seed,
        # CPU and GPU kernels can decode differently; keep their results apart.
        "device": device.split(":")[0],
    }
    judge = eval_config.judge_config()
    if judge is not None:  # absent without a judge: keys of judge-less evaluations are stable
        payload["judge"] = judge.score_settings
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


class EvalCache:
    """A folder of finished evaluations by key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> tuple[list[Score], dict[str, float]] | None:
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if data.get("version") != CACHE_VERSION:
            return None
        try:
            scores = [
                Score(
                    prompt_id=s["prompt_id"],
                    category=s["category"],
                    # An unscorable prompt (judge_error) is stored with score null and its error.
                    score=math.nan if s.get("error") else float(s["score"]),
                    repeat=int(s.get("repeat", 0)),
                    components=s.get("components"),
                    meta=s.get("meta"),
                    error=s.get("error"),
                )
                for s in data["scores"]
            ]
            return scores, {k: float(v) for k, v in data.get("metrics", {}).items()}
        except (KeyError, TypeError, ValueError):
            return None  # a damaged entry is a miss, recomputed and overwritten

    def put(
        self,
        key: str,
        scores: Sequence[Score],
        metrics: dict[str, float],
        outputs: dict[str, list[str]] | None = None,
    ) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {
            "version": CACHE_VERSION,
            "scores": [{k: v for k, v in s.to_dict().items() if k != "critical"} for s in scores],
            "metrics": metrics,
            "outputs": outputs or {},
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path(key))
        return self.path(key)

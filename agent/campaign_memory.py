"""Content keys for trainings, so a workspace never pays twice for the same baseline run.

A training's result is determined by the resolved recipe, the steps, the seed, the trainer
(its settings and, for a command trainer, the files its argv names), the training data and
the eval set (prompts and evaluation settings). `run_key` hashes all of them, file contents
included: changing a data file, the prompts, the trainer script or a local base model changes
the key, so a reused result is never silently stale.

Every training is looked up by its key before it runs (ResearchSession._reuse): a baseline, a
probe, a replay or a confirmation identical to a finished, non-crashed training of an earlier
session reuses its scores free of budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.campaign import Campaign

#: Files above this size are fingerprinted by size and their first and last MiB (model
#: weights): hashing gigabytes per session would cost minutes.
_WHOLE_FILE_LIMIT = 64 * 1024 * 1024
_EDGE = 1024 * 1024


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        if size <= _WHOLE_FILE_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f.read(_EDGE))
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
    return h.hexdigest()


def _tree_digests(paths: Iterable[Path], root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files = [path]
        else:
            continue
        for f in files:
            try:
                name = str(f.resolve().relative_to(root))
            except ValueError:
                name = str(f.resolve())
            out[name] = _file_digest(f)
    return out


def input_files(campaign: Campaign) -> list[Path]:
    """The files a training of this campaign reads: prompts, data, trainer script, model."""
    files = [campaign.resolve(campaign.eval.prompts)]
    trainer = campaign.trainer
    if trainer.kind == "trl":
        manifest = campaign.resolve(trainer.data)
        files.append(manifest.parent if manifest.exists() else manifest)
        model = campaign.resolve(trainer.model)
        if trainer.model != "demo" and model.exists():
            files.append(model)
    else:
        files += [campaign.resolve(p) for p in trainer.inputs]
        cwd = campaign.resolve(trainer.cwd) if trainer.cwd else campaign.resolve(".")
        for arg in trainer.argv:
            if "{" in arg:
                continue
            candidate = cwd / arg
            if candidate.is_file():
                files.append(candidate)
    return files


def run_key(campaign: Campaign, *, params: dict[str, Any], steps: int, seed: int, kind: str) -> str:
    """The content key of one training (hex sha256)."""
    root = campaign.resolve(".").resolve()
    payload = {
        "kind": kind,
        "params": params,
        "steps": steps,
        "seed": seed,
        "eval_repeats": campaign.probe.eval_repeats,
        "trainer": campaign.trainer.model_dump(mode="json", exclude={"timeout"}),
        "eval": campaign.eval.model_dump(mode="json"),
        "files": _tree_digests(input_files(campaign), root),
    }
    if campaign.trainer.kind == "trl":
        # What `auto` resolves to on this machine (bf16 on a GPU, fp32 on a CPU, ...): the
        # same campaign trains differently elsewhere.
        from probes.trainers.trl import resolve_precision, this_machine

        payload["precision"] = resolve_precision(campaign.trainer, this_machine()).settings()
    if campaign.trainer.kind == "trl" and campaign.trainer.model == "demo":
        from probes.demo.base_model import BUILD_VERSION
        from probes.demo.world import WORLD_VERSION

        payload["demo_model"] = [BUILD_VERSION, WORLD_VERSION]
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def baseline_run_key(campaign: Campaign, seed: int) -> str:
    """The content key of the campaign's baseline run with `seed` (the recipe, unchanged)."""
    return run_key(
        campaign,
        params=dict(campaign.recipe),
        steps=campaign.probe.steps,
        seed=seed,
        kind="baseline",
    )

#!/usr/bin/env python
"""A test trainer that honours the command contract (DESIGN.md §5.2) in milliseconds.

Scores come from the params through a known world, plus seeded training-seed and eval noise:
  facts (target): best at learning_rate 2e-3 (+1.5 over the 1e-3 recipe), worse at 5e-4;
  mixture=stratified: facts +0.8 but voice -2.5 (a trade-off);
  curriculum=reverse: new critical failures in offtask;
  everything else: no effect.
FAKE_MODE (environment) makes it misbehave: exit1, hang, no_scores, nan, inf, string_score,
unknown_id, wrong_category, bad_json, duplicate_score, metrics_not_object, judge_error (a
third of the facts prompts unscorable) — only for the
probe whose changes match FAKE_MODE_WHEN (e.g. lora_r=8; `probe`: every training but a
baseline's) when set. FAKE_SLEEP sleeps
before writing; FAKE_MARKERS names a folder where it drops `<probe_id>.started`.
FAKE_SEED_SD (default 0.05) is the SD of the shift a training seed gives the whole model,
FAKE_PROMPT_SD (default 0.4) the per-prompt, per-evaluation noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import zlib
from pathlib import Path


def quality(category: str, params: dict) -> float:
    lr = float(params.get("learning_rate", 1e-3))
    base = {"facts": 5.0, "voice": 6.0, "offtask": 7.0}.get(category, 5.0)
    if category == "facts":
        x = math.log2(lr / 1e-3)  # 0 at the recipe, +1 at 2e-3, -1 at 5e-4
        base += {1: 1.5, -1: -1.0}.get(round(x), 0.0) if abs(x - round(x)) < 1e-6 else 0.0
        if params.get("mixture") == "stratified":
            base += 0.8
    if category == "voice" and params.get("mixture") == "stratified":
        base -= 2.5
    return base


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cfg = json.loads(Path(args.config).read_text())
    out = Path(args.out)
    mode = os.environ.get("FAKE_MODE", "")
    when = os.environ.get("FAKE_MODE_WHEN")  # e.g. "lora_r=8": misbehave only for that change
    if when == "probe":  # every training but the baseline's
        if cfg["kind"] == "baseline":
            mode = ""
    elif when:
        key, _, value = when.partition("=")
        if str(cfg["changes"].get(key)) != value:
            mode = ""
    markers = os.environ.get("FAKE_MARKERS")
    if markers:
        Path(markers).mkdir(parents=True, exist_ok=True)
        (Path(markers) / f"{cfg['probe_id']}.started").write_text(str(os.getpid()))
    print(f"training {cfg['probe_id']} for {cfg['steps']} steps, seed {cfg['seed']}")
    if mode == "exit1":
        print("CUDA out of memory (simulated)")
        return 1
    if mode == "hang":
        time.sleep(3600)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if mode == "no_scores":
        return 0
    params = cfg["params"]
    prompts = [
        json.loads(line)
        for line in Path(cfg["eval_prompts"]).read_text().splitlines()
        if line.strip()
    ]
    seed = int(cfg["seed"])
    seed_rng = random.Random(seed * 7919)
    seed_sd = float(os.environ.get("FAKE_SEED_SD", "0.05"))  # a seed shifts every category
    model_shift = seed_rng.gauss(0.0, seed_sd)
    seed_offset = {c: model_shift for c in ("facts", "voice", "offtask")}
    prompt_sd = float(os.environ.get("FAKE_PROMPT_SD", "0.4"))
    lines = []
    for repeat in range(int(cfg.get("eval_repeats", 1))):
        for p in prompts:
            rng = random.Random(zlib.crc32(f"{seed}/{p['id']}/{repeat}".encode()))
            difficulty = (zlib.crc32(p["id"].encode()) % 100) / 100 - 0.5
            score = (
                quality(p["category"], params)
                + difficulty
                + seed_offset.get(p["category"], 0.0)
                + rng.gauss(0.0, prompt_sd)
            )
            critical = (
                p["category"] == "offtask"
                and params.get("curriculum") == "reverse"
                and zlib.crc32(p["id"].encode()) % 2 == 0
            )
            if critical:
                score = 0.5
            score = min(10.0, max(0.0, score))
            row = {
                "prompt_id": p["id"],
                "category": p["category"],
                "score": score,
                "repeat": repeat,
            }
            if critical or score < 1.0:
                row["critical"] = True
            if mode == "judge_error" and p["category"] == "facts" and int(p["id"][-2:]) % 3 == 0:
                row = {"prompt_id": p["id"], "category": p["category"], "score": None,
                       "repeat": repeat, "error": "judge_error: reply could not be parsed"}
            if mode == "nan":
                row["score"] = float("nan")
            if mode == "unknown_id":
                row["prompt_id"] = "no-such-prompt"
            if mode == "wrong_category":
                row["category"] = "elsewhere"
            if mode == "string_score":
                row["score"] = "high"
            if mode == "inf":
                row["score"] = float("inf")
            lines.append(json.dumps(row))
    if mode == "bad_json":
        lines[1] = lines[1][:-3]  # a truncated line
    if mode == "duplicate_score":
        lines.append(lines[0])
    (out / "scores.jsonl").write_text("\n".join(lines) + "\n")
    # The optional generations (what `compare` shows side by side).
    (out / "outputs.jsonl").write_text("".join(
        json.dumps({"prompt_id": p["id"], "repeat": 0, "output": f"{p['id']} at seed {seed}"})
        + "\n"
        for p in prompts
    ))  # fmt: skip
    metrics = {"train_loss": 1.0 / (1 + seed), "runtime_s": 0.01}
    # The optional loss curve (docs/writing-a-trainer.md): one entry per logging step.
    steps = int(cfg["steps"])
    with (out / "train_history.jsonl").open("w") as fh:
        for step in range(1, steps + 1, max(1, steps // 10)):
            loss = 3.0 * math.exp(-3.0 * step / steps) + metrics["train_loss"]
            fh.write(json.dumps({"step": step, "loss": loss, "learning_rate": 1e-3}) + "\n")
    (out / "metrics.json").write_text(
        json.dumps([metrics] if mode == "metrics_not_object" else metrics)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

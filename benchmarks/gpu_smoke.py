"""GPU smoke check (run by hand on a machine with one GPU; `benchmarks/gpu_smoke.sh` wraps it).

    python benchmarks/gpu_smoke.py [--device cuda] [--budget 5] [--out DIR]

1. The demo lab with `device: cuda` and `dtype: bf16`: a budget-5 session (four baseline seeds
   and one probe); per training: train and eval seconds, estimated vs measured peak memory, and
   the verdicts.
2. A tiny Qwen3-architecture model (random, built here) trained a few steps with gradient
   checkpointing, and 8-bit AdamW when bitsandbytes is installed, on the device and, side by
   side, on the CPU in fp32.

`--device cpu` runs the same script without a GPU (a dry run of the script itself). Figures go
to stdout and, with `--out`, to DIR/gpu_smoke.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def demo_session(device: str, budget: int, work: Path) -> dict[str, Any]:
    import yaml

    workspace = work / "demo"
    workspace.mkdir()
    for name in ("search_space.yaml", "program.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, workspace / name)
    shutil.copytree(ROOT / "data", workspace / "data")
    config = yaml.safe_load((workspace / "search_space.yaml").read_text())
    config["trainer"].update({"device": device, "dtype": "bf16" if device == "cuda" else "fp32"})
    config["trainer"].pop("threads", None)
    (workspace / "search_space.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.cli import main; main()",
            "start",
            "--budget",
            str(budget),
            "-w",
            str(workspace),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.monotonic() - started
    from agent.store.store import Store

    store = Store(workspace)
    session = store.latest_session()
    rows = []
    for probe in store.probes(session.id) if session else []:
        m = probe.metrics or {}
        rows.append(
            {
                "probe": probe.id,
                "kind": probe.kind,
                "status": probe.status,
                "train_s": m.get("train_runtime_s"),
                "eval_s": m.get("eval_runtime_s"),
                "peak_gib": m.get("peak_memory_gib"),
                "estimated_gib": m.get("estimated_memory_gib"),
            }
        )
    return {
        "exit": run.returncode,
        "wall_s": round(wall, 1),
        "trainings": rows,
        "stderr_tail": run.stderr[-2000:] if run.returncode else "",
    }


def tiny_qwen3(device: str, work: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from probes.spec import ProbeKind, ProbeSpec
    from probes.trainers.trl_worker import train_probe
    from tests.test_trl_trainer import build_tiny_tokenizer, write_lab_data

    folder = work / f"qwen3-{device}"
    vocab = build_tiny_tokenizer(folder, chat=True)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    manifest = write_lab_data(work / f"data-{device}")
    eight_bit = device == "cuda" and importlib.util.find_spec("bitsandbytes") is not None
    settings = {
        "model": str(folder),
        "objective": "sft",
        "manifest": str(manifest),
        "device": device,
        "logging_steps": 5,
        "dtype": "bf16" if device == "cuda" else "fp32",
        "gradient_checkpointing": True,
        "attn_implementation": "sdpa",
        "optim": "adamw_bnb_8bit" if eight_bit else "adamw_torch",
    }
    spec = ProbeSpec(
        probe_id="smoke",
        session_id="smoke",
        kind=ProbeKind.PROBE,
        steps=20,
        seed=1,
        lane=None,
        changes={},
        out_dir=work / f"run-{device}",
        eval_prompts=work / "none",
        params={
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 4,
            "max_length": 64,
            "lora_r": 8,
        },
        trainer=settings,
    )
    outcome = train_probe(spec)
    return {
        "device": device,
        "optim": settings["optim"],
        "dtype": settings["dtype"],
        "steps": outcome.global_step,
        "train_s": round(outcome.runtime_s, 2),
        "peak_gib": round(outcome.peak_memory_gib, 3),
        "estimated_gib": round(outcome.estimated_memory_gib, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--budget", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        work = Path(tmp)
        if not args.skip_demo:
            figures["demo"] = demo_session(args.device, args.budget, work)
            d = figures["demo"]
            print(
                f"demo lab on {args.device}, budget {args.budget}: exit {d['exit']}, "
                f"{d['wall_s']} s"
            )
            for r in d["trainings"]:
                print(
                    f"  {r['kind']:9s} {r['status'] or '-':12s} train {r['train_s'] or 0:6.1f} s"
                    f"  eval {r['eval_s'] or 0:6.1f} s  peak {r['peak_gib'] or 0:6.2f} GiB"
                    f"  estimated {r['estimated_gib'] or 0:6.2f} GiB"
                )
            if d["stderr_tail"]:
                print(d["stderr_tail"])
        runs = [tiny_qwen3(args.device, work)]
        if args.device == "cuda":
            runs.append(tiny_qwen3("cpu", work))
        figures["tiny_qwen3"] = runs
        for r in runs:
            print(
                f"tiny qwen3 on {r['device']} ({r['dtype']}, {r['optim']}, checkpointing): "
                f"{r['steps']} steps in {r['train_s']} s, peak {r['peak_gib']} GiB, "
                f"estimated {r['estimated_gib']} GiB"
            )
        if len(runs) == 2:
            print(
                f"cpu / {args.device} training time: {runs[1]['train_s'] / runs[0]['train_s']:.1f}x"
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_smoke.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""An example command trainer for autoresearch — adapt it to launch your own training.

autoresearch runs (see search_space.yaml, `trainer.argv`):

    python train_probe.py --config CONFIG.json --out OUT_DIR

CONFIG.json describes one probe: `probe_id`, `kind` (baseline | probe | confirm | replay),
`steps` (train exactly this long), `seed`, `changes` (what differs from the recipe) and
`params` (the full recipe with the changes applied), and `eval_prompts` (a JSONL file).
The script must write OUT_DIR/scores.jsonl — one line per eval prompt (and repeat):

    {"prompt_id": "facts-03", "category": "facts", "score": 7.5, "repeat": 0}

— and may write OUT_DIR/metrics.json ({"train_loss": 0.21, "gpu_hours": 0.3, ...}).
A non-zero exit, a timeout or a bad scores.jsonl makes the probe a `crash` (the session goes
on). Full contract: docs/writing-a-trainer.md.

As written, `train_and_evaluate` trains the demo lab's tiny Llama with LoRA (autoresearch's
built-in TRL worker) on ./data and scores the eval prompts, so this workspace runs offline
out of the box. Replace it with your own training: a Modal or Slurm launch, a call into your
training code — keep reading the config and writing scores.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def train_and_evaluate(config: dict, out_dir: Path) -> int:
    """Train `config["params"]` for `config["steps"]` steps with `config["seed"]`, evaluate
    the prompts in `config["eval_prompts"]`, write out_dir/scores.jsonl. Return an exit code."""
    from probes.demo.base_model import ensure_base_model
    from probes.spec import ProbeSpec
    from probes.trainers import trl_worker

    config = dict(config)
    config["trainer"] = {
        "model": str(ensure_base_model(progress=False)),
        "objective": "sft",
        "manifest": str(HERE / "data" / "manifest.yaml"),
        "eval": {
            "prompts": config["eval_prompts"],
            "generation": {"max_new_tokens": 20},
            "scorers": [
                {"name": "exact_match", "categories": ["facts"]},
                {"name": "nll", "categories": ["facts"]},
            ],
        },
        "critical_below": 1.0,
        "threads": 1,
    }
    return trl_worker.run(ProbeSpec.from_config(config))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text(encoding="utf-8"))
    print(
        f"{config['kind']} {config['probe_id']}: {config['changes'] or 'the recipe'}, "
        f"{config['steps']} steps, seed {config['seed']}",
        flush=True,
    )
    return train_and_evaluate(config, args.out)


if __name__ == "__main__":
    sys.exit(main())

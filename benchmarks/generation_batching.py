"""Batched vs one-prompt-at-a-time generation on the demo eval set (run by hand).

    python benchmarks/generation_batching.py [--max-new-tokens 16] [--rounds 3] [--threads 1]

Builds (or reuses) the demo base model, then generates greedy answers for every prompt of
data/probe-prompts.jsonl twice: in one left-padded batch and one prompt at a time, with the
same settings; checks both give the same answers; prints prompts/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--prompts", type=Path, default=ROOT / "data" / "probe-prompts.jsonl")
    args = parser.parse_args()

    import torch

    from probes.demo.base_model import ensure_base_model
    from probes.evaluation.config import GenerationConfig
    from probes.evaluation.generate import HFBackend
    from probes.spec import load_prompts

    torch.set_num_threads(args.threads)
    model = ensure_base_model()
    prompts = [p.prompt for p in load_prompts(args.prompts)]
    results: dict[str, tuple[float, list[list[str]]]] = {}
    for name, batch in (("batched", len(prompts)), ("one-at-a-time", 1)):
        backend = HFBackend(
            model, None, GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=batch)
        )
        backend.generate(prompts[:2], repeats=1, seed=0)  # warm-up
        best = float("inf")
        outputs: list[list[str]] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            outputs = backend.generate(prompts, repeats=1, seed=0)
            best = min(best, time.perf_counter() - started)
        results[name] = (best, outputs)
        print(
            f"{name:>14}: {best:6.3f} s for {len(prompts)} prompts "
            f"({len(prompts) / best:7.1f} prompts/s)"
        )
    same = results["batched"][1] == results["one-at-a-time"][1]
    ratio = results["one-at-a-time"][0] / results["batched"][0]
    print(f"batched speed-up: {ratio:.2f}x   (identical answers: {same})")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

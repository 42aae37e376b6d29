"""Load: a long session with an instant in-process trainer, to see what the loop itself costs.

    python benchmarks/load.py [--trainings 500] [--policy optuna] [--profile]

The trainer returns scores at once (72 prompts in 3 categories), so every second measured is
the loop's: proposing, recording, verdicts, results.tsv, progress.log, events. Printed side
by side in one run:

- overhead per training, for the first and the last 100 trainings (and their ratio: a loop
  whose per-training cost grows with the session's length shows a ratio well above 1);
- peak memory (max RSS) of the process;
- latency of `status` and `report` on the finished session's workspace (in-process).

`--profile` prints the 25 most expensive functions of the last 100 trainings (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import resource
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes.spec import ProbeResult, ProbeSpec, ProbeStatus, Score  # noqa: E402
from probes.trainers.base import Trainer  # noqa: E402

CATEGORIES = ("facts", "voice", "offtask")

CAMPAIGN = """\
objective:
  target: facts
  guards: [voice, offtask]
  min_improvement: 0.3
  max_mde: 1.5
  guard_tolerance: 1.0
probe:
  steps: 30
  baseline_seeds: 3
recipe:
  learning_rate: 1.0e-3
  warmup_ratio: 0.05
  lora_r: 16
  lora_dropout: 0.05
lanes:
  hyperparameters:
    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-1, log: true}
    warmup_ratio: {type: float, low: 0.0, high: 0.3}
    lora_r: {type: int, low: 2, high: 512, log: true}
    lora_dropout: {type: float, low: 0.0, high: 0.5}
trainer:
  kind: command
  argv: ["true"]
eval:
  prompts: prompts.jsonl
agent:
  policy: POLICY
  brief: null
"""


class InstantTrainer(Trainer):
    """Scores at once from a flat world (no change has any effect) plus seeded noise."""

    def run(self, spec: ProbeSpec) -> ProbeResult:
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        shift = random.Random(spec.seed * 7919).gauss(0.0, 0.05)
        scores = []
        for category in CATEGORIES:
            for i in range(24):
                rng = random.Random(zlib.crc32(f"{spec.seed}/{category}/{i}".encode()))
                scores.append(
                    Score(f"{category}-{i:02d}", category, 5.0 + shift + rng.gauss(0, 0.4))
                )
        return ProbeResult(spec.probe_id, ProbeStatus.OK, scores=tuple(scores))


def write_workspace(root: Path, policy: str) -> Path:
    import json

    root.mkdir(parents=True)
    (root / "search_space.yaml").write_text(CAMPAIGN.replace("POLICY", policy))
    lines = [
        json.dumps({"id": f"{c}-{i:02d}", "category": c, "prompt": f"q{i}"})
        for c in CATEGORIES
        for i in range(24)
    ]
    (root / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", type=int, default=500)
    parser.add_argument("--policy", default="optuna", choices=["optuna", "sweep"])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from typer.testing import CliRunner

    from agent.cli import app
    from agent.runtime import open_session
    from agent.session import BudgetSpec, WorkspaceLock

    finished_at: list[float] = []
    profiler = cProfile.Profile()

    def observe(name: str, data: dict[str, Any]) -> None:
        if name == "probe_finished":
            finished_at.append(time.perf_counter())
            if args.profile and len(finished_at) == args.trainings - 100:
                profiler.enable()

    with tempfile.TemporaryDirectory() as tmp:
        ws = write_workspace(Path(tmp) / "ws", args.policy)
        started = time.perf_counter()
        with WorkspaceLock(ws / "runs"):
            session = open_session(
                ws,
                budget=BudgetSpec(runs=args.trainings),
                resume=False,
                trainer=InstantTrainer(),
                observer=observe,
                force=True,
            )
            row = session.run()
        profiler.disable()
        total = time.perf_counter() - started
        gaps = [b - a for a, b in zip([started, *finished_at], finished_at, strict=False)]
        n = len(gaps)
        first = sum(gaps[:100]) / max(1, len(gaps[:100]))
        last = sum(gaps[-100:]) / max(1, len(gaps[-100:]))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runner = CliRunner()
        latency = {}
        for command in ("status", "report"):
            t0 = time.perf_counter()
            result = runner.invoke(app, [command, "-w", str(ws)])
            latency[command] = time.perf_counter() - t0
            assert result.exit_code == 0, result.output
        print(f"session {row.status}: {n} trainings in {total:.1f} s, policy {args.policy}")
        print(f"overhead per training: first 100 {first * 1000:7.1f} ms")
        print(
            f"                       last 100  {last * 1000:7.1f} ms"
            f"   (last / first {last / first:.2f})"
        )
        print(f"peak memory (max RSS): {peak_mb:.0f} MB")
        print(f"status: {latency['status']:.2f} s, report: {latency['report']:.2f} s")
        if args.profile:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Loop overhead: a demo-lab session's wall time vs the sum of its trainings' own times.

    python benchmarks/loop_overhead.py [--budget 8] [--steps 200]

Copies the demo lab (root search_space.yaml + data/) to a temporary workspace, runs
`autoresearch start --budget N` in a child process, and compares, side by side in one run:

- wall: the whole command, from process start to exit (imports, preflight, base model lookup,
  policy, verdicts, database, report included);
- trainings: the sum of each training's runtime (child process: train + evaluate), as the
  trainer measured it.

Target (issue 3): the loop adds at most 5% (wall / trainings <= 1.05). The base model is built
first, outside the measurement, so only the loop is timed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="8")
    parser.add_argument("--steps", type=int, default=None, help="override probe.steps")
    parser.add_argument("--policy", default="optuna")
    args = parser.parse_args()

    from probes.demo.base_model import ensure_base_model

    ensure_base_model(progress=True)  # built once, not part of the measurement

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "lab"
        ws.mkdir()
        shutil.copy(ROOT / "search_space.yaml", ws)
        shutil.copy(ROOT / "program.md", ws)
        shutil.copytree(ROOT / "data", ws / "data")
        campaign = yaml.safe_load((ws / "search_space.yaml").read_text())
        campaign["agent"]["policy"] = args.policy
        if args.steps:
            campaign["probe"]["steps"] = args.steps
        (ws / "search_space.yaml").write_text(yaml.safe_dump(campaign, sort_keys=False))

        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "start", "--budget", args.budget, "-w", str(ws)],
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 1

        from agent.store.store import Store

        store = Store(ws)
        session = store.latest_session()
        assert session is not None
        probes = store.probes(session.id)
        trainings = sum(p.runtime_s or 0.0 for p in probes)
        print(f"trainings: {len(probes)}, each train+eval in a child process")
        print(f"sum of training times: {trainings:8.1f} s")
        print(f"session wall time:     {wall:8.1f} s  (the whole `autoresearch start`)")
        print(f"session active time:   {session.seconds_used:8.1f} s  (as the session counts it)")
        print(f"loop overhead: wall / trainings = {wall / trainings:.3f}  (target <= 1.05)")
        print(f"               active / trainings = {session.seconds_used / trainings:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo lab's promise, measured: fresh `autoresearch start --budget 8` sessions on the root
workspace, one per `probe.seed`, each in its own copy and (with --cold) its own empty model
cache, one after another so each has the machine to itself.

    python benchmarks/demo_sessions.py [--seeds 1 11 21 31 41] [--cold] [--jobs N] [--keep-dirs]

Per session it prints the wall time (the whole `start` command: the base model's build
included with --cold), the kept change with its confirmation's delta, and the changes refused
because a guard regressed while the target rose (the trade-off a session must not keep).
Then the rates over sessions with their 95% Wilson intervals: a session *shows the demo* when
it keeps a change and refuses a trade-off, within 5 minutes. `--jobs 2` runs two sessions at
once (each training uses one thread): the verdicts are the same (training is deterministic per
seed on one machine), the wall times are not those of a machine to itself.

A session's numbers depend on the machine (the base model is built here; float order
differs between CPUs), so the rates are this machine's: say which machine in the note.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.proposals import format_changes  # noqa: E402
from agent.store.store import Store  # noqa: E402
from agent.testing.worlds import wilson  # noqa: E402
from agent.verdict import Verdict  # noqa: E402

WALL_LIMIT_S = 300.0


@dataclass
class Outcome:
    seed: int
    exit_code: int
    wall_s: float
    kept: list[str]
    refused: list[str]

    @property
    def shows_the_demo(self) -> bool:
        return bool(self.kept) and bool(self.refused) and self.wall_s <= WALL_LIMIT_S


def copy_root(into: Path, seed: int) -> Path:
    """The root workspace (campaign, brief, data) with `probe.seed` set to `seed`."""
    workspace = into / f"lab-seed{seed}"
    workspace.mkdir(parents=True)
    shutil.copy(ROOT / "program.md", workspace / "program.md")
    shutil.copytree(ROOT / "data", workspace / "data")
    text = (ROOT / "search_space.yaml").read_text()
    text, count = re.subn(r"(?m)^(  seed:\s*)\d+", rf"\g<1>{seed}", text, count=1)
    if count != 1:
        raise SystemExit("search_space.yaml: no `probe.seed` line to set")
    (workspace / "search_space.yaml").write_text(text)
    return workspace


def run_session(workspace: Path, seed: int, cache: Path | None) -> Outcome:
    env = dict(os.environ)
    env.pop("ANTHROPIC_API_KEY", None)  # the offline policy: the demo's default without a key
    if cache is not None:
        env["AUTORESEARCH_CACHE"] = str(cache)
    started = time.perf_counter()
    proc = subprocess.run(
        ["autoresearch", "start", "--budget", "8", "-w", str(workspace)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    (workspace / "start.log").write_text(proc.stdout + proc.stderr)
    store = Store(workspace)
    session = store.latest_session()
    kept: list[str] = []
    refused: list[str] = []
    for probe in store.probes(session.id) if session else []:
        if not probe.verdict or probe.kind == "baseline":
            continue
        verdict = Verdict.from_dict(probe.verdict)
        delta = verdict.target_delta
        what = f"{format_changes(probe.changes)} ({verdict.target} {delta:+.2f})"
        if probe.status == "keep":
            kept.append(what)
        elif probe.status == "guard_fail" and delta is not None and delta > 0:
            guards = ", ".join(
                f"{c.category} {c.delta:+.2f}"
                for c in verdict.categories
                if c.category in verdict.regressed_guards
            )
            refused.append(f"{what}, regressed: {guards or 'critical failures'}")
    return Outcome(seed, proc.returncode, wall, kept, refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 11, 21, 31, 41])
    parser.add_argument("--cold", action="store_true", help="an empty model cache per session")
    parser.add_argument("--jobs", type=int, default=1, help="sessions at once (default 1)")
    parser.add_argument("--keep-dirs", action="store_true", help="keep the workspaces")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="demo-sessions-"))
    outcomes: list[Outcome] = []

    def one(seed: int) -> Outcome:
        cache = scratch / f"cache-seed{seed}" if args.cold else None
        return run_session(copy_root(scratch, seed), seed, cache)

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for outcome in pool.map(one, args.seeds):
                outcomes.append(outcome)
                print(
                    f"seed {outcome.seed:>3}  exit {outcome.exit_code}  {outcome.wall_s:6.1f} s  "
                    f"kept: {'; '.join(outcome.kept) or '-'}  |  "
                    f"refused trade-offs: {'; '.join(outcome.refused) or '-'}",
                    flush=True,
                )
    finally:
        if args.keep_dirs:
            print(f"workspaces: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    n = len(outcomes)
    for label, hits in (
        ("kept a change", sum(bool(o.kept) for o in outcomes)),
        ("refused a trade-off", sum(bool(o.refused) for o in outcomes)),
        (f"both, within {WALL_LIMIT_S:.0f} s", sum(o.shows_the_demo for o in outcomes)),
    ):
        low, high = wilson(hits, n)
        print(f"{label:<24} {hits}/{n}  95% interval [{low:.2f}, {high:.2f}]")
    walls = sorted(o.wall_s for o in outcomes)
    cache = "cold: the base model built each time" if args.cold else "model cached"
    shared = f", {args.jobs} sessions at a time" if args.jobs > 1 else ""
    print(f"wall time per session: {walls[0]:.0f}-{walls[-1]:.0f} s ({cache}{shared})")


if __name__ == "__main__":
    main()

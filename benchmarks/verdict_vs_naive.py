"""Our verdict rule vs a naive "keep if the target mean went up" rule, on simulated sessions.

Both rules see the same simulated sessions (tests/test_verdict_worlds.py: the same worlds the
tests use): a null world where no change does anything, and effect worlds where one of six
changes improves the target by a multiple of the per-prompt noise SE. Printed per rule:

- false keep: fraction of sessions that kept at least one change that does nothing;
- detection: fraction of sessions that kept the change that works;
- runs: mean trainings per session (baseline + probes + confirmations).

    python benchmarks/verdict_vs_naive.py [--sessions 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_verdict_worlds import (
    World,
    effect_changes,
    null_changes,
    run_session,
)

from agent.campaign import Objective
from agent.verdict import (
    NoiseModel,
    Verdict,
    VerdictStatus,
    compare,
    minimum_detectable_effect,
)
from probes.spec import Score


def naive_rule(
    probe_runs: Sequence[Sequence[Score]],
    baseline_runs: Sequence[Sequence[Score]],
    objective: Objective,
    noise: NoiseModel | None = None,
    **_: Any,
) -> Verdict:
    """Keep when the target's mean is above the baseline's: the hand-run loop of seed 003."""
    v = compare(probe_runs, baseline_runs, objective, noise, bootstrap_samples=10)
    went_up = (v.target_delta or 0.0) > 0.0
    status = VerdictStatus.KEEP if went_up else VerdictStatus.DISCARD
    return replace(v, status=status, reason="target mean went up" if went_up else "did not")


def measure(world: World, sessions: int, multiple: float | None, rule: Any, seed0: int) -> dict:
    false_keep = detected = runs = 0
    for s in range(sessions):
        changes = null_changes(6) if multiple is None else effect_changes(world, multiple)
        out = run_session(world, changes, seed0 + s, rule=rule)
        kept = out.kept()
        false_keep += any(k != "effective" for k in kept)
        detected += "effective" in kept
        runs += out.runs_used
    return {
        "false_keep": false_keep / sessions,
        "detection": detected / sessions,
        "runs": runs / sessions,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for world_name, world in [("3 baseline seeds", World()), ("2 baseline seeds", World(seeds=2))]:
        mde = minimum_detectable_effect(world.true_noise(), world.target)
        se = world.per_prompt_se()
        print(
            f"\nworld: {world_name}, {world.repeats} eval repeats, "
            f"{world.prompts[world.target]} target prompts; per-prompt SE {se:.3f}, "
            f"predicted MDE (80% power) {mde:.3f} = {mde / se:.2f} SE"
        )
        print(f"{'world':<16}{'rule':<8}{'false keep':>12}{'detection':>11}{'runs':>7}")
        for label, multiple in [
            ("null", None),
            ("effect 1x SE", 1.0),
            ("effect 2x SE", 2.0),
            ("effect 3x SE", 3.0),
        ]:
            for rule_name, rule in [("ours", compare), ("naive", naive_rule)]:
                r = measure(world, args.sessions, multiple, rule, seed0=40000)
                det = "—" if multiple is None else f"{r['detection']:.1%}"
                print(
                    f"{label:<16}{rule_name:<8}{r['false_keep']:>12.1%}{det:>11}{r['runs']:>7.1f}"
                )
    print(f"\n{args.sessions} sessions per cell, 6 probes each; {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

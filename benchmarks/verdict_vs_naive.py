"""The new verdict rule vs the old one (before issue 8) vs a naive rule, on simulated sessions.

Every rule sees the same simulated sessions (agent/testing/worlds.py: the worlds
tests/test_verdict_worlds.py asserts on). The rules:

- new: agent/verdict.py as the session applies it (run-level t tests, a fresh-seed
  confirmation judged alone at the session's alpha-spending level);
- old: benchmarks/legacy_rule (prompt bootstrap plus a pooled seed component, candidate at
  one-sided 5%, candidate and confirmation pooled at 99%);
- naive: keep a change when the target mean went up (no test, no confirmation).

Per world and rule:

- false keep: fraction of null sessions (no change does anything) that kept at least one;
- power@1x / @1.5x: the keep probability of a change that lifts the target by 1x / 1.5x the
  rule's mean stated MDE (the naive rule, which states none, at the new rule's), as the
  session's first change; @own: at each session's own stated MDE;
- stated: the mean MDE the rule stated after the baseline; true MDE: the effect really kept
  with 80% probability (the 80% quantile of the per-session smallest kept effect), with its
  95% interval; true/st: their ratio;
- runs, conf: trainings and confirmations per null session.

All intervals are 95% (Wilson for rates, order statistics for the MDE).

    python benchmarks/verdict_vs_naive.py [--sessions 300]        # the fast worlds
    python benchmarks/verdict_vs_naive.py --all [--sessions 300]  # every world of the test
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.testing.worlds import (
    BENCH_CASES,
    FAST_CASES,
    GUARDS,
    SLOW_CASES,
    TARGET,
    WORLD_HEADER,
    Case,
    Change,
    NaiveRule,
    NewRule,
    Rate,
    Rule,
    World,
    critical_fired,
    guard_passed,
    is_,
    null_sessions,
    one_probe,
    power_sessions,
    run_session,
    world_row,
)
from agent.verdict import VerdictStatus
from benchmarks.legacy_rule import LegacyRule

RULES: list[Rule] = [NewRule(), LegacyRule(), NaiveRule()]
GUARD = GUARDS[0]


def world_table(cases: Sequence[Case], sessions: int) -> None:
    print(f"\n{WORLD_HEADER}{'runs':>6}{'conf':>6}")
    for case in cases:
        began = time.perf_counter()
        new_mde: float | None = None
        for rule in RULES:
            null = null_sessions(case.world, rule, sessions, seed0=100_000)
            power = power_sessions(case.world, rule, sessions, seed0=200_000)
            if rule.name == "new":
                new_mde = power.stated_mde
            at = new_mde if rule.name == "naive" else None
            row = world_row(case, rule.name, null.false_keep, power, at=at)
            print(f"{row}{null.runs:>6.1f}{null.confirmations:>6.2f}", flush=True)
        print(f"{'':<45}({time.perf_counter() - began:.0f}s)", flush=True)


def guard_tables(sessions: int) -> None:
    print("\nguard non-inferiority at a true drop of exactly -tolerance (passes = wrong)")
    for seeds in (3, 2):
        for n in (3, 5, 10, 30):
            w = World(seeds=seeds, prompts=n, tolerance=1.0)
            drop = Change("drop", {GUARD: -1.0})
            cells = []
            for rule in RULES[:2]:
                passed = sum(
                    guard_passed(one_probe(w, drop, 400_000 + s, rule), GUARD)
                    for s in range(sessions)
                )
                cells.append(f"{rule.name} {Rate(passed, sessions)!s}")
            print(f"  {w.describe():<28} " + "  ".join(cells), flush=True)
    for seeds in (3, 2):
        base = World(seeds=seeds, prompts=10, shift_ratio=0.5)
        w = replace(base, tolerance=base.needed_tolerance())
        print(
            f"\nguards at the tolerance an unchanged guard needs: {w.describe()}, "
            f"tolerance {w.tolerance:.2f}"
        )
        for multiple in (0.0, 0.5):
            change = Change("inside", {GUARD: -multiple * w.tolerance})
            cells = []
            for rule in RULES[:2]:
                verdicts = [one_probe(w, change, 500_000 + s, rule) for s in range(sessions)]
                fail = Rate(sum(is_(v, VerdictStatus.GUARD_FAIL) for v in verdicts), sessions)
                ni = Rate(sum(guard_passed(v, GUARD) for v in verdicts), sessions)
                cells.append(f"{rule.name}: guard_fail {fail}, non-inferior {ni}")
            print(f"  drop {multiple:g}x tol   " + "   ".join(cells), flush=True)
        lift = 2 * w.predicted_mde()
        for multiple in (1.5, 2.0):
            change = Change("tradeoff", {TARGET: lift, GUARD: -multiple * w.tolerance})
            cells = []
            for rule in RULES:
                kept = sum(
                    "tradeoff" in run_session(w, [change], 600_000 + s, rule).kept
                    for s in range(sessions)
                )
                cells.append(f"{rule.name} {Rate(kept, sessions)!s}")
            print(
                f"  target +{lift:.2f}, guard drop {multiple:g}x tol: kept  " + "  ".join(cells),
                flush=True,
            )


def critical_table(sessions: int) -> None:
    print("\nfalse critical guard_fail, one unchanged probe per session (5 critical/run)")
    for rate in ("fixed", "seed"):
        for seeds in (3, 2):
            w = World(seeds=seeds, prompts=30, shift_ratio=0.5, critical=rate)
            cells = []
            for rule in RULES[:2]:
                hits = sum(
                    critical_fired(one_probe(w, Change("null"), 700_000 + s, rule))
                    for s in range(sessions)
                )
                cells.append(f"{rule.name} {Rate(hits, sessions)!s}")
            print(f"  {w.describe():<44} " + "  ".join(cells), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300, help="sessions per cell")
    parser.add_argument(
        "--all",
        action="store_true",
        help="every world of tests/test_verdict_worlds.py (and a few more), guard and "
        "critical-failure tables",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cases = [*FAST_CASES, *SLOW_CASES, *BENCH_CASES] if args.all else FAST_CASES
    world_table(cases, args.sessions)
    if args.all:
        guard_tables(args.sessions)
        critical_table(args.sessions)
    print(
        f"\n{args.sessions} sessions per cell (per-prompt SD 1, one eval repeat, guards "
        f"non-binding in the world table); {time.perf_counter() - start:.0f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Simulated worlds: whole sessions with known true effects, the new rule beside the old one.

The worlds and the session loop are agent/testing/worlds.py (benchmarks/verdict_vs_naive.py
runs the same ones). Per run (baseline seed, probe, confirmation: each its own seed):

    score = difficulty[prompt] + effect[category] + seed_shift + seed_x_prompt + eval noise

with a per-prompt SD of 1 (seed_x_prompt 0.6, eval 0.8, one eval repeat) and a seed shift of
0.5x or 1x that, either ONE draw per run for the whole model or on the target category only;
optionally clipped to 0..10 with 5% of evaluations replaced by 0, and critical failures (5
per run, at a fixed rate or at a rate that varies by seed). A target and two guards with
n = 3, 5, 10 or 30 prompts each; 2 or 3 baseline seeds; budget = seeds + probes + room for
confirmations (max(2, probes // 3)), with probes = 6 or 20; the session loop of
agent/session.py including its budget accounting (a candidate's confirmation comes next; the
run budget caps the confirmations, which sets the alpha spending).

What is asserted, for the NEW rule (agent/verdict.py); the OLD rule (benchmarks/legacy_rule,
the rule before issue 8) is measured on the same seeds, with fewer sessions, and printed only:

- session false keeps (a session keeping >= 1 change that does nothing) <= 5% in every null
  world, >= 300 sessions each: the point estimate <= 5% + 1 point AND the 95% Wilson lower
  bound < 5%. The point estimate is the binding condition (with 300 sessions the lower
  bound stays below 5% up to a 7.7% rate); the 1-point slack is less than one binomial SE
  (1.26 points at 5%), so a rule whose true rate is at the 5% bound can still fail it by
  chance, but the new rule's is well below (a union bound over its confirmations);
- guard test size: a guard whose true drop is exactly -tolerance passes its
  non-inferiority test at most 5% + 1.5 points (500 sessions, n = 3, 5, 10, 30);
- an unchanged guard, and one dropping 0.5x its tolerance, end in guard_fail rarely (at most
  5%, the level of the regression test); one dropping 1.5x its tolerance, and the trade-off
  (target up a lot, a guard down 2x tolerance), are never kept;
- false critical guard_fail <= 5% + 1 point with 5 critical failures per run, at a fixed rate
  and at a rate that varies by seed;
- stated vs true MDE: the effect that really is kept with 80% probability is within +-15%
  of the mean stated MDE, and the keep probability is 70-90% at 1x the mean stated MDE and
  higher at 1.5x, in the model-wide and the target-only seed-shift worlds with 3 seeds.

Why the MEAN stated MDE: each session states an MDE measured from its own baseline, which is
luck; a true effect is fixed before any baseline is drawn. "80% power at the stated MDE" is
a statement about a fixed effect and sessions drawn at random, so it is checked at the mean
of the stated MDEs (the MDE de-biases its SD estimate for exactly this). The per-session
reading (each session's effect = its own stated MDE) ties the effect to the baseline's luck;
it is printed too ("@own").

Power is measured per session as the smallest target effect the rule keeps as the session's
first change (worlds.keep_threshold: same luck for every effect); the 80% quantile of those is
the true MDE. test_threshold_shortcut_matches_the_session_loop checks that it is the loop's.
Guards do not bind in the world rows (tolerance 1000: the target test alone is measured, as
the stated MDE assumes); the guard tests use the tolerance an unchanged guard needs (80%).

The world rows are worlds.FAST_CASES (run by default) and worlds.SLOW_CASES (marked slow);
the benchmark's --all adds worlds.BENCH_CASES and the 2-seed guard and critical tables.

    python -m pytest tests/test_verdict_worlds.py -s -m "not slow"  # fast cases (~2 min on 2 cores)
    python -m pytest tests/test_verdict_worlds.py -s                # all (~5 min)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace

import pytest

from agent.testing.worlds import (
    FAST_CASES,
    GUARDS,
    SLOW_CASES,
    TARGET,
    WORLD_HEADER,
    Case,
    Change,
    NewRule,
    Rate,
    Rule,
    World,
    critical_fired,
    guard_passed,
    is_,
    keep_threshold,
    null_sessions,
    one_probe,
    power_sessions,
    run_session,
    world_row,
)
from agent.verdict import VerdictStatus
from benchmarks.legacy_rule import LegacyRule

NEW: Rule = NewRule()
OLD: Rule = LegacyRule()
SESSIONS = 300
OLD_SESSIONS = 50  # printed beside the new rule's rates, not asserted (a slower bootstrap)
SLACK = 0.01
GUARD = GUARDS[0]

TABLES: dict[str, list[str]] = defaultdict(list)


@pytest.fixture(scope="module", autouse=True)
def _print_tables() -> Iterator[None]:
    yield
    for title, rows in TABLES.items():
        print(f"\n{title}")
        for row in rows:
            print(row)


def _bounded(rate: Rate, level: float, slack: float) -> bool:
    return rate.p <= level + slack and rate.ci[0] < level


# ---- worlds: false keeps and power ------------------------------------------------------------


CASES = [pytest.param(c, id=c.label) for c in FAST_CASES] + [
    pytest.param(c, id=c.label, marks=pytest.mark.slow) for c in SLOW_CASES
]


@pytest.mark.parametrize("case", CASES)
def test_world(case: Case) -> None:
    w = case.world
    new_null = null_sessions(w, NEW, SESSIONS, seed0=100_000)
    old_null = null_sessions(w, OLD, OLD_SESSIONS, seed0=100_000)
    new_power = power_sessions(w, NEW, SESSIONS if case.mde else OLD_SESSIONS, seed0=200_000)
    old_power = power_sessions(w, OLD, OLD_SESSIONS, seed0=200_000)
    title = (
        f"worlds: NEW {SESSIONS} null sessions (power: {SESSIONS} where the MDE is asserted, "
        f"else {OLD_SESSIONS}), OLD {OLD_SESSIONS}; power at the rule's mean stated MDE"
    )
    if not TABLES[title]:
        TABLES[title].append(WORLD_HEADER)
    TABLES[title].append(world_row(case, "new", new_null.false_keep, new_power))
    TABLES[title].append(world_row(case, "old", old_null.false_keep, old_power))

    assert _bounded(new_null.false_keep, 0.05, SLACK), (case.name, str(new_null.false_keep))
    if case.mde:
        stated = new_power.stated_mde
        true = new_power.true_mde()[0]
        at1, at15 = new_power.power_at(stated), new_power.power_at(1.5 * stated)
        assert abs(true / stated - 1) <= 0.15, (case.name, stated, true)
        assert 0.70 <= at1.p <= 0.90, (case.name, str(at1))
        assert at15.p > at1.p, (case.name, str(at1), str(at15))


def test_threshold_shortcut_matches_the_session_loop() -> None:
    """keep_threshold's "kept at effect e" is exactly what run_session does with the change
    first (common random numbers), for the new and the old rule."""
    w = World(seeds=3, prompts=5)
    for rule in (NEW, OLD):
        agree = 0
        for s in range(30):
            t = keep_threshold(w, 300_000 + s, rule)
            for e in (0.5 * (t.stated_mde or 1.0), t.stated_mde or 1.0):
                out = run_session(w, [Change("effective", {TARGET: e})], 300_000 + s, rule)
                agree += ("effective" in out.kept) == (t.effect <= e)
        assert agree == 60, rule.name


# ---- guards ------------------------------------------------------------------------------------


GUARD_SESSIONS = 500
GUARD_TABLE = "guard non-inferiority at a true drop of exactly -tolerance (passes = wrong)"


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_guard_test_size(n: int) -> None:
    # Unclipped worlds are shift-invariant, so the tolerance's value does not matter.
    w = World(seeds=3, prompts=n, tolerance=1.0)
    drop = Change("drop", {GUARD: -1.0})
    rates = {}
    for rule, sessions in ((NEW, GUARD_SESSIONS), (OLD, OLD_SESSIONS)):
        passed = sum(
            guard_passed(one_probe(w, drop, 400_000 + s, rule), GUARD) for s in range(sessions)
        )
        rates[rule.name] = Rate(passed, sessions)
    TABLES[GUARD_TABLE].append(f"  {w.describe():<28} new {rates['new']!s}  old {rates['old']!s}")
    assert _bounded(rates["new"], 0.05, 0.015), (n, str(rates["new"]))


def _guard_world(seeds: int = 3) -> World:
    w = World(seeds=seeds, prompts=10, shift_ratio=0.5)
    return replace(w, tolerance=w.needed_tolerance())


@pytest.mark.parametrize("multiple", [0.0, 0.5])
def test_guard_inside_tolerance_rarely_fails(multiple: float) -> None:
    w = _guard_world()
    change = Change("inside", {GUARD: -multiple * w.tolerance})
    fails = passes = 0
    for s in range(SESSIONS):
        v = one_probe(w, change, 500_000 + s, NEW)
        fails += is_(v, VerdictStatus.GUARD_FAIL)
        passes += guard_passed(v, GUARD)
    fail, ni = Rate(fails, SESSIONS), Rate(passes, SESSIONS)
    TABLES["guards at the tolerance an unchanged guard needs (new rule)"].append(
        f"  {w.describe()}, tolerance {w.tolerance:.2f}: guard drop {multiple:g}x tol -> "
        f"guard_fail {fail}, shown non-inferior {ni}"
    )
    assert _bounded(fail, 0.05, 0.0), str(fail)


@pytest.mark.parametrize("multiple", [1.5, 2.0])
def test_guard_beyond_tolerance_never_kept(multiple: float) -> None:
    """A change that lifts the target far beyond its MDE and drops a guard 1.5x (just outside)
    or 2x (the trade-off world) its tolerance, first in a 6-probe session."""
    w = _guard_world()
    lift = 2 * w.predicted_mde()
    change = Change("tradeoff", {TARGET: lift, GUARD: -multiple * w.tolerance})
    kept = {}
    for rule, sessions in ((NEW, SESSIONS), (OLD, OLD_SESSIONS)):
        hits = sum(
            "tradeoff" in run_session(w, [change], 600_000 + s, rule).kept for s in range(sessions)
        )
        kept[rule.name] = Rate(hits, sessions)
    TABLES["guards at the tolerance an unchanged guard needs (new rule)"].append(
        f"  target +{lift:.2f}, guard drop {multiple:g}x tol -> kept: new {kept['new']}, "
        f"old {kept['old']}"
    )
    assert kept["new"].hits == 0, str(kept["new"])


# ---- critical failures -------------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["fixed", "seed"])
def test_false_critical_guard_fail(rate: str) -> None:
    """5 prompts fail critically per run (of 90), at a fixed Poisson rate or at a rate that
    varies by seed; an unchanged probe must rarely be failed for new critical failures."""
    w = World(seeds=3, prompts=30, shift_ratio=0.5, critical=rate)
    fired = {}
    for rule, sessions in ((NEW, SESSIONS), (OLD, OLD_SESSIONS)):
        hits = sum(
            critical_fired(one_probe(w, Change("null"), 700_000 + s, rule)) for s in range(sessions)
        )
        fired[rule.name] = Rate(hits, sessions)
    TABLES["false critical guard_fail, one unchanged probe per session"].append(
        f"  {w.describe():<44} new {fired['new']!s}  old {fired['old']!s}"
    )
    assert _bounded(fired["new"], 0.05, SLACK), str(fired["new"])


def test_breaking_change_fails_on_criticals() -> None:
    """A change that breaks 5 more prompts per run is stopped (guard_fail) at its screen."""
    w = World(seeds=3, prompts=10, shift_ratio=0.5)
    breaks = Change("breaks", {TARGET: 2 * w.predicted_mde()}, critical=5)
    sessions = 60
    fired = sum(critical_fired(one_probe(w, breaks, 800_000 + s, NEW)) for s in range(sessions))
    TABLES["critical detection (new rule)"].append(
        f"  {w.describe()}: +5 critical/run -> guard_fail on criticals {Rate(fired, sessions)}"
    )
    assert fired >= 0.9 * sessions

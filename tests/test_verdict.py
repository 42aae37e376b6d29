"""Verdict cases on small hand-built score sets (deterministic)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.campaign import Objective
from agent.verdict import Verdict, VerdictStatus, build_noise_model, compare, crash_verdict
from probes.spec import Score

OBJ = Objective(target="t", guards=["g1", "g2"], min_improvement=0.0, guard_tolerance=0.5)


def runs(
    shift: dict[str, float] | None = None,
    *,
    n: int = 40,
    seeds: int = 3,
    repeats: int = 2,
    seed: int = 0,
    noise: float = 0.5,
    critical: dict[str, int] | None = None,
    difficulty_seed: int = 99,
) -> list[list[Score]]:
    """`seeds` runs of categories t, g1, g2 with per-category shifts and per-eval noise."""
    difficulty = np.random.default_rng(difficulty_seed).normal(6, 1, (3, n))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(seeds):
        run = []
        for ci, c in enumerate(["t", "g1", "g2"]):
            bad = (critical or {}).get(c, 0)
            for i in range(n):
                for r in range(repeats):
                    if i < bad:
                        run.append(Score(f"{c}{i}", c, 1.0, repeat=r, critical=True))
                    else:
                        value = difficulty[ci, i] + (shift or {}).get(c, 0.0)
                        run.append(Score(f"{c}{i}", c, float(value + rng.normal(0, noise)), r))
        out.append(run)
    return out


BASE = runs(seed=1)
NOISE = build_noise_model(BASE, OBJ)


def test_clear_improvement_is_a_candidate_then_keep() -> None:
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    v = compare(probe, BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.CANDIDATE, v.reason
    assert v.ci_low is not None and v.ci_low > 0 and v.guard_ok
    assert v.confidence == pytest.approx(0.90)
    confirm = runs({"t": 1.0}, seeds=1, seed=3)
    v2 = compare([probe[0], confirm[0]], BASE, OBJ, NOISE, confirmation=True)
    assert v2.status is VerdictStatus.KEEP and v2.runs == 2
    assert v2.confidence == pytest.approx(0.99)
    assert "over 2 runs" in v2.reason


def test_no_change_is_not_kept() -> None:
    v = compare(runs(seeds=1, seed=5), BASE, OBJ, NOISE)
    assert v.status in (VerdictStatus.INCONCLUSIVE, VerdictStatus.DISCARD)


def test_clear_regression_of_the_target_is_discard() -> None:
    v = compare(runs({"t": -1.0}, seeds=1, seed=6), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.DISCARD
    assert v.ci_high is not None and v.ci_high < 0


def test_min_improvement_above_the_effect_blocks_the_keep() -> None:
    strict = Objective(target="t", guards=["g1", "g2"], min_improvement=2.0, guard_tolerance=0.5)
    v = compare(runs({"t": 1.0}, seeds=1, seed=2), BASE, strict, NOISE)
    assert v.status is VerdictStatus.DISCARD
    assert v.category("t").threshold == 2.0  # type: ignore[union-attr]


def test_interval_straddling_the_threshold_is_inconclusive() -> None:
    edge = Objective(target="t", guards=["g1", "g2"], min_improvement=0.5, guard_tolerance=0.5)
    v = compare(runs({"t": 0.5}, seeds=1, seed=2), BASE, edge, NOISE)
    assert v.status is VerdictStatus.INCONCLUSIVE
    assert v.ci_low < 0.5 < v.ci_high  # type: ignore[operator]
    assert "straddles" in v.reason


def test_guard_regression_names_the_guard() -> None:
    v = compare(runs({"t": 1.0, "g2": -1.5}, seeds=1, seed=2), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.failed_guards == ("g2",) and "g2" in v.reason and "g1" not in v.reason
    assert v.worst_guard == "g2" and not v.guard_ok
    g2 = v.category("g2")
    assert g2 is not None and g2.passed is False and g2.p_value is not None


def test_guard_holm_levels_are_recorded() -> None:
    v = compare(runs({"t": 1.0}, seeds=1, seed=2), BASE, OBJ, NOISE)
    levels = sorted(c.level for c in v.categories if c.role == "guard")  # type: ignore[type-var]
    assert levels == pytest.approx([0.025, 0.05])


def test_new_critical_failures_fail_the_probe() -> None:
    v = compare(runs({"t": 1.0}, seeds=1, seed=2, critical={"g1": 3}), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.new_critical == pytest.approx(3.0) and "critical" in v.reason


def test_one_new_critical_is_not_decisive_alone_but_two_runs_are() -> None:
    # The baseline had none in 3 seeds: one in one run may be chance (p ~ .15), the same in
    # both runs of a confirmation is not.
    single = runs({"t": 1.0}, seeds=1, seed=2, critical={"t": 1})
    assert compare(single, BASE, OBJ, NOISE).status is VerdictStatus.CANDIDATE
    again = runs({"t": 1.0}, seeds=1, seed=3, critical={"t": 1})
    v = compare([single[0], again[0]], BASE, OBJ, NOISE, confirmation=True)
    assert v.status is VerdictStatus.GUARD_FAIL and v.critical_p is not None


def test_critical_below_counts_low_scores() -> None:
    obj = Objective(target="t", guards=["g1"], guard_tolerance=5.0, critical_below=2.0)
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    for i in range(3):  # three g1 prompts scored 0 in every repeat, no critical flag
        probe[0] = [
            Score(s.prompt_id, s.category, 0.0, s.repeat) if s.prompt_id == f"g1{i}" else s
            for s in probe[0]
        ]
    v = compare(probe, BASE, obj, build_noise_model(BASE, obj))
    assert v.status is VerdictStatus.GUARD_FAIL and v.new_critical == pytest.approx(3.0)


def test_lower_is_better_orients_deltas() -> None:
    obj = Objective(target="t", guards=["g1", "g2"], guard_tolerance=0.5, higher_is_better=False)
    v = compare(runs({"t": -1.0}, seeds=1, seed=2), BASE, obj, NOISE)
    assert v.status is VerdictStatus.CANDIDATE and v.target_delta > 0  # type: ignore[operator]


def test_seed_noise_widens_the_target_interval() -> None:
    # A baseline whose seeds shift whole categories: the same probe gets a wider interval.
    rng = np.random.default_rng(0)
    shifted = [
        [Score(s.prompt_id, s.category, s.score + shift, s.repeat) for s in run]
        for run, shift in zip(BASE, rng.normal(0, 0.6, 3), strict=True)
    ]
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    calm = compare(probe, BASE, OBJ, NOISE)
    noisy_model = build_noise_model(shifted, OBJ)
    assert noisy_model.seed_component_sd["t"] > 0.2
    noisy = compare(probe, shifted, OBJ, noisy_model)
    width = lambda v: v.ci_high - v.ci_low  # noqa: E731
    assert width(noisy) > 1.5 * width(calm)
    assert noisy.category("t").seed_noise > 0  # type: ignore[union-attr]


def test_deterministic_for_a_seed() -> None:
    probe = runs({"t": 0.3}, seeds=1, seed=2)
    assert compare(probe, BASE, OBJ, NOISE, seed=4) == compare(probe, BASE, OBJ, NOISE, seed=4)


def test_missing_category_and_empty_probe_are_crashes() -> None:
    assert compare([], BASE, OBJ, NOISE).status is VerdictStatus.CRASH
    probe = [[s for s in runs(seeds=1)[0] if s.category != "g2"]]
    v = compare(probe, BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.CRASH and "g2" in v.reason
    assert crash_verdict(OBJ, "boom").status is VerdictStatus.CRASH


def test_other_categories_are_reported_not_judged() -> None:
    obj = Objective(target="t", guards=["g1"], guard_tolerance=0.5)
    v = compare(runs({"t": 1.0}, seeds=1, seed=2), BASE, obj, NOISE)
    other = v.category("g2")
    assert other is not None and other.role == "other" and other.passed is None


def test_round_trip_and_old_dicts() -> None:
    v = compare(runs({"t": 1.0, "g2": -1.5}, seeds=1, seed=2), BASE, OBJ, NOISE)
    assert Verdict.from_dict(v.to_dict()) == v
    old = v.to_dict()
    for key in ("confidence", "failed_guards", "critical_p"):
        old.pop(key)
    for c in old["categories"]:
        c.pop("p_value")
        c["retired_field"] = 1
    assert Verdict.from_dict(old).status is VerdictStatus.GUARD_FAIL


def test_noise_model_defaults_from_the_baseline() -> None:
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    assert compare(probe, BASE, OBJ) == compare(probe, BASE, OBJ, NOISE)


def test_fast_enough_for_50_prompts() -> None:
    base = runs(n=50, seeds=3, repeats=3, seed=1)
    noise = build_noise_model(base, OBJ)
    probe = runs({"t": 0.2}, n=50, seeds=1, repeats=3, seed=2)
    compare(probe, base, OBJ, noise)
    start = time.process_time()
    for i in range(10):
        compare(probe, base, OBJ, noise, seed=i, bootstrap_samples=2000)
    per = (time.process_time() - start) / 10
    print(f"\ncompare, 3 categories x 50 prompts, B=2000: {per * 1000:.1f} ms CPU")
    assert per < 0.05


def test_grouped_prompts_widen_the_interval() -> None:
    from agent.campaign import Objective
    from agent.verdict import compare
    from probes.spec import Score

    objective = Objective(target="t", guards=[], min_improvement=0.0)

    def run(shift: float, seed: int) -> list[Score]:
        import random

        rng = random.Random(seed)
        out = []
        for fact in range(15):
            value = 5 + shift + rng.gauss(0, 1.0)
            for copy in range(2):  # each fact asked twice, answered alike
                out.append(Score(f"t-{fact}-{copy}", "t", value))
        return out

    baselines = [run(0.0, 1), run(0.0, 2), run(0.0, 3)]
    probe = [run(0.6, 4)]
    groups = {f"t-{f}-{c}": f"fact-{f}" for f in range(15) for c in range(2)}
    flat = compare(probe, baselines, objective, seed=3)
    grouped = compare(probe, baselines, objective, seed=3, groups=groups)
    assert grouped.target_delta == flat.target_delta
    width = (grouped.ci_high or 0) - (grouped.ci_low or 0)
    assert width > (flat.ci_high or 0) - (flat.ci_low or 0)

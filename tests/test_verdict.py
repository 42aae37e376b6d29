"""Verdict cases on small hand-built score sets (deterministic).

Expected numbers are computed here from the definitions (a Welch-free t test on run means,
scipy's t distribution), never read back from the code under test.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as sps

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
    run_shift_sd: float = 0.0,
) -> list[list[Score]]:
    """`seeds` runs of categories t, g1, g2 with per-category shifts and per-eval noise;
    `run_shift_sd` adds one shift per run to every category (a seed moves the whole model)."""
    difficulty = np.random.default_rng(difficulty_seed).normal(6, 1, (3, n))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(seeds):
        run_shift = rng.normal(0, run_shift_sd) if run_shift_sd else 0.0
        run = []
        for ci, c in enumerate(["t", "g1", "g2"]):
            bad = (critical or {}).get(c, 0)
            for i in range(n):
                for r in range(repeats):
                    if i < bad:
                        run.append(Score(f"{c}{i}", c, 1.0, repeat=r, critical=True))
                    else:
                        value = difficulty[ci, i] + (shift or {}).get(c, 0.0) + run_shift
                        run.append(Score(f"{c}{i}", c, float(value + rng.normal(0, noise)), r))
        out.append(run)
    return out


BASE = runs(seed=1)
NOISE = build_noise_model(BASE, OBJ)


def run_mean(run: list[Score], category: str) -> float:
    by_prompt: dict[str, list[float]] = {}
    for s in run:
        if s.category == category:
            by_prompt.setdefault(s.prompt_id, []).append(s.score)
    return float(np.mean([np.mean(v) for v in by_prompt.values()]))


def test_the_interval_is_a_t_interval_on_run_means() -> None:
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    v = compare(probe, BASE, OBJ, NOISE)
    base_means = [run_mean(r, "t") for r in BASE]
    delta = run_mean(probe[0], "t") - float(np.mean(base_means))
    se = float(np.std(base_means, ddof=1)) * math.sqrt(1 + 1 / 3)
    t = v.category("t")
    assert t is not None
    # The prompt-level floor does not bind here (40 prompts, small per-prompt noise)...
    assert t.se >= se - 1e-12
    se = t.se
    half = sps.t.ppf(0.95, df=2) * se
    assert v.target_delta == pytest.approx(delta)
    assert (v.ci_low, v.ci_high) == pytest.approx((delta - half, delta + half))
    assert t.dof == 2  # three seeds: two degrees of freedom, however many prompts
    assert t.p_value == pytest.approx(sps.t.sf(delta / se, df=2))


def test_clear_improvement_is_a_candidate_then_kept_on_the_fresh_run_alone() -> None:
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    v = compare(probe, BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.CANDIDATE, v.reason
    assert v.stage == "screen" and v.alpha == pytest.approx(0.05)
    assert v.confidence == pytest.approx(0.90)
    confirm = runs({"t": 1.0}, seeds=1, seed=3)
    v2 = compare(confirm, BASE, OBJ, NOISE, confirmation=True, alpha=0.025)
    assert v2.status is VerdictStatus.KEEP, v2.reason
    assert v2.runs == 1 and v2.stage == "confirm"
    assert v2.confidence == pytest.approx(0.95)
    # The effect a keep reports is the fresh run's, not the selected candidate's.
    assert v2.target_delta == pytest.approx(run_mean(confirm[0], "t") - np.mean(
        [run_mean(r, "t") for r in BASE]))  # fmt: skip
    assert "judged alone" in v2.reason and "every guard shown above its tolerance" in v2.reason


def test_a_spent_error_budget_keeps_nothing() -> None:
    confirm = runs({"t": 3.0}, seeds=1, seed=3)
    v = compare(confirm, BASE, OBJ, NOISE, confirmation=True, alpha=0.0)
    assert v.status is VerdictStatus.INCONCLUSIVE and "error budget" in v.reason


def test_no_change_is_not_kept() -> None:
    v = compare(runs(seeds=1, seed=5), BASE, OBJ, NOISE)
    assert v.status in (VerdictStatus.INCONCLUSIVE, VerdictStatus.DISCARD)


def test_clear_regression_of_the_target_is_discard() -> None:
    v = compare(runs({"t": -1.0}, seeds=1, seed=6), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.DISCARD
    assert v.ci_high is not None and v.ci_high < 0
    t = v.category("t")
    assert t is not None and t.p_worse is not None and t.p_worse < 0.01


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


def test_guard_shown_to_regress_is_a_guard_fail_naming_it() -> None:
    v = compare(runs({"t": 1.0, "g2": -2.0}, seeds=1, seed=2), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.regressed_guards == ("g2",) and "g2" in v.reason and "g1" not in v.reason
    assert v.worst_guard == "g2" and not v.guard_ok
    g2 = v.category("g2")
    assert g2 is not None and g2.regressed and g2.ci_high < -0.5
    assert "entirely below -0.50" in v.reason


def test_a_guard_drop_inside_its_tolerance_is_never_called_a_regression() -> None:
    # g2 drops 0.3 against a tolerance of 0.5: whatever the noise says, it did not regress
    # beyond tolerance, and the words must not say it did.
    for seed in range(10):
        v = compare(runs({"t": 1.0, "g2": -0.3}, seeds=1, seed=seed + 10), BASE, OBJ, NOISE)
        assert v.status is not VerdictStatus.GUARD_FAIL, v.reason
        assert "regressed" not in v.reason


def test_a_guard_not_shown_safe_makes_a_confirmation_inconclusive() -> None:
    # A tolerance inside g1's noise: its interval reaches below -tolerance.
    loud = Objective(target="t", guards=["g1"], min_improvement=0.0, guard_tolerance=0.05)
    v = compare(runs({"t": 2.0}, seeds=1, seed=3), BASE, loud, NOISE, confirmation=True)
    g1 = v.category("g1")
    assert g1 is not None and g1.passed is False and not g1.regressed
    assert v.status is VerdictStatus.INCONCLUSIVE
    assert "not shown safe" in v.reason and "g1" in v.reason
    assert v.failed_guards == ("g1",) and v.regressed_guards == ()


def test_regression_claims_are_holm_corrected_per_guard() -> None:
    v = compare(runs({"t": 1.0, "g1": -1.2, "g2": -3.0}, seeds=1, seed=2), BASE, OBJ, NOISE)
    g1, g2 = v.category("g1"), v.category("g2")
    assert g1 is not None and g2 is not None
    # Recompute Holm from the recorded p-values: the smaller is tested at 0.025, the other
    # at 0.05, each guard keeping its own.
    p = {"g1": g1.p_regress, "g2": g2.p_regress}
    first, second = sorted(p, key=lambda g: p[g])  # type: ignore[arg-type, return-value]
    expect = {first: p[first] <= 0.025}  # type: ignore[operator]
    expect[second] = expect[first] and p[second] <= 0.05  # type: ignore[operator]
    assert {"g1": g1.regressed, "g2": g2.regressed} == expect


def ans(count: float) -> float:
    return 2 * math.sqrt(count + 3 / 8)  # Anscombe: a Poisson count's variance becomes ~1


def test_new_critical_failures_fail_the_probe() -> None:
    v = compare(runs({"t": 1.0}, seeds=1, seed=2, critical={"g1": 6}), BASE, OBJ, NOISE)
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.new_critical == pytest.approx(6.0) and "critical" in v.reason
    se = math.sqrt(1.0 * (1 + 1 / 3))  # the Poisson floor: baseline runs agree on 0
    assert v.critical_p == pytest.approx(sps.t.sf((ans(6) - ans(0)) / se, df=2))


def test_a_few_new_critical_failures_in_one_run_are_not_decisive() -> None:
    for count in (1, 2, 3):
        v = compare(runs({"t": 1.0}, seeds=1, seed=2, critical={"g1": count}), BASE, OBJ, NOISE)
        assert v.status is VerdictStatus.CANDIDATE and v.critical_p is not None
        se = math.sqrt(1 + 1 / 3)
        assert v.critical_p == pytest.approx(sps.t.sf((ans(count) - ans(0)) / se, df=2))


def test_critical_counts_that_vary_by_seed_widen_the_test() -> None:
    # Baseline seeds with 0, 4 and 8 critical failures: a probe with 9 is inside that spread.
    base = [runs(seeds=1, seed=1 + i, critical={"g1": c})[0] for i, c in enumerate((0, 4, 8))]
    noise = build_noise_model(base, OBJ)
    spread = float(np.std([ans(0), ans(4), ans(8)], ddof=1))
    assert noise.critical_sd == pytest.approx(spread)
    v = compare(runs({"t": 1.0}, seeds=1, seed=2, critical={"g1": 9}), base, OBJ, noise)
    assert v.new_critical == pytest.approx(5.0)
    shift = ans(9) - np.mean([ans(0), ans(4), ans(8)])
    expected = sps.t.sf(shift / (spread * math.sqrt(4 / 3)), df=2)
    assert v.critical_p == pytest.approx(expected) and expected > 0.05
    assert "critical" not in v.reason


def test_critical_below_counts_low_scores() -> None:
    obj = Objective(target="t", guards=["g1"], guard_tolerance=5.0, critical_below=2.0)
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    for i in range(6):  # six g1 prompts scored 0 in every repeat, no critical flag
        probe[0] = [
            Score(s.prompt_id, s.category, 0.0, s.repeat) if s.prompt_id == f"g1{i}" else s
            for s in probe[0]
        ]
    v = compare(probe, BASE, obj, build_noise_model(BASE, obj))
    assert v.status is VerdictStatus.GUARD_FAIL and v.new_critical == pytest.approx(6.0)


def test_lower_is_better_orients_deltas() -> None:
    obj = Objective(target="t", guards=["g1", "g2"], guard_tolerance=0.5, higher_is_better=False)
    v = compare(runs({"t": -1.0}, seeds=1, seed=2), BASE, obj, NOISE)
    assert v.status is VerdictStatus.CANDIDATE and v.target_delta > 0  # type: ignore[operator]


def test_a_seed_that_moves_the_whole_model_widens_every_interval() -> None:
    shifted = runs(seed=1, run_shift_sd=0.6)
    probe = runs({"t": 1.0}, seeds=1, seed=2)
    calm = compare(probe, BASE, OBJ, NOISE)
    noisy_model = build_noise_model(shifted, OBJ)
    assert noisy_model.dof == {"t": 2.0, "g1": 2.0, "g2": 2.0}
    noisy = compare(probe, shifted, OBJ, noisy_model)
    width = lambda v: v.ci_high - v.ci_low  # noqa: E731
    assert width(noisy) > 1.5 * width(calm)


def test_few_prompts_use_the_prompt_level_floor() -> None:
    # Three prompts whose baseline seeds happen to agree exactly: the run-level spread is 0,
    # but one run of the probe disagrees prompt by prompt; the floor keeps the SE honest.
    def flat(values: list[float]) -> list[Score]:
        return [Score(f"g{i}", "g", v) for i, v in enumerate(values)] + [
            Score(f"t{i}", "t", 5.0) for i in range(3)
        ]

    obj = Objective(target="t", guards=["g"], guard_tolerance=0.5)
    base = [flat([9.0, 9.0, 9.0])] * 3
    probe = [flat([9.0, 9.0, 0.0])]  # one outlier
    v = compare(probe, base, obj)
    g = v.category("g")
    diffs = np.array([0.0, 0.0, -9.0])
    assert g is not None and g.se == pytest.approx(diffs.std(ddof=1) / math.sqrt(3))
    assert v.status is not VerdictStatus.GUARD_FAIL  # one outlier in one run proves nothing


def test_same_scores_same_verdict() -> None:
    probe = runs({"t": 0.3}, seeds=1, seed=2)
    assert compare(probe, BASE, OBJ, NOISE) == compare(probe, BASE, OBJ, NOISE)
    shuffled = [list(reversed(r)) for r in reversed(BASE)]
    again = compare([list(reversed(probe[0]))], shuffled, OBJ, build_noise_model(shuffled, OBJ))
    first = compare(probe, BASE, OBJ, NOISE)
    assert again.status is first.status
    for a, b in zip(again.categories, first.categories, strict=True):
        assert (a.category, a.passed, a.regressed) == (b.category, b.passed, b.regressed)
        assert [a.delta, a.ci_low, a.ci_high, a.p_value or 0, a.se] == pytest.approx(
            [b.delta, b.ci_low, b.ci_high, b.p_value or 0, b.se]
        )


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
    for key in ("confidence", "failed_guards", "critical_p", "regressed_guards", "stage"):
        old.pop(key)
    for c in old["categories"]:
        c.pop("p_value")
        c.pop("dof")
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
    for _ in range(10):
        compare(probe, base, OBJ, noise)
    per = (time.process_time() - start) / 10
    print(f"\ncompare, 3 categories x 50 prompts x 3 repeats: {per * 1000:.1f} ms CPU")
    assert per < 0.05


def test_every_number_of_a_verdict_matches_a_hand_computation() -> None:
    """Each field of each category, recomputed here with numpy and scipy from the scores alone:
    means, the run-level SE sqrt(1/k + 1/s) times the SD of the baseline runs' means, the
    per-prompt SE floor, dof s-1, the one-sided p values and the interval at the test's level."""
    from agent.verdict import GUARD_ALPHA, SCREEN_ALPHA

    objective = Objective.model_validate(
        {"target": "facts", "guards": ["voice"], "min_improvement": 0.2, "guard_tolerance": 0.5}
    )
    base = {
        "facts": [[5.0, 6.0, 4.5, 7.0, 5.5], [5.4, 6.1, 4.9, 6.8, 5.9], [4.8, 5.7, 4.4, 7.3, 5.2]],
        "voice": [[8.0, 7.5, 9.0, 6.0], [7.7, 7.9, 8.6, 6.3], [8.4, 7.2, 9.1, 5.8]],
    }
    probe = {"facts": [6.1, 6.9, 5.8, 7.9, 6.6], "voice": [7.9, 7.0, 8.8, 5.5]}

    def run(values: dict[str, list[float]]) -> list[Score]:
        return [
            Score(f"{c}-{i}", c, v) for c, vs in values.items() for i, v in enumerate(vs)
        ]

    baseline_runs = [run({c: base[c][j] for c in base}) for j in range(3)]
    verdict = compare([run(probe)], baseline_runs, objective)
    for category, level, threshold in (
        ("facts", SCREEN_ALPHA, 0.2),
        ("voice", GUARD_ALPHA, -0.5),
    ):
        b = np.array(base[category])
        p = np.array(probe[category])
        run_means = b.mean(axis=1)
        delta = p.mean() - run_means.mean()
        run_se = run_means.std(ddof=1) * math.sqrt(1 / 1 + 1 / 3)
        diffs = p - b.mean(axis=0)
        prompt_se = diffs.std(ddof=1) / math.sqrt(diffs.size)
        se, dof = max(run_se, prompt_se), 2.0
        half = sps.t.ppf(1 - level, dof) * se
        c = verdict.category(category)
        assert c is not None
        assert c.n_prompts == p.size
        assert c.baseline_mean == pytest.approx(run_means.mean())
        assert c.probe_mean == pytest.approx(p.mean())
        assert c.delta == pytest.approx(delta)
        assert c.se == pytest.approx(se)
        assert c.dof == pytest.approx(dof)
        assert c.threshold == pytest.approx(threshold)
        assert c.level == pytest.approx(level)
        assert c.p_value == pytest.approx(sps.t.sf((delta - threshold) / se, dof))
        assert (c.ci_low, c.ci_high) == pytest.approx((delta - half, delta + half))
        assert c.p_worse == pytest.approx(sps.t.cdf(delta / se, dof))
    voice = verdict.category("voice")
    assert voice is not None
    assert voice.p_regress == pytest.approx(
        sps.t.cdf((voice.delta + 0.5) / voice.se, voice.dof)
    )

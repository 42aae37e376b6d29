"""Table and property tests of agent/stats.py, against expectations computed here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from agent.campaign import Objective
from agent.stats import (
    SESSION_ALPHA,
    DiffTest,
    NoiseModel,
    build_noise_model,
    c4,
    category_means,
    confirmation_alpha,
    critical_prompts,
    guard_min_tolerance,
    holm,
    keep_probability,
    max_confirmations,
    minimum_detectable_effect,
    power_report,
    prompt_means,
    t_quantile,
    t_sf,
)
from probes.spec import Score


def S(pid: str, cat: str, score: float, repeat: int = 0, critical: bool = False) -> Score:
    return Score(pid, cat, score, repeat=repeat, critical=critical)


# ---- Holm ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pvals", "alpha", "expected"),
    [
        ([0.01, 0.04], 0.05, [True, True]),  # 0.01 <= .025, then 0.04 <= .05
        ([0.03, 0.04], 0.05, [False, False]),  # 0.03 > .025: step-down stops at once
        ([0.04, 0.001, 0.2], 0.05, [False, True, False]),  # .001<=.0167, .04>.025 stops
        ([0.2], 0.05, [False]),
        ([0.05], 0.05, [True]),
        ([], 0.05, []),
    ],
)
def test_holm_step_down(pvals: list[float], alpha: float, expected: list[bool]) -> None:
    assert [r for r, _level in holm(pvals, alpha)] == expected


def test_holm_levels() -> None:
    assert [lvl for _r, lvl in holm([0.5, 0.001, 0.02], 0.06)] == pytest.approx([0.06, 0.02, 0.03])


def _holm_by_closed_testing(p: list[float], alpha: float) -> list[bool]:
    """Holm is closed testing with Bonferroni local tests: H_i is rejected when every
    intersection containing it is rejected by Bonferroni (min p over it <= alpha / size)."""
    m = len(p)
    out = []
    for i in range(m):
        ok = True
        for size in range(1, m + 1):
            for subset in itertools.combinations(range(m), size):
                if i in subset and min(p[j] for j in subset) > alpha / size:
                    ok = False
        out.append(ok)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5))
def test_holm_matches_closed_testing(p: list[float]) -> None:
    assert [r for r, _ in holm(p, 0.05)] == _holm_by_closed_testing(p, 0.05)


# ---- distributions ---------------------------------------------------------------------------


@pytest.mark.parametrize("dof", [1, 2, 3, 7.5, 30, math.inf])
@pytest.mark.parametrize("p", [0.8, 0.95, 0.995])
def test_t_functions_match_scipy(dof: float, p: float) -> None:
    expected = sps.norm.ppf(p) if math.isinf(dof) else sps.t.ppf(p, dof)
    assert t_quantile(p, dof) == pytest.approx(expected)
    assert t_sf(expected, dof) == pytest.approx(1 - p)


def test_c4_known_values() -> None:
    assert c4(2) == pytest.approx(math.sqrt(math.pi) / 2)  # n = 3 samples
    assert c4(1) == pytest.approx(math.sqrt(2 / math.pi))
    assert c4(1000) == 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-5, 5),
    st.floats(0.01, 3),
    st.sampled_from([1, 2, 4, 10, math.inf]),
    st.floats(0.001, 0.2),
)
def test_diff_test_interval_and_p_agree(delta: float, se: float, dof: float, alpha: float) -> None:
    test = DiffTest(delta, se, dof)
    lo, hi = test.interval(alpha)
    assert lo <= delta <= hi
    # The lower bound is exactly where the one-sided p crosses alpha.
    assert test.p_above(lo) == pytest.approx(alpha, rel=1e-6)
    assert test.p_below(hi) == pytest.approx(alpha, rel=1e-6)
    # More data (a smaller SE or more dof) never widens the interval.
    lo2, hi2 = DiffTest(delta, se / 2, dof).interval(alpha)
    assert hi2 - lo2 < hi - lo
    lo3, hi3 = DiffTest(delta, se, dof * 2).interval(alpha)
    assert hi3 - lo3 <= hi - lo + 1e-12


# ---- summaries -------------------------------------------------------------------------------


def test_prompt_means_average_repeats_within_a_run_first() -> None:
    run_a = [S("p", "c", 0.0, 0), S("p", "c", 2.0, 1), S("p", "c", 4.0, 2)]  # mean 2
    run_b = [S("p", "c", 6.0)]  # one repeat
    assert prompt_means([run_a, run_b]) == {("c", "p"): 4.0}
    assert category_means([run_a, run_b]) == {"c": 4.0}


def test_critical_prompts_need_a_strict_majority_of_repeats() -> None:
    run = [
        S("a", "c", 0.0, 0, critical=True),
        S("a", "c", 7.0, 1),
        S("a", "c", 7.0, 2),  # glitch
        S("b", "c", 1.0, 0, critical=True),
        S("b", "c", 1.0, 1, critical=True),
        S("b", "c", 7.0, 2),
        S("d", "c", 2.0, 0),
        S("d", "c", 2.5, 1),
        S("d", "c", 9.0, 2),  # below 3 twice
        S("e", "c", 1.0, 0, critical=True),  # one of two: a tie is not a majority
        S("e", "c", 7.0, 1),
    ]
    assert critical_prompts(run, ["c"]) == {"c": 1}
    assert critical_prompts(run, ["c"], critical_below=3.0) == {"c": 2}
    assert critical_prompts(run, ["c"], critical_below=8.0, higher_is_better=False) == {"c": 1}


# ---- noise model -----------------------------------------------------------------------------


def _world_runs(
    seeds: int, repeats: int, *, shift: float, u: float, e: float, n: int = 400, seed: int = 0
) -> list[list[Score]]:
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(5, 1, n)
    runs = []
    for _ in range(seeds):
        mean = difficulty + rng.normal(0, shift) + rng.normal(0, u, n)
        runs.append(
            [
                S(f"p{i}", "c", float(mean[i] + rng.normal(0, e)), r)
                for i in range(n)
                for r in range(repeats)
            ]
        )
    return runs


def test_noise_model_measures_the_run_to_run_spread_and_its_parts() -> None:
    runs = _world_runs(12, 4, shift=0.3, u=0.5, e=1.0)
    noise = build_noise_model(runs, None)
    assert noise.seeds == 12 and noise.repeats == 4 and noise.n_prompts == {"c": 400}
    run_means = [np.mean([s.score for s in r]) for r in runs]
    assert noise.seed_spread("c") == pytest.approx(np.std(run_means, ddof=1))
    assert noise.dof == {"c": 11.0}  # seeds - 1
    assert noise.repeat_sd["c"] == pytest.approx(1.0, rel=0.05)
    # Beyond the run's shift: per-prompt training noise + eval noise / repeats.
    assert noise.prompt_sd["c"] == pytest.approx(math.sqrt(0.25 + 1.0 / 4), rel=0.05)
    assert noise.seed_component_sd["c"] == pytest.approx(0.3, rel=0.35)


def test_a_model_wide_seed_gives_seeds_minus_one_dof_in_every_category() -> None:
    runs = []
    rng = np.random.default_rng(1)
    for _ in range(3):
        shift = rng.normal(0, 1.0)
        runs.append(
            [S(f"{c}{i}", c, 5 + shift + rng.normal(0, 0.1)) for c in "abcd" for i in range(5)]
        )
    noise = build_noise_model(runs, None)
    assert noise.dof == dict.fromkeys("abcd", 2.0)


def test_replicated_configurations_add_degrees_of_freedom() -> None:
    base = _world_runs(3, 1, shift=0.2, u=0.3, e=0.5, n=20, seed=1)
    pair = _world_runs(2, 1, shift=0.2, u=0.3, e=0.5, n=20, seed=2)
    triple = _world_runs(3, 1, shift=0.2, u=0.3, e=0.5, n=20, seed=3)
    noise = build_noise_model(base, None, replicates=[pair, triple])
    assert noise.dof == {"c": 2 + 1 + 2}
    assert noise.replicate_runs == 3

    def ss(group: list[list[Score]]) -> float:
        means = [np.mean([s.score for s in r]) for r in group]
        return float(np.var(means, ddof=1) * (len(means) - 1))

    pooled = math.sqrt((ss(base) + ss(pair) + ss(triple)) / 5)
    assert noise.seed_spread("c") == pytest.approx(pooled)
    # The baseline's own numbers are untouched by replicates.
    assert noise.seeds == 3
    assert noise.baseline_mean == build_noise_model(base, None).baseline_mean


def test_noise_model_without_repeats_has_no_repeat_spread() -> None:
    noise = build_noise_model(_world_runs(3, 1, shift=0.0, u=0.5, e=1.0), None)
    assert noise.repeat_sd == {} and not noise.eval_spread_measured("c")


def test_noise_model_round_trips_and_reads_old_records() -> None:
    noise = build_noise_model(_world_runs(3, 2, shift=0.1, u=0.5, e=1.0, n=20), None)
    assert NoiseModel.from_dict(noise.to_dict()) == noise
    old = NoiseModel.from_dict({"seed_sd": {"c": 0.2}, "seeds": 3, "seed_component_dof": 6.0})
    assert old.seed_spread("c") == 0.2 and old.dof_of("c") == 2.0


# ---- session alpha spending ------------------------------------------------------------------


@pytest.mark.parametrize("most", [None, 1, 2, 3, 5, 20])
def test_alpha_spending_never_exceeds_the_session_level(most: int | None) -> None:
    levels = [confirmation_alpha(j, most) for j in range(1, 60)]
    assert sum(levels) <= SESSION_ALPHA + 1e-12
    assert all(a >= b for a, b in itertools.pairwise(levels))
    if most is not None:
        assert sum(levels) == pytest.approx(SESSION_ALPHA)  # nothing left unspent
        assert all(a == 0 for a in levels[most:])


def test_alpha_spending_schedule() -> None:
    assert confirmation_alpha(1, 1) == pytest.approx(0.05)
    assert [confirmation_alpha(j, 2) for j in (1, 2)] == pytest.approx([0.025, 0.025])
    assert [confirmation_alpha(j, None) for j in (1, 2, 3)] == pytest.approx(
        [0.025, 0.0125, 0.00625]
    )
    assert max_confirmations(8, 3) == 2 and max_confirmations(4, 3) == 1
    assert max_confirmations(None, 3) is None


# ---- power -----------------------------------------------------------------------------------


def _simulate_keep_rate(
    effect: float, sd: float, seeds: int, threshold: float, confirm_alpha: float, n: int, rng
) -> float:
    """The session's rule on simulated run means, written out independently."""
    kept = 0
    for _ in range(n):
        base = rng.normal(0, sd, seeds)
        s = base.std(ddof=1)
        se = s * math.sqrt(1 + 1 / seeds)
        d1 = effect + rng.normal(0, sd) - base.mean()
        d2 = effect + rng.normal(0, sd) - base.mean()
        screen = sps.t.sf((d1 - threshold) / se, seeds - 1) <= 0.05
        confirm = sps.t.sf((d2 - threshold) / se, seeds - 1) <= confirm_alpha
        kept += screen and confirm
    return kept / n


def _model(sd: float = 0.2, seeds: int = 3, n: int = 30) -> NoiseModel:
    return NoiseModel(
        seed_sd={"c": sd},
        dof={"c": float(seeds - 1)},
        n_prompts={"c": n},
        seeds=seeds,
        prompt_sd={"c": 1.0},
        seed_component_sd={"c": 0.1},
    )


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_mde_is_kept_80_percent_of_the_time(seeds: int) -> None:
    # With the noise known exactly (sd = the true sd x c4, so the de-biased figure is exact
    # on average), the rule simulated independently keeps the MDE about 80% of the time.
    sd_true = 0.2
    noise = _model(sd=sd_true * c4(seeds - 1), seeds=seeds)
    mde = minimum_detectable_effect(noise, "c", threshold=0.3, confirm_alpha=0.025)
    rate = _simulate_keep_rate(mde, sd_true, seeds, 0.3, 0.025, 6000, np.random.default_rng(3))
    assert rate == pytest.approx(0.8, abs=0.025)
    assert keep_probability(mde, sd=sd_true, seeds=seeds, dof=seeds - 1, threshold=0.3) == (
        pytest.approx(0.8, abs=0.02)
    )


def test_the_mde_is_deterministic_and_moves_with_the_levers() -> None:
    noise = _model()
    base = minimum_detectable_effect(noise, "c", threshold=0.5)
    assert base == minimum_detectable_effect(noise, "c", threshold=0.5)
    assert base > 0.5
    assert minimum_detectable_effect(noise, "c", threshold=0.5, seeds=5) < base
    assert minimum_detectable_effect(noise, "c", threshold=0.5, prompts=120) < base
    assert minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.005) > base
    assert minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.0) == math.inf


def test_guard_min_tolerance_passes_an_unchanged_guard_80_percent() -> None:
    sd, seeds = 0.25, 3
    noise = _model(sd=sd * c4(2), seeds=seeds)
    tol = guard_min_tolerance(noise, "c")
    rng = np.random.default_rng(5)
    passed = 0
    n = 20000
    for _ in range(n):
        base = rng.normal(0, sd, seeds)
        se = base.std(ddof=1) * math.sqrt(1 + 1 / seeds)
        d = rng.normal(0, sd) - base.mean()
        passed += sps.t.sf((d + tol) / se, seeds - 1) <= 0.05
    assert passed / n == pytest.approx(0.8, abs=0.015)


def test_power_report_gate_and_fixes() -> None:
    noise = NoiseModel(
        seed_sd={"c": 0.1, "g": 0.4},
        dof={"c": 2.0, "g": 2.0},
        n_prompts={"c": 30, "g": 10},
        seeds=3,
        prompt_sd={"c": 1.0, "g": 1.0},
        seed_component_sd={"c": 0.0, "g": 0.0},
    )
    objective = Objective(target="c", guards=["g"], min_improvement=0.5, guard_tolerance=0.2)
    report = power_report(noise, objective, max_confirmations=2)
    assert report.confirm_alpha == pytest.approx(0.025)
    assert report.mde == pytest.approx(
        minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025)
    )
    assert report.mde > 1.0
    assert len(report.underpowered) == 2
    assert "target c" in report.underpowered[0] and "guard g" in report.underpowered[1]
    assert any("c prompts" in f for f in report.fixes)
    assert any("baseline_seeds" in f for f in report.fixes)
    assert any(f.startswith("objective.guard_tolerance g:") for f in report.fixes)
    # Each fix named for the target really brings the MDE under the gate.
    for fix in report.fixes:
        if fix.startswith(("1", "2", "3", "4", "5", "6", "7", "8", "9")) and "c prompts" in fix:
            k = int(fix.split()[0])
            assert (
                minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025, prompts=k)
                <= 1.0
            )
            assert (
                minimum_detectable_effect(
                    noise, "c", threshold=0.5, confirm_alpha=0.025, prompts=k - 1
                )
                > 1.0
            )
    # A campaign asking what the noise can resolve passes.
    ok = Objective(
        target="c",
        guards=["g"],
        min_improvement=2.0,
        guard_tolerance=report.guard_tolerance_needed["g"],
    )
    assert power_report(noise, ok, max_confirmations=2).underpowered == []
    # max_mde overrides the default 2 x min_improvement.
    loose = Objective(target="c", guards=[], min_improvement=0.5, max_mde=report.mde + 0.01)
    assert power_report(noise, loose, max_confirmations=2).underpowered == []
    assert report.to_dict()["table"][0]["repeats"] == 1

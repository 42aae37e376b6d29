"""Table tests of agent/stats.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.campaign import Objective
from agent.stats import (
    NoiseModel,
    bootstrap_means,
    build_noise_model,
    category_means,
    critical_prompts,
    guard_min_tolerance,
    holm,
    minimum_detectable_effect,
    p_at_most,
    paired_bootstrap_ci,
    percentile_interval,
    poisson_sf,
    power_report,
    power_table,
    prompt_means,
    two_stage_pass_probability,
)
from probes.spec import Score


def S(pid: str, cat: str, score: float, repeat: int = 0, critical: bool = False) -> Score:
    return Score(pid, cat, score, repeat=repeat, critical=critical)


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


@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [
        (0, 1.0, 1.0),
        (1, 0.0, 0.0),
        (1, 1.0, 1 - math.exp(-1)),
        (2, 0.5, 1 - 1.5 * math.exp(-0.5)),
        (3, 2.0, 1 - 5 * math.exp(-2)),
    ],
)
def test_poisson_sf(k: int, lam: float, expected: float) -> None:
    assert poisson_sf(k, lam) == pytest.approx(expected)


def test_prompt_means_average_repeats_within_a_run_first() -> None:
    run_a = [S("p", "c", 0.0, 0), S("p", "c", 2.0, 1), S("p", "c", 4.0, 2)]  # mean 2
    run_b = [S("p", "c", 6.0)]  # one repeat
    assert prompt_means([run_a, run_b]) == {("c", "p"): 4.0}
    assert category_means([run_a, run_b]) == {"c": 4.0}


def test_bootstrap_is_seeded_and_centered() -> None:
    diffs = [0.5, -0.2, 1.0, 0.3, 0.1, 0.7, -0.4, 0.2]
    a = bootstrap_means(diffs, samples=500, seed=3)
    b = bootstrap_means(diffs, samples=500, seed=3)
    assert np.array_equal(a, b)
    assert a.mean() == pytest.approx(np.mean(diffs), abs=0.05)
    # The n/(n-1) correction makes the spread estimate the unbiased standard error.
    se = np.std(diffs, ddof=1) / math.sqrt(len(diffs))
    big = bootstrap_means(diffs, samples=20000, seed=1)
    assert big.std() == pytest.approx(se, rel=0.05)


def test_extra_sd_widens_the_interval() -> None:
    diffs = list(np.linspace(-1, 1, 30))
    lo0, hi0 = percentile_interval(bootstrap_means(diffs, seed=0), 0.05)
    lo1, hi1 = percentile_interval(bootstrap_means(diffs, seed=0, extra_sd=0.5), 0.05)
    assert hi1 - lo1 > (hi0 - lo0) * 1.5


def test_p_value_matches_interval() -> None:
    reps = bootstrap_means([0.3, 0.5, 0.1, 0.6, 0.4, 0.2, 0.7, 0.0], seed=0)
    lo, _hi = percentile_interval(reps, 0.05)
    assert p_at_most(reps, lo - 0.01) < 0.05 < p_at_most(reps, lo + 0.01)


def test_paired_bootstrap_ci_edge_cases() -> None:
    assert paired_bootstrap_ci([]) == (0.0, 0.0)
    assert paired_bootstrap_ci([0.4]) == pytest.approx((0.4, 0.4))


def test_critical_prompts_need_a_majority_of_repeats() -> None:
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
    ]
    assert critical_prompts(run, ["c"]) == {"c": 1}
    assert critical_prompts(run, ["c"], critical_below=3.0) == {"c": 2}
    assert critical_prompts(run, ["c"], critical_below=8.0, higher_is_better=False) == {"c": 1}


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


def test_noise_model_recovers_the_components() -> None:
    noise = build_noise_model(_world_runs(12, 4, shift=0.3, u=0.5, e=1.0), None)
    assert noise.seeds == 12 and noise.repeats == 4 and noise.n_prompts == {"c": 400}
    assert noise.repeat_sd["c"] == pytest.approx(1.0, rel=0.05)
    assert noise.prompt_sd["c"] == pytest.approx(math.sqrt(0.25 + 1.0 / 4 + 0.09), rel=0.05)
    assert noise.seed_component_sd["c"] == pytest.approx(0.3, rel=0.35)
    assert noise.seed_spread("c") == pytest.approx(math.sqrt(0.09 + 0.5 / 400), rel=0.35)
    assert noise.seed_component_dof == 11


def test_noise_model_without_repeats_has_no_repeat_spread() -> None:
    noise = build_noise_model(_world_runs(3, 1, shift=0.0, u=0.5, e=1.0), None)
    assert noise.repeat_sd == {} and not noise.eval_spread_measured("c")


def test_noise_model_round_trips() -> None:
    noise = build_noise_model(_world_runs(3, 2, shift=0.1, u=0.5, e=1.0, n=20), None)
    again = NoiseModel.from_dict(noise.to_dict())
    assert again == noise
    # Older stored dicts (fewer keys) still load.
    assert NoiseModel.from_dict({"seed_sd": {"c": 0.2}, "seeds": 2}).seed_spread("c") == 0.2


def _model(
    n: int = 30, u: float = 0.3, e: float = 1.5, t: float = 0.05, r: int = 3, s: int = 3
) -> NoiseModel:
    return NoiseModel(
        prompt_sd={"c": math.sqrt(u * u + e * e / r)},
        n_prompts={"c": n},
        seeds=s,
        repeats=r,
        repeat_sd={"c": e},
        seed_component_sd={"c": t},
        seed_sd={"c": 0.2},
    )


def test_single_run_mde_is_the_textbook_formula() -> None:
    noise = _model(t=0.0)
    sd = math.sqrt((0.09 + 2.25 / 3) / 30 * (1 + 1 / 3))
    assert minimum_detectable_effect(noise, "c", confirmation=False) == pytest.approx(
        (1.6449 + 0.8416) * sd, rel=1e-3
    )


def test_two_stage_power_matches_simulation() -> None:
    rng = np.random.default_rng(0)
    sd1, sd2, effect = 1.0, 0.8, 2.5
    # D1 = a1 - b, D12 = (a1 + a2)/2 - b with Var(a) = x, Var(b) = y: x + y = 1, x/2 + y = .64
    x, y = 0.72, 0.28
    a1, a2, b = (rng.normal(0, math.sqrt(v), 200_000) for v in (x, x, y))
    d1, d12 = effect + a1 - b, effect + (a1 + a2) / 2 - b
    sim = np.mean((d1 - 1.6449 * sd1 > 0) & (d12 - 2.5758 * sd2 > 0))
    assert two_stage_pass_probability(effect, sd1, sd2, alpha=0.05, confirm_alpha=0.005) == (
        pytest.approx(sim, abs=0.01)
    )


def test_mde_power_at_the_mde_is_80_percent() -> None:
    noise = _model()
    mde = minimum_detectable_effect(noise, "c")
    sd1, sd2 = noise.diff_sd("c", probe_runs=1), noise.diff_sd("c", probe_runs=2)
    assert two_stage_pass_probability(mde, sd1, sd2) == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize(
    ("override", "smaller"),
    [
        ({"repeats": 8}, True),
        ({"prompts": 120}, True),
        ({"seeds": 8}, True),
        ({"repeats": 1}, False),
    ],
)
def test_mde_moves_with_the_levers(override: dict, smaller: bool) -> None:
    noise = _model()
    base = minimum_detectable_effect(noise, "c")
    assert (minimum_detectable_effect(noise, "c", **override) < base) is smaller


def test_mde_seed_component_is_a_floor() -> None:
    # With a large training-seed shift, more prompts or repeats cannot push the MDE below it.
    noise = _model(t=0.5)
    assert minimum_detectable_effect(noise, "c", prompts=100_000, repeats=100) > 0.5


def test_power_table_rows() -> None:
    rows = power_table(_model(), "c", [1, 2, 3, 5, 8])
    assert [r.repeats for r in rows] == [1, 2, 3, 5, 8]
    mdes = [r.mde for r in rows]
    assert mdes == sorted(mdes, reverse=True)
    assert all(r.mde >= r.mde_single_run for r in rows)
    assert rows[0].to_dict()["prompts"] == 30


def test_guard_tolerance_grows_with_guards() -> None:
    noise = _model()
    assert guard_min_tolerance(noise, "c", guards=3) > guard_min_tolerance(noise, "c", guards=1)


def test_power_report_warns_and_names_fixes() -> None:
    noise = _model()
    noise = NoiseModel(
        **{
            **noise.to_dict(),
            "prompt_sd": {"c": noise.prompt_sd["c"], "g": 1.0},
            "n_prompts": {"c": 30, "g": 10},
            "seed_component_sd": {"c": 0.05, "g": 0.05},
        }
    )
    objective = Objective(target="c", guards=["g"], min_improvement=0.3, guard_tolerance=0.2)
    report = power_report(noise, objective)
    assert report.mde > 0.3
    assert any("min_improvement 0.30" in w for w in report.warnings)
    assert any("guard g" in w for w in report.warnings)
    assert any("prompts" in f for f in report.fixes)
    assert any("eval_repeats" in f for f in report.fixes)
    # And silence when the setup is good enough.
    ok = Objective(target="c", guards=["g"], min_improvement=2.0, guard_tolerance=3.0)
    assert power_report(noise, ok).warnings == []
    assert report.to_dict()["table"][0]["repeats"] == 1


def test_cluster_bootstrap_resamples_groups_not_prompts() -> None:
    import numpy as np

    from agent.stats import bootstrap_means

    rng = np.random.default_rng(0)
    facts = rng.normal(0.5, 1.0, size=20)
    diffs = np.repeat(facts, 2)  # every fact asked twice: 40 prompts, 20 pieces of evidence
    labels = [f"fact-{i // 2}" for i in range(40)]
    flat = bootstrap_means(diffs, samples=4000, seed=1)
    grouped = bootstrap_means(diffs, samples=4000, seed=1, clusters=labels)
    assert float(np.mean(grouped)) == pytest.approx(float(diffs.mean()), abs=0.02)
    # Treating the copies as independent understates the standard error by about sqrt(2).
    assert float(np.std(grouped)) / float(np.std(flat)) == pytest.approx(2**0.5, rel=0.1)
    # Unique labels are exactly the prompt bootstrap.
    same = bootstrap_means(diffs, samples=4000, seed=1, clusters=[str(i) for i in range(40)])
    assert np.array_equal(same, flat)

"""Edge and hand-computed tests of agent/stats.py, written from its mutation survivors.

Every expectation here is computed independently of agent/stats.py: the variance
decomposition and the noise model with numpy from the formulas in the docstrings, t and
noncentral t figures with scipy.stats, the MDE against a bivariate-normal computation, and
each lever of a power report by a brute-force scan instead of the module's binary search.
"""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps
from scipy.special import gammaln

from agent.campaign import Objective
from agent.stats import (
    DiffTest,
    NoiseModel,
    PowerReport,
    PowerRow,
    _guard_fix,
    _levers,
    _needed_shifts,
    _seeds_and_prompts,
    _smallest,
    _standard_draws,
    _what_if,
    anscombe,
    build_noise_model,
    c4,
    confirmation_alpha,
    critical_prompts,
    guard_min_tolerance,
    keep_probability,
    minimum_detectable_effect,
    power_report,
    repeats_of,
    t_sf,
)
from probes.spec import Score

OPTIMISTIC = (
    " (optimistic: with one eval per prompt, eval noise was not separated from training noise)"
)


def S(pid: str, cat: str, score: float, repeat: int = 0, critical: bool = False) -> Score:
    return Score(pid, cat, score, repeat=repeat, critical=critical)


def c4_by_gamma(k: float) -> float:
    return math.sqrt(2.0 / k) * math.exp(gammaln((k + 1) / 2) - gammaln(k / 2))


# ---- distributions ---------------------------------------------------------------------------


def test_t_sf_at_infinity_and_with_infinite_dof() -> None:
    assert t_sf(math.inf, 3) == 0.0
    assert t_sf(-math.inf, 3) == 1.0
    assert t_sf(math.inf, math.inf) == 0.0
    assert t_sf(-math.inf, math.inf) == 1.0
    for x in (-1.3, 0.4, 2.2):
        assert t_sf(x, math.inf) == pytest.approx(sps.norm.sf(x), rel=1e-9)
        assert t_sf(x, 4) == pytest.approx(sps.t.sf(x, 4), rel=1e-9)
        assert t_sf(x, 1.5) == pytest.approx(sps.t.sf(x, 1.5), rel=1e-9)


def test_c4_edges_and_the_cutoff() -> None:
    for k in (0.5, 1, 2, 3, 7, 50, 300):
        assert c4(k) == pytest.approx(c4_by_gamma(k), rel=1e-10)
    assert c4(300) < 1.0  # 300 is still computed: the cut-off is strictly above it
    assert c4(300.5) == 1.0 and c4(1000) == 1.0 and c4(math.inf) == 1.0
    assert c4(0) == 1.0 and c4(-2) == 1.0


def test_diff_test_with_a_zero_or_negative_se() -> None:
    assert DiffTest(1.0, 0.0, 3).p_above(0.5) == 0.0
    assert DiffTest(1.0, 0.0, 3).p_below(0.5) == 1.0
    assert DiffTest(0.2, 0.0, 3).p_above(0.5) == 1.0
    assert DiffTest(0.2, 0.0, 3).p_below(0.5) == 0.0
    assert DiffTest(0.5, 0.0, 3).p_above(0.5) == pytest.approx(0.5)  # t = 0
    assert DiffTest(1.0, -1.0, 3).p_above(0.0) == 0.0  # a negative SE counts as none
    test = DiffTest(0.7, 0.3, 5.0)
    assert test.p_above(0.1) == pytest.approx(sps.t.sf(2.0, 5), rel=1e-9)
    assert test.p_below(0.1) == pytest.approx(sps.t.cdf(2.0, 5), rel=1e-9)
    lo, hi = test.interval(0.05)
    half = sps.t.ppf(0.95, 5) * 0.3
    assert (lo, hi) == pytest.approx((0.7 - half, 0.7 + half), rel=1e-9)


# ---- small helpers ---------------------------------------------------------------------------


def test_confirmation_alpha_refuses_index_zero() -> None:
    with pytest.raises(ValueError, match=r"^confirmations are counted from 1$"):
        confirmation_alpha(0, None)
    assert confirmation_alpha(3, 2) == 0.0
    assert confirmation_alpha(3, 3) == pytest.approx(0.05 / 8 * 2)


def test_anscombe_and_repeats_of() -> None:
    assert anscombe(0) == pytest.approx(2 * math.sqrt(3 / 8))
    assert anscombe(5) == pytest.approx(2 * math.sqrt(5.375))
    assert repeats_of([]) == 0
    run = [S("a", "c", 1, 0), S("a", "c", 1, 1), S("b", "c", 1, 0), S("a", "d", 1, 0)]
    assert repeats_of(run) == 2


def test_critical_prompts_skip_other_categories_and_name_every_wanted_one() -> None:
    run = [
        S("x", "other", 0.0, critical=True),
        S("a", "c", 0.0, critical=True),
        S("y", "other", 0.0, critical=True),
        S("b", "c", 5.0),
    ]
    assert critical_prompts(run, ["c", "empty"]) == {"c": 1, "empty": 0}
    assert critical_prompts(run, ["c"], critical_below=6.0) == {"c": 2}
    assert critical_prompts(run, ["c"], critical_below=5.0) == {"c": 1}  # strictly below
    assert critical_prompts(run, ["c"], critical_below=5.0, higher_is_better=False) == {"c": 1}
    assert critical_prompts(run, ["c"], critical_below=4.0, higher_is_better=False) == {"c": 2}


def test_smallest_is_the_first_true_value() -> None:
    for cut in range(3, 12):
        assert _smallest(range(3, 11), lambda v, cut=cut: v >= cut) == (cut if cut < 11 else None)
    assert _smallest(range(5, 5), lambda v: True) is None
    assert _smallest(range(5, 6), lambda v: True) == 5


# ---- the noise model's parts and what-ifs ----------------------------------------------------


def _parts_model(**kw) -> NoiseModel:
    base = dict(
        seed_sd={"c": 0.5},
        dof={"c": 2.0},
        n_prompts={"c": 10},
        seeds=3,
        repeats=2,
        prompt_sd={"c": 0.8},
        repeat_sd={"c": 0.6},
        seed_component_sd={"c": 0.3},
    )
    base.update(kw)
    return NoiseModel(**base)


def test_run_variance_scales_the_decomposed_variance_by_hand() -> None:
    # t = 0.3^2, e = 0.6^2, u = 0.8^2 - e / 2 (repeats 2), n0 = 10
    noise = _parts_model()
    t, e, u = 0.09, 0.36, 0.64 - 0.18
    now = t + (u + e / 2) / 10
    assert noise.run_variance("c") == pytest.approx(0.25)
    assert noise.run_variance("c", repeats=4, prompts=20) == pytest.approx(
        0.25 * (t + (u + e / 4) / 20) / now
    )
    assert noise.run_variance("c", repeats=4) == pytest.approx(0.25 * (t + (u + e / 4) / 10) / now)
    assert noise.run_variance("c", prompts=20) == pytest.approx(0.25 * (t + (u + e / 2) / 20) / now)
    assert noise.run_variance("c", repeats=1) == pytest.approx(0.25 * (t + (u + e) / 10) / now)


def test_run_variance_truncates_training_noise_at_zero() -> None:
    noise = _parts_model(repeat_sd={"c": 1.2})  # e / r = 0.72 > w = 0.64: u = 0
    t, e = 0.09, 1.44
    now = t + (e / 2) / 10
    assert noise.run_variance("c", repeats=4, prompts=20) == pytest.approx(
        0.25 * (t + (e / 4) / 20) / now
    )


def test_run_variance_without_measured_repeats_counts_everything_as_eval_noise() -> None:
    noise = _parts_model(repeat_sd={})  # e = w * r, u = 0
    t, e = 0.09, 0.64 * 2
    now = t + (e / 2) / 10
    assert noise.run_variance("c", repeats=4) == pytest.approx(0.25 * (t + (e / 4) / 10) / now)
    one = _parts_model(repeat_sd={}, repeats=1)
    now1 = t + 0.64 / 10
    assert one.run_variance("c", repeats=2) == pytest.approx(0.25 * (t + 0.32 / 10) / now1)
    assert one.run_variance("c", prompts=5) == pytest.approx(0.25 * (t + 0.64 / 5) / now1)
    zero = _parts_model(repeat_sd={}, repeats=0)  # read as one repeat
    assert zero.run_variance("c", repeats=2) == pytest.approx(0.25 * (t + 0.32 / 10) / now1)
    zero_sep = _parts_model(repeats=0)  # separable, repeats 0 read as 1: u = 0.64 - 0.36
    now0 = t + (0.28 + 0.36) / 10
    assert zero_sep.run_variance("c", repeats=2) == pytest.approx(
        0.25 * (t + (0.28 + 0.18) / 10) / now0
    )


def test_run_variance_degenerate_cases() -> None:
    flat = _parts_model(prompt_sd={}, repeat_sd={}, seed_component_sd={})
    assert flat.run_variance("c", repeats=4, prompts=20) == pytest.approx(0.25)
    assert _parts_model(n_prompts={}).run_variance("c") == math.inf
    assert _parts_model(n_prompts={"c": 0}).run_variance("c", repeats=3) == math.inf
    assert _parts_model(seed_sd={}).run_variance("c") == 0.0
    assert _parts_model(seed_sd={}).seed_spread("c") == 0.0


def test_diff_sd_by_hand() -> None:
    noise = _parts_model()
    assert noise.diff_sd("c") == pytest.approx(math.sqrt(0.25 * (1 + 1 / 3)))
    assert noise.diff_sd("c", probe_runs=2) == pytest.approx(math.sqrt(0.25 * (0.5 + 1 / 3)))
    assert noise.diff_sd("c", seeds=6) == pytest.approx(math.sqrt(0.25 * (1 + 1 / 6)))
    assert _parts_model(seeds=0).diff_sd("c") == pytest.approx(math.sqrt(0.25 * 2))
    v = noise.run_variance("c", prompts=20)
    assert noise.diff_sd("c", prompts=20) == pytest.approx(math.sqrt(v * (1 + 1 / 3)))
    t, e, u = 0.09, 0.36, 0.46
    v = 0.25 * (t + (u + e / 4) / 20) / (t + (u + e / 2) / 10)
    assert noise.diff_sd("c", repeats=4, prompts=20) == pytest.approx(math.sqrt(v * (1 + 1 / 3)))


def test_dof_of_and_critical_dof() -> None:
    assert _parts_model(dof={"c": 5.0}).dof_of("c") == 5.0
    assert _parts_model(dof={"c": 1.5}).dof_of("c") == 1.5
    assert _parts_model(dof={"c": 0.0}).dof_of("c") == 1.0
    assert _parts_model(dof={}, seeds=5).dof_of("c") == 4.0
    assert _parts_model(dof={}, seeds=1).dof_of("c") == 1.0
    assert _parts_model(dof={}, seeds=0).dof_of("c") == 1.0
    assert NoiseModel(seeds=4, replicate_runs=2).critical_dof() == 5.0
    assert NoiseModel(seeds=1).critical_dof() == 1.0
    assert NoiseModel(seeds=0).critical_dof() == 1.0


def test_eval_spread_measured() -> None:
    assert _parts_model().eval_spread_measured("c")
    assert not _parts_model(repeat_sd={}).eval_spread_measured("c")


def test_from_dict_reads_old_and_loose_records() -> None:
    old = NoiseModel.from_dict(
        {"seed_sd": {"a": 0.2, "b": 0.3}, "seeds": 4, "n_prompts": {"a": 30.0, "b": "12"}}
    )
    assert old.dof == {"a": 3.0, "b": 3.0}
    assert all(type(v) is float for v in old.dof.values())
    assert old.n_prompts == {"a": 30, "b": 12}
    assert all(type(v) is int for v in old.n_prompts.values())
    assert NoiseModel.from_dict({"seed_sd": {"a": 0.2}}).dof == {"a": 1.0}  # seeds read as 2
    assert NoiseModel.from_dict({"seed_sd": {"a": 0.2}, "seeds": 1}).dof == {"a": 1.0}
    assert NoiseModel.from_dict({"seed_sd": {"a": 0.2}, "seeds": 6}).dof == {"a": 5.0}
    assert NoiseModel.from_dict({"seeds": 6}).dof == {}
    kept = NoiseModel.from_dict({"seed_sd": {"a": 0.2}, "seeds": 6, "dof": {"a": 9.0}})
    assert kept.dof == {"a": 9.0}
    assert NoiseModel.from_dict({"unknown": 1, "seeds": 3}).seeds == 3


def test_every_field_round_trips() -> None:
    noise = NoiseModel(
        seed_sd={"a": 0.4},
        dof={"a": 7.0},
        n_prompts={"a": 12},
        seeds=5,
        repeats=3,
        prompt_sd={"a": 0.9},
        repeat_sd={"a": 0.5},
        seed_component_sd={"a": 0.2},
        baseline_mean={"a": 4.5},
        critical_per_run={"a": 1.5},
        critical_mean=2.5,
        critical_sd=0.7,
        replicate_runs=3,
    )
    data = noise.to_dict()
    assert data["replicate_runs"] == 3 and data["critical_sd"] == 0.7 and data["repeats"] == 3
    assert NoiseModel.from_dict(data) == noise


# ---- build_noise_model by hand -----------------------------------------------------------------

# run -> category -> prompt -> repeat scores. Category a: p3 is missing from run 2, so only
# p1 and p2 are comparable; category b shares no prompt between runs.
BASE = [
    {"a": {"p1": [1.0, 3.0], "p2": [4.0, 4.5], "p3": [0.5, 1.5]}, "b": {"q1": [5.0]}},
    {"a": {"p1": [3.0, 3.5], "p2": [7.0, 6.0], "p3": [2.0, 2.0]}, "b": {"q2": [1.0]}},
    {"a": {"p1": [0.5, 1.0], "p2": [5.0, 6.0]}, "b": {"q1": [6.0, 1.0]}},
]
PAIR = [
    {"a": {"p1": [2.0, 2.0], "p2": [5.0, 5.0]}},
    {"a": {"p1": [1.0, 1.0], "p2": [4.0, 3.0], "p4": [0.0, 0.0]}},
]


def _runs(spec: list[dict]) -> list[list[Score]]:
    return [
        [
            S(p, c, v, r)
            for c, prompts in run.items()
            for p, values in prompts.items()
            for r, v in enumerate(values)
        ]
        for run in spec
    ]


def test_build_noise_model_every_number_by_hand() -> None:
    objective = Objective(target="a", guards=["b"], critical_below=2.0)
    base = _runs(BASE)
    pair = _runs(PAIR)
    lone = _runs(PAIR[:1])
    noise = build_noise_model([*base, []], objective, replicates=[pair, lone, [lone[0], []]])

    # Category a on its shared prompts p1, p2: per-run prompt means as a (runs, prompts) array.
    m = np.array([[np.mean(run["a"][p]) for p in ("p1", "p2")] for run in BASE])
    run_means = m.mean(axis=1)
    pm = np.array([[np.mean(run["a"][p]) for p in ("p1", "p2")] for run in PAIR]).mean(axis=1)
    ss = np.var(run_means, ddof=1) * 2 + np.var(pm, ddof=1) * 1
    assert noise.seeds == 3 and noise.repeats == 2 and noise.replicate_runs == 1
    assert noise.n_prompts == {"a": 2, "b": 0}
    assert noise.dof == {"a": 3.0, "b": 0.0}
    assert noise.seed_sd["a"] == pytest.approx(math.sqrt(ss / 3))
    assert noise.seed_sd["b"] == 0.0
    assert noise.baseline_mean == pytest.approx({"a": run_means.mean(), "b": 0.0})
    dev = m - run_means[:, None]
    w = np.var(dev, axis=0, ddof=1).mean() * 2 / 1
    assert noise.prompt_sd == pytest.approx({"a": math.sqrt(w)})
    comp = math.sqrt(max(0.0, np.var(run_means, ddof=1) - w / 2))
    assert comp > 0
    assert noise.seed_component_sd == pytest.approx({"a": comp})
    # Repeats pooled over every prompt of every baseline run (p3 included): 2 repeats each,
    # one dof per prompt, so the pooled variance is the plain mean of the pair variances.
    pairs = [v for run in BASE for v in run["a"].values()]
    assert noise.repeat_sd == pytest.approx(
        {"a": math.sqrt(np.mean([np.var(v, ddof=1) for v in pairs]))}
    )

    # Critical: a prompt counts when more than half its repeats score below 2.
    # Base runs: run 0 a:{p3} b:{} -> 1; run 1 a:{} b:{q2} -> 1; run 2 a:{p1} b:{} (q1 tie) -> 1
    assert noise.critical_per_run == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert noise.critical_mean == pytest.approx(1.0)
    pair_counts = [0, 2]  # PAIR run 1: p1 and p4 below 2
    crit_ss = np.var([2 * math.sqrt(c + 0.375) for c in pair_counts], ddof=1)
    assert noise.critical_sd == pytest.approx(math.sqrt(crit_ss / 3))


def test_build_noise_model_without_objective_or_runs() -> None:
    noise = build_noise_model(_runs(BASE[:2]))
    assert noise.seeds == 2 and noise.dof == {"a": 1.0, "b": 0.0}
    assert noise.replicate_runs == 0
    assert set(noise.critical_per_run) == {"a", "b"}
    empty = build_noise_model([[], []])
    assert empty.seeds == 0 and empty.repeats == 1 and empty.seed_sd == {}
    assert empty.critical_mean == 0.0 and empty.critical_sd == 0.0
    one = build_noise_model(_runs(BASE[:1]))
    assert one.seed_sd == {"a": 0.0, "b": 0.0} and one.dof == {"a": 0.0, "b": 0.0}
    assert one.critical_sd == 0.0


# ---- the simulation's draws and the shifts each draw needs -------------------------------------


def test_standard_draws_are_the_seeded_stream() -> None:
    text = "mde:3:2.0"
    rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:15], 16))
    z1, z2, zb = (rng.standard_normal(20_000) for _ in range(3))
    q = rng.chisquare(2.0, 20_000) / 2.0
    d = _standard_draws(text, 2.0)
    assert set(d) == {"z1", "z2", "zb", "q"}
    for name, want in (("z1", z1), ("z2", z2), ("zb", zb), ("q", q)):
        np.testing.assert_array_equal(d[name], want)
    flat = _standard_draws(text, math.inf)
    np.testing.assert_array_equal(flat["q"], np.ones(20_000))
    np.testing.assert_array_equal(flat["z1"], z1)


def test_needed_shifts_by_hand() -> None:
    d = {
        "z1": np.array([0.0, 1.0, -0.5, 2.0]),
        "z2": np.array([0.3, -1.0, 0.5, 0.0]),
        "zb": np.array([1.0, 0.0, -2.0, 0.4]),
        "q": np.array([1.0, 0.5, 2.0, 0.0]),
    }
    seeds, dof = 4, 3.0
    c1, c2 = sps.t.ppf(0.9, dof), sps.t.ppf(0.99, dof)
    se = np.sqrt(d["q"] * (1 + 1 / seeds))
    zb = d["zb"] / 2.0
    want = np.maximum(c1 * se - d["z1"] + zb, c2 * se - d["z2"] + zb)
    got = _needed_shifts(d, seeds=seeds, dof=dof, screen_alpha=0.1, confirm_alpha=0.01)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for level in (0.0, -0.1):
        none = _needed_shifts(d, seeds=seeds, dof=dof, screen_alpha=0.1, confirm_alpha=level)
        np.testing.assert_array_equal(none, np.full(4, np.inf))


def _bivariate_keep(x: float, seeds: int, c1: float, c2: float) -> float:
    """P(both tests pass) for a standardized effect x with the noise known (dof = inf):
    the two runs' errors minus the shared baseline mean are bivariate normal."""
    v, cov = 1 + 1 / seeds, 1 / seeds
    se = math.sqrt(v)
    mvn = sps.multivariate_normal(mean=[0, 0], cov=[[v, cov], [cov, v]])
    return float(mvn.cdf([x - c1 * se, x - c2 * se]))


def test_keep_probability_with_known_noise_is_a_bivariate_normal() -> None:
    c1, c2 = sps.norm.ppf(0.95), sps.norm.ppf(0.975)
    for x in (1.5, 3.0, 4.0):
        got = keep_probability(0.2 + 0.5 * x, sd=0.5, seeds=3, dof=math.inf, threshold=0.2)
        assert got == pytest.approx(_bivariate_keep(x, 3, c1, c2), abs=0.012)
    loose = keep_probability(1.0, sd=0.5, seeds=3, dof=math.inf, confirm_alpha=0.2)
    assert loose == pytest.approx(_bivariate_keep(2.0, 3, c1, sps.norm.ppf(0.8)), abs=0.012)
    screen = keep_probability(1.0, sd=0.5, seeds=3, dof=math.inf, screen_alpha=0.3)
    assert screen == pytest.approx(_bivariate_keep(2.0, 3, sps.norm.ppf(0.7), c2), abs=0.012)


def test_keep_probability_without_noise_and_without_level() -> None:
    assert keep_probability(0.5, sd=0.0, seeds=3, dof=2, threshold=0.4) == 1.0
    assert keep_probability(0.4, sd=0.0, seeds=3, dof=2, threshold=0.4) == 0.0
    assert keep_probability(0.3, sd=-1.0, seeds=3, dof=2, threshold=0.4) == 0.0
    assert keep_probability(9.0, sd=0.1, seeds=3, dof=2, confirm_alpha=0.0) == 0.0
    assert keep_probability(math.inf, sd=0.1, seeds=3, dof=2, confirm_alpha=0.0) == 0.0


def _mde_model(sd: float = 0.5, dof: float = 4.0, seeds: int = 3) -> NoiseModel:
    return NoiseModel(
        seed_sd={"c": sd},
        dof={"c": dof},
        n_prompts={"c": 20},
        seeds=seeds,
        prompt_sd={"c": 1.0},
        seed_component_sd={"c": 0.2},
    )


def test_the_mde_with_known_noise_is_the_bivariate_quantile() -> None:
    noise = _mde_model(dof=math.inf)
    c1, c2 = sps.norm.ppf(0.95), sps.norm.ppf(0.975)
    x = optimize.brentq(lambda v: _bivariate_keep(v, 3, c1, c2) - 0.8, 0, 10)
    mde = minimum_detectable_effect(noise, "c", threshold=0.2)
    assert mde == pytest.approx(0.2 + 0.5 * x, rel=0.01)
    x6 = optimize.brentq(lambda v: _bivariate_keep(v, 6, c1, c2) - 0.8, 0, 10)
    assert minimum_detectable_effect(noise, "c", threshold=0.2, seeds=6) == pytest.approx(
        0.2 + 0.5 * x6, rel=0.01
    )
    x5 = optimize.brentq(lambda v: _bivariate_keep(v, 3, c1, c2) - 0.5, -5, 10)
    assert minimum_detectable_effect(noise, "c", power=0.5) == pytest.approx(0.5 * x5, rel=0.01)
    xs = optimize.brentq(
        lambda v: _bivariate_keep(v, 3, sps.norm.ppf(0.9), sps.norm.ppf(0.99)) - 0.8, 0, 10
    )
    assert minimum_detectable_effect(
        noise, "c", screen_alpha=0.1, confirm_alpha=0.01
    ) == pytest.approx(0.5 * xs, rel=0.01)


@pytest.mark.parametrize(("power", "at"), [(0.8, 16_000), (0.80001, 16_001), (1.0, 20_000)])
def test_the_mde_is_the_power_quantile_of_keep_probabilitys_draws(power: float, at: int) -> None:
    # keep_probability with seed text "mde" uses the very draws of the MDE: just above the MDE
    # the rule keeps `at` draws of 20,000, just below it one fewer.
    noise = _mde_model()
    sd = 0.5 / c4_by_gamma(4.0)
    mde = minimum_detectable_effect(noise, "c", threshold=0.3, confirm_alpha=0.02, power=power)
    kw = dict(sd=sd, seeds=3, dof=4.0, threshold=0.3, confirm_alpha=0.02, seed_text="mde")
    above = keep_probability(0.3 + (mde - 0.3) * (1 + 1e-9), **kw)
    below = keep_probability(0.3 + (mde - 0.3) * (1 - 1e-9), **kw)
    assert (above, below) == (at / 20_000, (at - 1) / 20_000)


def test_mde_edges() -> None:
    noise = _mde_model()
    assert minimum_detectable_effect(noise, "other") == math.inf
    assert minimum_detectable_effect(_mde_model().__class__(n_prompts={"c": 0}), "c") == math.inf
    assert minimum_detectable_effect(noise, "c", confirm_alpha=0.0) == math.inf
    assert minimum_detectable_effect(noise, "c", confirm_alpha=-0.1) == math.inf
    assert minimum_detectable_effect(noise, "c", screen_alpha=0.0) == math.inf
    flat = _mde_model(sd=0.0)
    assert minimum_detectable_effect(flat, "c", threshold=0.4) == 0.4
    assert minimum_detectable_effect(flat, "c", threshold=0.4, screen_alpha=0.0) == 0.4


def test_what_if_by_hand() -> None:
    noise = _parts_model(dof={"c": 5.0})  # 3 seeds + 2 replicate runs
    assert _what_if(noise, "c", None, None, None) == pytest.approx((3, 5.0, 0.5 / c4_by_gamma(5)))
    assert _what_if(noise, "c", None, None, 6) == pytest.approx((6, 8.0, 0.5 / c4_by_gamma(8)))
    assert _what_if(noise, "c", None, None, 2) == pytest.approx((2, 4.0, 0.5 / c4_by_gamma(4)))
    t, e, u = 0.09, 0.36, 0.46
    v = 0.25 * (t + (u + e / 4) / 20) / (t + (u + e / 2) / 10)
    assert _what_if(noise, "c", 4, 20, None) == pytest.approx(
        (3, 5.0, math.sqrt(v) / c4_by_gamma(5))
    )
    unseeded = _parts_model(dof={"c": 5.0}, seeds=0)
    assert _what_if(unseeded, "c", None, None, None) == pytest.approx(
        (2, 5.0, 0.5 / c4_by_gamma(5))
    )


def _tolerance_by_nct(sd: float, seeds: int, dof: float, power: float, alpha: float) -> float:
    se = sd / c4_by_gamma(dof) * math.sqrt(1 + 1 / seeds)
    crit = sps.t.ppf(1 - alpha, dof)
    ncp = optimize.brentq(lambda d: sps.nct.sf(crit, dof, d) - power, -30, 30)
    return max(0.0, ncp * se)


def test_guard_min_tolerance_is_the_noncentral_t_solution() -> None:
    noise = _parts_model(seed_sd={"c": 0.3})
    assert guard_min_tolerance(noise, "c") == pytest.approx(
        _tolerance_by_nct(0.3, 3, 2.0, 0.8, 0.05), rel=1e-6
    )
    assert guard_min_tolerance(noise, "c", power=0.6, alpha=0.1) == pytest.approx(
        _tolerance_by_nct(0.3, 3, 2.0, 0.6, 0.1), rel=1e-6
    )
    assert guard_min_tolerance(noise, "c", seeds=7) == pytest.approx(
        _tolerance_by_nct(0.3, 7, 6.0, 0.8, 0.05), rel=1e-6
    )
    sd = math.sqrt(noise.run_variance("c", prompts=40))
    assert guard_min_tolerance(noise, "c", prompts=40) == pytest.approx(
        _tolerance_by_nct(sd, 3, 2.0, 0.8, 0.05), rel=1e-6
    )
    assert 0 < guard_min_tolerance(_parts_model(seed_sd={"c": 0.01}), "c") < 0.1
    assert guard_min_tolerance(noise, "c", alpha=0.9, power=0.05) == 0.0  # truncated at 0
    assert guard_min_tolerance(_parts_model(seed_sd={"c": 0.0}), "c") == 0.0
    assert guard_min_tolerance(_parts_model(n_prompts={"c": 0}), "c") == math.inf
    assert guard_min_tolerance(noise, "x") == math.inf


# ---- levers and power reports ------------------------------------------------------------------


def _guard_model(component: float = 0.0, repeats: int = 1, sep: bool = False) -> NoiseModel:
    return NoiseModel(
        seed_sd={"c": 0.1, "g": 0.4},
        dof={"c": 2.0, "g": 2.0},
        n_prompts={"c": 30, "g": 10},
        seeds=3,
        repeats=repeats,
        prompt_sd={"c": 1.0, "g": 1.0},
        repeat_sd={"c": 0.8, "g": 0.8} if sep else {},
        seed_component_sd={"c": 0.0, "g": component},
    )


def _first(values: range, ok) -> int | None:
    return next((v for v in values if ok(v)), None)


@pytest.mark.parametrize(
    ("component", "repeats", "sep", "have"),
    [(0.1, 1, False, 0.9), (0.1, 2, True, 1.2), (0.0, 1, False, 0.6), (0.0, 2, False, 1.9)],
)
def test_guard_fix_names_the_smallest_single_levers(
    component: float, repeats: int, sep: bool, have: float
) -> None:
    noise = _guard_model(component, repeats, sep)
    needed = guard_min_tolerance(noise, "g")
    assert needed > have

    def ok(**kw) -> bool:
        return guard_min_tolerance(noise, "g", **kw) <= have

    want = [f"objective.guard_tolerance g: {math.ceil(needed * 100) / 100:.2f}"]
    k = _first(range(11, 201), lambda v: ok(prompts=v))
    r = _first(range(repeats + 1, 33), lambda v: ok(repeats=v))
    s = _first(range(4, 17), lambda v: ok(seeds=v))
    # With one eval per prompt the eval-side levers carry the caveat: the noise they would
    # average away may be the training's (more repeats would then do nothing).
    caveat = (
        " (optimistic: with one eval per prompt, eval noise was not separated from training noise)"
    )
    unmeasured = not sep  # no separate repeat spread in the baseline
    if k:
        prompts_caveat = caveat if unmeasured and repeats == 1 else ""
        want.append(f"{k} g prompts (now 10)" + prompts_caveat)
    if r:
        want.append(f"probe.eval_repeats {r} (now {repeats})" + (caveat if unmeasured else ""))
    if s:
        want.append(f"probe.baseline_seeds {s} (now 3)")
    assert len(want) >= 3
    assert _guard_fix(noise, "g", have, needed) == " or ".join(want)


def test_levers_fall_back_to_seeds_and_prompts_together() -> None:
    noise = _guard_model(component=0.3)
    have = 0.8

    def ok(**kw) -> bool:
        return guard_min_tolerance(noise, "g", **kw) <= have

    assert not any(ok(prompts=v) for v in range(11, 201))
    assert not any(ok(repeats=v) for v in range(2, 33))
    assert not any(ok(seeds=v) for v in range(4, 17))
    k = _first(range(4, 17), lambda s: any(ok(prompts=p, seeds=s) for p in range(10, 201)))
    q = _first(range(10, 201), lambda p: ok(prompts=p, seeds=k))
    assert k is not None and q is not None
    assert _levers("g", 10, 1, 3, ok) == [f"probe.baseline_seeds {k} with {q} g prompts together"]
    assert _seeds_and_prompts(10, 3, ok) == f"probe.baseline_seeds {k} with {q}"
    assert _seeds_and_prompts(10, 3, lambda **kw: False) is None
    assert _levers("g", 10, 1, 3, lambda **kw: False) == []
    # Already enough with the current prompts and one more seed: the smallest both is n itself.
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: seeds >= 5) == (
        "probe.baseline_seeds 5 with 10"
    )


def test_levers_respect_their_ranges() -> None:
    calls: list[dict] = []

    def ok(**kw) -> bool:
        calls.append(kw)
        return kw.get("prompts", 0) >= 200 or kw.get("repeats", 0) >= 32 or kw.get("seeds", 0) >= 16

    assert _levers("c", 10, 1, 3, ok, " (x)") == [
        "200 c prompts (now 10) (x)",
        "probe.eval_repeats 32 (now 1) (x)",
        "probe.baseline_seeds 16 (now 3)",
    ]
    assert _levers("c", 10, 2, 3, ok, " (x)")[0] == "200 c prompts (now 10)"
    beyond = lambda **kw: (  # noqa: E731
        kw.get("prompts", 0) >= 201 or kw.get("repeats", 0) >= 33 or kw.get("seeds", 0) >= 17
    )
    assert _levers("c", 10, 1, 3, beyond) == []
    just = lambda **kw: (  # noqa: E731
        kw.get("prompts", 0) >= 11 or kw.get("repeats", 0) >= 2 or kw.get("seeds", 0) >= 4
    )
    assert _levers("c", 10, 1, 3, just) == [
        "11 c prompts (now 10)",
        "probe.eval_repeats 2 (now 1)",
        "probe.baseline_seeds 4 (now 3)",
    ]


def test_power_report_sentences_and_numbers() -> None:
    noise = _guard_model()
    objective = Objective(target="c", guards=["g"], min_improvement=0.5, guard_tolerance=0.2)
    report = power_report(noise, objective, max_confirmations=2)

    def mde(**kw) -> float:
        return minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025, **kw)

    value = mde()
    tol = guard_min_tolerance(noise, "g")
    assert report.mde == value and report.guard_tolerance_needed == {"g": tol}
    assert value > 1.0 and tol > 0.2
    assert report.underpowered == [
        f"target c: the smallest effect kept with 80% power is {value:.2f}, above 1.00 "
        "(objective.max_mde, default 2 x min_improvement)",
        f"guard g: tolerance 0.20 is below {tol:.2f}, the smallest an unchanged g passes with "
        "80% power (spurious refusals)",
    ]
    assert report.warnings == []
    k = int(report.fixes[0].split()[0])
    r = int(report.fixes[1].split()[1])
    s = int(report.fixes[2].split()[1])
    assert mde(prompts=k) <= 1.0 < mde(prompts=k - 1)
    assert mde(repeats=r) <= 1.0 < mde(repeats=r - 1)
    assert mde(seeds=s) <= 1.0 < mde(seeds=s - 1)
    assert report.fixes == [
        f"{k} c prompts (now 30){OPTIMISTIC}",
        f"probe.eval_repeats {r} (now 1){OPTIMISTIC}",
        f"probe.baseline_seeds {s} (now 3)",
        f"objective.max_mde {math.ceil(value * 100) / 100:.2f} (accept seeing less)",
        f"objective.guard_tolerance g: {math.ceil(tol * 100) / 100:.2f}",
    ]
    assert report.table == [
        PowerRow(repeats=j, prompts=30, seeds=3, mde=mde(repeats=j), measured=False)
        for j in (1, 2, 3, 5, 8)
    ]
    assert (report.target, report.min_improvement, report.confirm_alpha) == ("c", 0.5, 0.025)
    assert (report.max_confirmations, report.screen_alpha, report.session_alpha) == (
        2,
        0.05,
        0.05,
    )
    assert PowerReport.from_dict(report.to_dict()) == report
    assert PowerReport.from_dict({**report.to_dict(), "extra": 1}) == report
    bare = {k: v for k, v in report.to_dict().items() if k != "table"}
    assert PowerReport.from_dict(bare).table == []


def test_power_report_measured_repeats_are_not_optimistic() -> None:
    noise = _guard_model(repeats=2, sep=True)
    objective = Objective(target="c", guards=[], min_improvement=0.2)
    report = power_report(noise, objective, screen_alpha=0.1)
    assert report.confirm_alpha == 0.025 and report.screen_alpha == 0.1
    assert report.fixes and not any("optimistic" in f for f in report.fixes)
    assert all(row.measured for row in report.table)
    assert report.mde == minimum_detectable_effect(
        noise, "c", threshold=0.2, screen_alpha=0.1, confirm_alpha=0.025
    )


def test_power_report_when_no_lever_helps_and_gate_ratio() -> None:
    noise = NoiseModel(
        seed_sd={"c": 1.0},
        dof={"c": 2.0},
        n_prompts={"c": 30},
        seeds=3,
        prompt_sd={"c": 0.1},
        seed_component_sd={"c": 1.0},
    )
    objective = Objective(target="c", guards=[], min_improvement=0.05)
    report = power_report(noise, objective, max_confirmations=1, gate_ratio=3.0)
    value = minimum_detectable_effect(noise, "c", threshold=0.05, confirm_alpha=0.05)
    assert report.confirm_alpha == 0.05 and report.mde == value
    assert report.underpowered == [
        f"target c: the smallest effect kept with 80% power is {value:.2f}, above 0.15 "
        "(objective.max_mde, default 3 x min_improvement)"
    ]
    assert report.fixes == [
        "no number of c prompts, eval repeats or baseline seeds (up to 16) brings it to 0.15: "
        "the run-to-run shift of the whole category dominates",
        f"objective.max_mde {math.ceil(value * 100) / 100:.2f} (accept seeing less)",
    ]


def test_power_report_without_a_goal_or_without_prompts() -> None:
    noise = _guard_model()
    zero = power_report(noise, Objective(target="c", guards=["g"], guard_tolerance=5.0))
    value = minimum_detectable_effect(noise, "c", threshold=0.0, confirm_alpha=0.025)
    assert zero.underpowered == [] and zero.fixes == []
    assert zero.warnings == [
        "objective.min_improvement is 0: the session keeps any effect it can show, and the "
        f"smallest it shows with 80% power is {value:.2f}"
    ]
    assert zero.guard_tolerance_needed == {"g": guard_min_tolerance(noise, "g")}
    missing = power_report(noise, Objective(target="x", guards=["y", "g"], guard_tolerance=5.0))
    assert missing.underpowered == [
        "target x has no scored prompts",
        "guard y has no scored prompts",
    ]
    assert missing.warnings == [] and missing.fixes == []
    assert missing.mde == math.inf
    assert [row.mde for row in missing.table] == [math.inf] * 5
    assert [row.prompts for row in missing.table] == [0] * 5
    assert list(missing.guard_tolerance_needed) == ["g"]
    at_half = minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025)
    passing = power_report(noise, Objective(target="c", min_improvement=0.5, max_mde=at_half))
    assert passing.underpowered == [] and passing.fixes == []  # at the limit is not above it
    failing = power_report(
        noise, Objective(target="c", min_improvement=0.5, max_mde=at_half - 1e-9)
    )
    assert failing.underpowered[0].endswith(
        f"is {at_half:.2f}, above {at_half - 1e-9:.2f} (objective.max_mde, default 2 x "
        "min_improvement)"
    )


# ---- more edges found by the mutation run ------------------------------------------------------


def test_guard_min_tolerance_with_known_noise_is_the_normal_formula() -> None:
    # dof = inf: tolerance = se (z_0.95 + z_0.8); sd chosen so that se is exactly 1.
    noise = NoiseModel(
        seed_sd={"c": 1 / math.sqrt(1 + 1 / 4)}, dof={"c": math.inf}, n_prompts={"c": 5}, seeds=4
    )
    want = sps.norm.ppf(0.95) + sps.norm.ppf(0.8)
    assert guard_min_tolerance(noise, "c") == pytest.approx(want, rel=1e-5)
    assert guard_min_tolerance(_parts_model(n_prompts={"c": 0}), "c", alpha=0.9, power=0.05) == (
        math.inf
    )


def test_mde_without_prompts_or_level_is_inf_whatever_else() -> None:
    noise = _mde_model()
    # Loose levels make most needed shifts negative: without its prompt check the MDE of a
    # category with no prompts would come out as -inf (a negative quantile times an infinite SD).
    loose = dict(power=0.01, screen_alpha=0.9, confirm_alpha=0.9)
    assert minimum_detectable_effect(noise, "other", **loose) == math.inf
    empty = NoiseModel(**{**noise.to_dict(), "n_prompts": {"c": 0}})
    assert minimum_detectable_effect(empty, "c", **loose) == math.inf
    assert minimum_detectable_effect(_mde_model(sd=0.0), "c", confirm_alpha=0.0) == math.inf
    assert minimum_detectable_effect(_mde_model(sd=0.0), "other", threshold=0.4) == math.inf


def test_run_variance_with_a_single_prompt() -> None:
    one = _parts_model(n_prompts={"c": 1})
    assert one.run_variance("c") == pytest.approx(0.25)
    t, e, u = 0.09, 0.36, 0.46
    assert one.run_variance("c", prompts=2) == pytest.approx(
        0.25 * (t + (u + e / 2) / 2) / (t + (u + e / 2))
    )


def test_power_report_dict_has_exactly_its_fields() -> None:
    report = power_report(_guard_model(), Objective(target="c", guards=["g"], min_improvement=0.5))
    data = report.to_dict()
    assert set(data) == set(PowerReport.__dataclass_fields__)
    assert data["table"][1] == {
        "repeats": 2,
        "prompts": 30,
        "seeds": 3,
        "mde": report.table[1].mde,
        "measured": False,
    }


def test_holm_levels_on_ties() -> None:
    from agent.stats import holm

    assert holm([0.03, 0.03], 0.05) == [(False, 0.025), (False, 0.05)]
    assert holm([0.02, 0.02], 0.05) == [(True, 0.025), (True, 0.05)]


def test_seeds_and_prompts_ranges() -> None:
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: seeds >= 4) == (
        "probe.baseline_seeds 4 with 10"
    )
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: seeds >= 16) == (
        "probe.baseline_seeds 16 with 10"
    )
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: seeds >= 17) is None
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: prompts >= 200) == (
        "probe.baseline_seeds 4 with 200"
    )
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: prompts >= 201) is None
    assert _seeds_and_prompts(10, 3, lambda prompts, seeds: prompts >= 11 and seeds >= 6) == (
        "probe.baseline_seeds 6 with 11"
    )


def test_build_noise_model_judges_the_objectives_categories_only() -> None:
    base = _runs(BASE)
    only_a = build_noise_model(base, Objective(target="a", critical_below=2.0))
    assert only_a.critical_per_run == pytest.approx({"a": 2 / 3})
    assert only_a.critical_mean == pytest.approx(2 / 3)
    # Lower is better: a prompt is critical when most repeats score above 4. Run 0: p2
    # (4.0, 4.5) is a tie, b's q1 (5) counts; run 1: p2 (7, 6); run 2: p2 (5, 6), q1 (6, 1) tie.
    lower = build_noise_model(
        base, Objective(target="a", guards=["b"], critical_below=4.0, higher_is_better=False)
    )
    assert lower.critical_per_run == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert lower.critical_mean == pytest.approx(1.0)  # one critical prompt in each run
    nothing = build_noise_model([], Objective(target="a"))
    assert nothing.critical_per_run == {"a": 0.0} and nothing.seeds == 0


def test_build_noise_model_skips_groups_that_share_no_prompt() -> None:
    base = _runs(BASE)
    disjoint = [[S("p1", "a", 1.0)], [S("p2", "a", 9.0)]]
    empty: list[list[Score]] = []
    noise = build_noise_model(base, None, replicates=[disjoint, empty, [[], []], _runs(PAIR)])
    with_pair = build_noise_model(base, None, replicates=[_runs(PAIR)])
    assert noise.seed_sd == with_pair.seed_sd
    assert noise.dof == {"a": 3.0, "b": 0.0}  # the disjoint pair adds nothing to category a
    assert noise.replicate_runs == 2  # but its runs still count for the critical-count pool
    assert noise.critical_sd == 0.0


def test_two_runs_and_one_prompt_by_hand() -> None:
    runs = [
        [S("x", "a", 1.0), S("y", "a", 2.0), S("z", "s", 3.0), S("k", "k", 0.0, critical=True)],
        [S("x", "a", 3.0), S("y", "a", 5.0), S("z", "s", 4.0), S("k", "k", 0.0)],
    ]
    noise = build_noise_model(runs, None)
    assert noise.dof == {"a": 1.0, "k": 1.0, "s": 1.0}
    assert noise.seed_sd["a"] == pytest.approx(abs(1.5 - 4.0) / math.sqrt(2))
    assert noise.seed_sd["s"] == pytest.approx(1 / math.sqrt(2))
    # One prompt: its deviation from its run's mean is always 0.
    assert noise.prompt_sd["s"] == 0.0
    assert noise.seed_component_sd["s"] == pytest.approx(1 / math.sqrt(2))
    # Prompt deviations (x - mean, y - mean): run 0 (-0.5, 0.5), run 1 (-1, 1); each varies
    # by var([-0.5, -1]) = 0.125 across runs, n / (n - 1) = 2.
    assert noise.prompt_sd["a"] == pytest.approx(math.sqrt(0.125 * 2))
    assert noise.critical_mean == 0.5
    assert noise.critical_sd == pytest.approx(abs(anscombe(1) - anscombe(0)) / math.sqrt(2))
    one = build_noise_model(runs[:1], None)
    assert one.prompt_sd == {"a": 0.0, "k": 0.0, "s": 0.0}
    assert one.seed_component_sd == {"a": 0.0, "k": 0.0, "s": 0.0}


def test_run_variance_without_a_seed_component_entry() -> None:
    noise = _parts_model(seed_component_sd={})  # t = 0: the what-if scales per-prompt noise
    e, u = 0.36, 0.46
    assert noise.run_variance("c", repeats=4, prompts=20) == pytest.approx(
        0.25 * ((u + e / 4) / 20) / ((u + e / 2) / 10)
    )


def test_duck_typed_objectives_get_the_documented_defaults() -> None:
    base = _runs(BASE)
    loose = SimpleNamespace(categories=["a"], critical_below=2.0)  # no higher_is_better
    want = build_noise_model(base, Objective(target="a", critical_below=2.0))
    assert build_noise_model(base, loose) == want
    noise = _guard_model()
    bare = SimpleNamespace(target="c", min_improvement=0.5)  # no guards, no max_mde
    report = power_report(noise, bare)
    assert report == power_report(noise, Objective(target="c", min_improvement=0.5))
    assert report.guard_tolerance_needed == {} and len(report.underpowered) == 1


def test_build_noise_model_uneven_repeats_empty_first_category_and_critical_groups() -> None:
    runs = [
        [S("x", "0", 1.0)]  # category "0" only in run 0: no shared prompt, sorted first
        + [S("r1", "r", v, i) for i, v in enumerate([1.0, 2.0, 4.0])]
        + [S("r2", "r", v, i) for i, v in enumerate([0.0, 1.0])]
        + [S("k1", "k", 0.0, critical=True), S("k2", "k", 0.0, critical=True)],
        [S("r1", "r", v, i) for i, v in enumerate([2.0, 2.0])]
        + [S("r2", "r", v, i) for i, v in enumerate([3.0, 5.0])]
        + [S("k1", "k", 0.0), S("k2", "k", 0.0)],
    ]
    group = [
        [S("r1", "r", 1.0), S("k1", "k", 0.0, critical=True)],
        [S("r1", "r", 2.0), S("k1", "k", 0.0)],
        [S("r1", "r", 4.0), S("k1", "k", 0.0)],
    ]
    noise = build_noise_model(runs, None, replicates=[group])
    assert noise.n_prompts == {"0": 0, "k": 2, "r": 2}
    assert noise.seed_sd["0"] == 0.0 and noise.dof["0"] == 0.0
    assert noise.dof["r"] == 1.0 + 2.0 and noise.repeats == 3
    pooled = (
        np.var([1, 2, 4], ddof=1) * 2
        + np.var([0, 1], ddof=1)
        + np.var([2, 2], ddof=1)
        + np.var([3, 5], ddof=1)
    ) / 5
    assert noise.repeat_sd["r"] == pytest.approx(math.sqrt(pooled))
    run_means = [np.mean([7 / 3, 0.5]), np.mean([2.0, 4.0])]
    ss = np.var(run_means, ddof=1) + np.var([1.0, 2.0, 4.0], ddof=1) * 2
    assert noise.seed_sd["r"] == pytest.approx(math.sqrt(ss / 3))
    # Critical counts: baseline (2, 0), the group (1, 0, 0); Anscombe scale, pooled, dof 1 + 2.
    crit_ss = np.var([anscombe(2), anscombe(0)], ddof=1) + 2 * np.var(
        [anscombe(1), anscombe(0), anscombe(0)], ddof=1
    )
    assert noise.critical_sd == pytest.approx(math.sqrt(crit_ss / 3))
    assert noise.critical_per_run == {"0": 0.0, "k": 1.0, "r": 0.0}


def test_a_single_prompt_is_enough_for_an_mde_and_a_tolerance() -> None:
    one = _mde_model()
    one = NoiseModel(**{**one.to_dict(), "n_prompts": {"c": 1}})
    assert minimum_detectable_effect(one, "c") == minimum_detectable_effect(_mde_model(), "c")
    assert guard_min_tolerance(one, "c") == guard_min_tolerance(_mde_model(), "c")
    assert guard_min_tolerance(_mde_model(), "x", alpha=0.9, power=0.05) == math.inf


def test_a_lever_that_lands_exactly_on_the_limit_counts() -> None:
    noise = _guard_model(component=0.1)
    have = guard_min_tolerance(noise, "g", seeds=5)
    assert guard_min_tolerance(noise, "g", seeds=4) > have
    fix = _guard_fix(noise, "g", have, guard_min_tolerance(noise, "g"))
    assert "probe.baseline_seeds 5 (now 3)" in fix.split(" or ")
    limit = minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025, seeds=5)
    objective = Objective(target="c", min_improvement=0.5, max_mde=limit)
    assert "probe.baseline_seeds 5 (now 3)" in power_report(noise, objective).fixes


def test_power_report_measured_repeats_and_several_guards() -> None:
    noise = NoiseModel(
        seed_sd={"c": 0.1, "g": 0.4, "h": 0.05, "one": 0.05},
        dof=dict.fromkeys(["c", "g", "h", "one"], 2.0),
        n_prompts={"c": 30, "g": 10, "h": 10, "one": 1},
        seeds=3,
        repeats=2,
        prompt_sd=dict.fromkeys(["c", "g", "h", "one"], 1.0),
        repeat_sd=dict.fromkeys(["c", "g", "h", "one"], 1.4),
        seed_component_sd=dict.fromkeys(["c", "g", "h", "one"], 0.0),
    )
    objective = Objective(
        target="c",
        guards=["h", "one", "g"],
        min_improvement=0.5,
        guard_tolerance={"g": 0.2, "default": 5.0},
    )
    report = power_report(noise, objective)

    def mde(**kw) -> float:
        return minimum_detectable_effect(noise, "c", threshold=0.5, confirm_alpha=0.025, **kw)

    k = int(report.fixes[0].split()[0])
    r = int(report.fixes[1].split()[1])
    assert mde(prompts=k) <= 1.0 < mde(prompts=k - 1)
    assert mde(repeats=r) <= 1.0 < mde(repeats=r - 1)
    assert report.fixes[:2] == [f"{k} c prompts (now 30)", f"probe.eval_repeats {r} (now 2)"]
    assert not any("optimistic" in f for f in report.fixes)
    assert all(row.measured for row in report.table)
    tol = {g: guard_min_tolerance(noise, g) for g in ("h", "one", "g")}
    assert report.guard_tolerance_needed == tol
    assert tol["h"] < 5.0 and tol["one"] < 5.0 and tol["g"] > 0.2
    assert report.underpowered[1:] == [
        f"guard g: tolerance 0.20 is below {tol['g']:.2f}, the smallest an unchanged g passes "
        "with 80% power (spurious refusals)"
    ]
    assert report.fixes[-1].startswith("objective.guard_tolerance g: ")

"""Findings at their edges: every sentence a finding prints, against numbers built by hand.

Each verdict here carries its p-values directly (p_worse, p_regress, critical_p), so which
hypotheses Holm rejects at the session-corrected level lambda = 5% / m, and so the effect of
each observation, is known by construction; the expected details are written out in full
because the report prints them word for word. The report-row adapter is checked row by row
against ProbeRecords built by hand.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from agent.campaign import Knob
from agent.findings import (
    BETTER_CHOICE,
    FLAT,
    FRAGILE,
    LOCAL_OPTIMUM,
    MIXED,
    MONOTONE,
    ONE_SIDED,
    UNRESOLVED,
    UNTESTED,
    WORSE_CHOICE,
    KnobFinding,
    LaneSummary,
    Observation,
    ProbeRecord,
    Resolution,
    _last_per_change,
    derive_findings,
    findings_from_report_runs,
    judge,
    knob_findings_from_report_runs,
    records_from_report_runs,
    untried_moves,
)
from agent.proposals import format_changes
from agent.stats import PowerReport
from agent.verdict import CategoryComparison, Verdict, VerdictStatus

NO_POWER = "no power estimate: what this session resolves is unknown"
RESOLVES = "this session resolves gt effects >= 0.93; guard tolerance needed: voice 0.42"
KEPT = "kept on a fresh-seed confirmation"
KEPT_AT = "kept on a fresh-seed confirmation at one-sided 0.025"
NOTHING = "no move shown better or worse at the session-corrected level"

RECIPE: dict[str, Any] = {
    "learning_rate": 2e-5,
    "beta": 0.1,
    "rank": 16,
    "epochs": 4,
    "curriculum": "shuffle",
}
CURRICULUM = {"type": "categorical", "choices": ["shuffle", "easy_first", "source_first"]}
LANES: dict[str, dict[str, Any]] = {
    "hyperparameters": {
        "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
        "beta": {"type": "float", "low": 0.01, "high": 1.0},
        "rank": {"type": "int", "low": 4, "high": 64},
        "epochs": {"type": "int", "low": 1, "high": 10},
    },
    "curriculum": {"curriculum": CURRICULUM},
}


def comparison(
    name: str,
    role: str,
    delta: float,
    *,
    se: float = 0.1,
    p_worse: float | None = None,
    p_regress: float | None = None,
    threshold: float | None = None,
) -> CategoryComparison:
    return CategoryComparison(
        category=name,
        role=role,
        n_prompts=20,
        baseline_mean=7.0,
        probe_mean=7.0 + delta,
        delta=delta,
        ci_low=delta - 0.2,
        ci_high=delta + 0.2,
        threshold=threshold,
        se=se,
        dof=math.inf,
        p_regress=p_regress,
        p_worse=p_worse,
    )


def verdict(
    status: str,
    delta: float = 0.0,
    ci: tuple[float, float] = (-0.2, 0.2),
    *,
    p_worse: float | None = 0.5,
    se: float = 0.1,
    guard: tuple[float, float | None, float | None] | None = None,  # delta, p_regress, threshold
    regressed: bool = False,
    critical_p: float | None = None,
    new_critical: float = 0.0,
    alpha: float | None = None,
) -> Verdict:
    """A verdict on target "gt" (and guard "voice") with the p-values given."""
    cats = [comparison("gt", "target", delta, se=se, p_worse=p_worse)]
    if guard is not None:
        g_delta, p_regress, threshold = guard
        cats.append(comparison("voice", "guard", g_delta, p_regress=p_regress, threshold=threshold))
    return Verdict(
        status=VerdictStatus(status),
        reason="",
        target="gt",
        target_delta=delta,
        ci_low=ci[0],
        ci_high=ci[1],
        worst_guard="voice" if guard is not None else None,
        worst_guard_delta=guard[0] if guard is not None else None,
        new_critical=new_critical,
        categories=tuple(cats),
        critical_p=critical_p,
        regressed_guards=("voice",) if regressed else (),
        alpha=alpha,
    )


def keep(delta: float, ci: tuple[float, float], alpha: float | None = 0.025) -> Verdict:
    return verdict("keep", delta, ci, p_worse=0.99, alpha=alpha)


def rec(
    knob: str, value: Any, v: Verdict, lane: str = "hyperparameters", probe_id: str = ""
) -> ProbeRecord:
    return ProbeRecord(changes={knob: value}, verdict=v, lane=lane, probe_id=probe_id)


def power(**kw: Any) -> PowerReport:
    values: dict[str, Any] = dict(
        target="gt",
        mde=0.93,
        min_improvement=0.5,
        confirm_alpha=0.025,
        table=[],
        guard_tolerance_needed={"voice": 0.42},
        underpowered=[],
        fixes=[],
        warnings=[],
    )
    values.update(kw)
    return PowerReport(**values)


def one(records: list[ProbeRecord], knob: str, **kw: Any) -> KnobFinding:
    kw.setdefault("recipe", RECIPE)
    recipe = kw.pop("recipe")
    return {k.knob: k for k in derive_findings(records, recipe, **kw).knobs}[knob]


# ---- numeric knobs: the classification and its exact sentence ----------------------------


def test_mixed_names_the_larger_keep_as_best_and_prints_every_observation() -> None:
    f = one(
        [
            rec("learning_rate", 2.4e-5, keep(0.5, (0.3, 0.7))),
            rec("learning_rate", 1.8e-5, keep(0.3, (0.1, 0.5))),
        ],
        "learning_rate",
        lanes_knobs=LANES,
        power=power(),
    )
    assert f.classification == MIXED
    assert f.detail == (
        "both directions better: the recipe value sits in a dip. "
        f"1.8e-05: gt +0.30 [+0.10, +0.50] keep ({KEPT_AT}); "
        f"2.4e-05: gt +0.50 [+0.30, +0.70] keep ({KEPT_AT}) ({RESOLVES})"
    )
    assert (f.best_value, f.best_delta, f.untried) == (2.4e-5, 0.5, [])
    assert (f.lane, f.recipe_value) == ("hyperparameters", 2e-5)


def test_monotone_down_and_the_untried_direction_without_knob_specs() -> None:
    worse = verdict("discard", -0.4, (-0.6, -0.2), p_worse=0.001)
    f = one(
        [rec("learning_rate", 1.8e-5, keep(0.3, (0.1, 0.5), alpha=None))],
        "learning_rate",
    )
    assert f.classification == MONOTONE
    assert f.detail == (
        "better going down; not tried: learning_rate up. "
        f"1.8e-05: gt +0.30 [+0.10, +0.50] keep ({KEPT}) ({NO_POWER})"
    )
    assert f.untried == ["learning_rate up"]
    # Down kept, up worse: still monotone, nothing untried (m = 2: lambda = 0.025).
    f = one(
        [
            rec("learning_rate", 1.8e-5, keep(0.3, (0.1, 0.5))),
            rec("learning_rate", 2.4e-5, worse),
        ],
        "learning_rate",
    )
    assert f.classification == MONOTONE and f.untried == []
    assert f.detail.startswith("better going down. 1.8e-05: ")
    assert "2.4e-05: gt -0.40 [-0.60, -0.20] discard (gt shown worse: p=0.001 <= 0.025)" in (
        f.detail
    )


def test_one_sided_says_which_way_and_what_the_other_way_was() -> None:
    worse = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    down = one([rec("rank", 8, worse)], "rank")
    assert down.classification == ONE_SIDED and down.untried == ["rank up"]
    assert down.detail == (
        "worse going down, the other direction untried; not tried: rank up. "
        f"8: gt -0.50 [-0.70, -0.30] discard (gt shown worse: p=0.001 <= 0.05) ({NO_POWER})"
    )
    up = one([rec("rank", 32, worse)], "rank")
    assert up.untried == ["rank down"]
    assert up.detail.startswith(
        "worse going up, the other direction untried; not tried: rank down. 32: "
    )
    both = one([rec("rank", 32, worse), rec("rank", 8, noise)], "rank")
    assert both.classification == ONE_SIDED and both.untried == []
    assert both.detail == (
        "worse going up, the other direction inside the noise. "
        "8: gt -0.10 [-0.30, +0.10] discard; "
        f"32: gt -0.50 [-0.70, -0.30] discard (gt shown worse: p=0.001 <= 0.025) ({NO_POWER})"
    )
    other = one([rec("rank", 8, worse), rec("rank", 32, noise)], "rank")
    assert other.detail.startswith("worse going down, the other direction inside the noise. ")


def test_local_optimum_in_both_directions_reads_worse_in_both() -> None:
    worse = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    f = one([rec("rank", 8, worse), rec("rank", 32, worse)], "rank")
    assert f.classification == LOCAL_OPTIMUM
    assert f.detail.startswith("worse in both directions. 8: gt -0.50")


def test_flat_and_unresolved_say_nothing_was_shown() -> None:
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    f = one([rec("rank", 8, noise), rec("rank", 32, noise)], "rank", power=power())
    assert f.classification == FLAT
    assert f.detail == (
        f"{NOTHING}. 8: gt -0.10 [-0.30, +0.10] discard; "
        f"32: gt -0.10 [-0.30, +0.10] discard ({RESOLVES})"
    )
    weak = power(mde=1.9, underpowered=["target gt: the smallest effect kept ..."])
    f = one([rec("rank", 8, noise), rec("rank", 32, noise)], "rank", power=weak)
    assert f.classification == UNRESOLVED
    assert f.detail.startswith("nothing shown, and gt is underpowered. 8: ")


def test_a_knob_at_its_bound_needs_no_move_past_it() -> None:
    # rank 64 is its upper bound: one move down judges every move there is.
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    recipe = {**RECIPE, "rank": 64}
    f = one([rec("rank", 32, noise)], "rank", recipe=recipe, lanes_knobs=LANES)
    assert f.classification == FLAT and f.untried == []
    assert f.detail == f"{NOTHING}. 32: gt -0.10 [-0.30, +0.10] discard ({NO_POWER})"
    # Without the knob's range the finding cannot know: up is untried.
    f = one([rec("rank", 32, noise)], "rank", recipe=recipe)
    assert f.untried == ["rank up"]


# ---- fragile -----------------------------------------------------------------------------


def test_fragile_exactly_at_the_small_move_limit_names_the_guard() -> None:
    # epochs 4 -> 5 is exactly a 25% move: within small_move (inclusive).
    collapse = verdict(
        "guard_fail",
        -0.1,
        (-0.3, 0.1),
        guard=(-2.0, 0.0001, -0.5),
        regressed=True,
    )
    f = one([rec("epochs", 5, collapse)], "epochs", lanes_knobs=LANES)
    # Holm at lambda = 5%: the guard's 0.0001 at 0.05 / 2, the target's 0.5 not rejected.
    assert f.classification == FRAGILE and f.untried == ["epochs down"]
    assert f.detail == (
        "4 -> 5 (a 25% move) was shown worse by a guard below its tolerance; "
        "not tried: epochs down. "
        "5: gt -0.10 [-0.30, +0.10] guard_fail, worst guard voice -2.00 "
        f"(voice regressed past -0.50: p=0.0001 <= 0.025) ({NO_POWER})"
    )
    obs = f.observations[0]
    assert obs.collapse and obs.shown == ("guard",) and obs.effect == "worse"


def test_fragile_by_guard_and_critical_failures_leaves_the_target_out_of_the_cause() -> None:
    broke = verdict(
        "guard_fail",
        -0.6,
        (-0.8, -0.4),
        p_worse=0.0003,
        guard=(-2.0, 0.0001, -0.5),
        regressed=True,
        critical_p=0.0002,
        new_critical=2.0,
    )
    f = one([rec("beta", 0.11, broke)], "beta")
    # Holm at 5% over three tests: 0.0001 <= 0.05/3, 0.0002 <= 0.05/2, 0.0003 <= 0.05.
    assert f.classification == FRAGILE
    assert f.detail == (
        "0.1 -> 0.11 (a 10% move) was shown worse by a guard below its tolerance and new "
        "critical failures. 0.11: gt -0.60 [-0.80, -0.40] guard_fail, worst guard voice -2.00, "
        "+2.0 critical (gt shown worse: p=0.0003 <= 0.05; voice regressed past -0.50: "
        f"p=0.0001 <= 0.017; +2.0 critical: p=0.0002 <= 0.025) ({NO_POWER})"
    )
    assert f.observations[0].shown == ("target", "guard", "critical")


def test_a_collapse_beyond_the_small_move_is_not_fragile() -> None:
    # beta 0.1 -> 0.13 is a 30% move: past the default 25%.
    collapse = verdict("guard_fail", -0.1, guard=(-2.0, 0.0001, -0.5), regressed=True)
    f = one([rec("beta", 0.13, collapse)], "beta")
    assert f.classification == ONE_SIDED
    # Told a 30% move is small, the same collapse is fragile.
    assert one([rec("beta", 0.13, collapse)], "beta", small_move=0.3).classification == FRAGILE


def test_fragile_categorical_choice_prints_no_move_size() -> None:
    collapse = verdict("guard_fail", -0.1, guard=(-2.0, 0.0001, -0.5), regressed=True)
    f = one([rec("curriculum", "source_first", collapse, "curriculum")], "curriculum")
    assert f.classification == FRAGILE
    assert f.detail.startswith(
        "shuffle -> source_first was shown worse by a guard below its tolerance. source_first: "
    )


# ---- categorical knobs -------------------------------------------------------------------


def test_better_choice_names_the_kept_choice() -> None:
    f = one(
        [rec("curriculum", "easy_first", keep(0.5, (0.3, 0.7), alpha=None), "curriculum")],
        "curriculum",
        lanes_knobs=LANES,
    )
    assert f.classification == BETTER_CHOICE
    assert f.detail == (
        "easy_first kept; not tried: curriculum=source_first. "
        f"easy_first: gt +0.50 [+0.30, +0.70] keep ({KEPT}) ({NO_POWER})"
    )
    assert (f.best_value, f.untried) == ("easy_first", ["curriculum=source_first"])


def test_categorical_local_optimum_worse_choice_and_flat() -> None:
    worse = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    both = [
        rec("curriculum", "source_first", worse, "curriculum"),
        rec("curriculum", "easy_first", worse, "curriculum"),
    ]
    f = one(both, "curriculum", lanes_knobs=LANES)
    assert f.classification == LOCAL_OPTIMUM
    assert f.detail == (
        "every alternative to shuffle worse. "
        "easy_first: gt -0.50 [-0.70, -0.30] discard (gt shown worse: p=0.001 <= 0.025); "
        "source_first: gt -0.50 [-0.70, -0.30] discard (gt shown worse: p=0.001 <= 0.025) "
        f"({NO_POWER})"
    )
    f = one(both, "curriculum")  # choices unknown
    assert f.classification == WORSE_CHOICE
    assert f.detail.startswith(
        "worse: easy_first, source_first (the other choices are not known). easy_first: "
    )
    mixed = [
        rec("curriculum", "easy_first", worse, "curriculum"),
        rec("curriculum", "source_first", noise, "curriculum"),
    ]
    f = one(mixed, "curriculum", lanes_knobs=LANES)
    assert f.classification == WORSE_CHOICE
    assert f.detail.startswith("worse: easy_first; inside the noise: source_first. easy_first: ")
    f = one([rec("curriculum", "easy_first", noise, "curriculum")], "curriculum", lanes_knobs=LANES)
    assert f.classification == FLAT
    assert f.detail.startswith(f"{NOTHING}; not tried: curriculum=source_first. easy_first: ")


def test_every_untried_choice_is_listed() -> None:
    lanes = {"mix": {"mixture": {"type": "categorical", "choices": ["n", "a", "b", "c"]}}}
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    f = one(
        [rec("mixture", "a", noise, "mix")], "mixture", recipe={"mixture": "n"}, lanes_knobs=lanes
    )
    assert f.untried == ["mixture=b", "mixture=c"]
    assert f.detail.startswith(f"{NOTHING}; not tried: mixture=b, mixture=c. a: ")


def test_worse_choice_lists_every_choice_inside_the_noise() -> None:
    lanes = {"mix": {"mixture": {"type": "categorical", "choices": ["n", "a", "b", "c"]}}}
    worse = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    records = [rec("mixture", "a", worse, "mix"), *(rec("mixture", c, noise, "mix") for c in "bc")]
    f = one(records, "mixture", recipe={"mixture": "n"}, lanes_knobs=lanes)
    assert f.classification == WORSE_CHOICE and f.untried == []
    assert f.detail.startswith("worse: a; inside the noise: b, c. a: gt -0.50")


def test_a_categorical_knob_with_numeric_choices_is_judged_by_choice() -> None:
    lanes = {"hp": {"lora_r": {"type": "categorical", "choices": [8, 16, 32]}}}
    worse = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    f = one([rec("lora_r", 8, worse, "hp")], "lora_r", recipe={"lora_r": 16}, lanes_knobs=lanes)
    assert f.classification == WORSE_CHOICE
    assert f.observations[0].direction == "choice"
    assert f.untried == ["lora_r=32"]
    assert f.detail.startswith("worse: 8; not tried: lora_r=32. 8: gt -0.50")
    assert untried_moves([], {"lora_r": 16}, lanes) == {"lora_r": ["lora_r=8", "lora_r=32"]}


def test_a_choice_tried_as_an_equal_number_is_not_untried() -> None:
    # "scale=1" parses back as the int 1: the choice 1.0 was tried.
    lanes = {"hp": {"scale": {"type": "categorical", "choices": [0.5, 1.0, 2.0]}}}
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    f = one([rec("scale", 1, noise, "hp")], "scale", recipe={"scale": 0.5}, lanes_knobs=lanes)
    assert f.untried == ["scale=2"]
    assert f.detail.startswith(f"{NOTHING}; not tried: scale=2. 1: ")


def test_untested_when_every_probe_crashed() -> None:
    crash = Verdict(VerdictStatus.CRASH, "oom", "gt")
    f = one([rec("rank", 8, crash)], "rank")
    assert f.classification == UNTESTED
    assert (f.detail, f.observations, f.lane, f.recipe_value) == (
        "every probe crashed",
        [],
        None,
        16,
    )


def test_a_crashed_multi_knob_change_is_not_attributed_to_a_knob() -> None:
    crash = Verdict(VerdictStatus.CRASH, "oom", "gt")
    records = [ProbeRecord({"rank": 8, "beta": 0.2}, crash, lane="hyperparameters")]
    findings = derive_findings(records, RECIPE)
    assert findings.knobs == [] and findings.judged == 0


# ---- observations ------------------------------------------------------------------------


def test_observation_fields_come_from_the_verdict_and_round_trip() -> None:
    v = replace(keep(0.4, (0.1, 0.7)), worst_guard="voice", worst_guard_delta=-0.1)
    f = one([rec("learning_rate", 2.4e-5, v, probe_id="p7")], "learning_rate")
    d = f.to_dict()
    obs = dict(d["observations"][0])
    assert obs.pop("relative_move") == pytest.approx(math.log(1.2))
    assert obs == {
        "value": 2.4e-5,
        "direction": "up",
        "effect": "better",
        "status": "keep",
        "target_delta": 0.4,
        "ci_low": 0.1,
        "ci_high": 0.7,
        "worst_guard": "voice",
        "worst_guard_delta": -0.1,
        "new_critical": 0.0,
        "collapse": False,
        "probe_id": "p7",
        "evidence": KEPT_AT,
        "shown": (),
    }
    rebuilt = KnobFinding(**{**d, "observations": [Observation(**o) for o in d["observations"]]})
    assert rebuilt == f
    assert "worst guard voice -0.10" in f.detail


def test_relative_moves_for_zero_and_sign_changing_values() -> None:
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    recipe = {"shift": 0.5, "warmup": 0, "dropout": 0.1}
    records = [rec("shift", -0.1, noise), rec("warmup", 10, noise), rec("dropout", 0.0, noise)]
    knobs = {k.knob: k for k in derive_findings(records, recipe).knobs}
    shift = knobs["shift"].observations[0]
    assert shift.direction == "down" and shift.relative_move == pytest.approx(1.2)  # 0.6 / 0.5
    warmup = knobs["warmup"].observations[0]
    assert warmup.direction == "up" and warmup.relative_move is None  # no relative move from 0
    dropout = knobs["dropout"].observations[0]
    assert dropout.direction == "down" and dropout.relative_move == pytest.approx(1.0)


def test_findings_do_not_depend_on_the_order_distinct_probes_ran() -> None:
    noise = verdict("discard", -0.1, (-0.3, 0.1), p_worse=0.3)
    records = [
        rec("learning_rate", 3e-5, noise),
        rec("learning_rate", 2.4e-5, keep(0.3, (0.1, 0.5))),
        rec("learning_rate", 1.8e-5, noise),
    ]
    forward = derive_findings(records, RECIPE, lanes_knobs=LANES)
    backward = derive_findings(records[::-1], RECIPE, lanes_knobs=LANES)
    assert forward.knobs == backward.knobs
    values = [o.value for o in forward.knobs[0].observations]
    assert values == [1.8e-5, 2.4e-5, 3e-5]


def test_describe_prints_each_number_only_when_known() -> None:
    base = Observation(
        value=2.4e-5,
        direction="up",
        effect="flat",
        status="discard",
        target_delta=-0.1,
        ci_low=None,
        ci_high=0.3,
        worst_guard=None,
        worst_guard_delta=None,
        new_critical=0.99,
        collapse=False,
        relative_move=None,
    )
    assert base.describe("gt") == "2.4e-05: gt -0.10 [—, +0.30] discard"
    assert replace(base, ci_low=-0.4, ci_high=None).describe("gt") == (
        "2.4e-05: gt -0.10 [-0.40, —] discard"
    )
    assert replace(base, worst_guard="voice").describe("gt") == base.describe("gt")
    assert replace(base, worst_guard_delta=-1.0).describe("gt") == base.describe("gt")
    full = replace(base, worst_guard="voice", worst_guard_delta=-1.0, new_critical=1.0)
    assert full.describe("gt") == (
        "2.4e-05: gt -0.10 [—, +0.30] discard, worst guard voice -1.00, +1.0 critical"
    )
    assert replace(full, evidence="why").describe("gt").endswith("+1.0 critical (why)")
    assert replace(base, target_delta=None, status="crash").describe("gt") == "2.4e-05: crash"
    # Floats print in 6 significant digits (a sweep step can land on 0.30000000000000004).
    assert replace(base, value=0.1 + 0.2, target_delta=None).describe("gt") == "0.3: discard"
    assert replace(base, value=3.0, target_delta=None).describe("gt") == "3: discard"


# ---- judge: one verdict under the rule ---------------------------------------------------


def test_judge_keep_and_flat_evidence() -> None:
    none = Resolution()
    assert judge(keep(0.4, (0.1, 0.7)), 0.05, none) == ("better", (), KEPT_AT)
    assert judge(keep(0.4, (0.1, 0.7), alpha=None), 0.05, none) == ("better", (), KEPT)
    bare = Verdict(VerdictStatus.DISCARD, "", "gt", target_delta=-0.3)  # no tests at all
    assert judge(bare, 0.05, none) == ("flat", (), "")
    # Tests that Holm does not reject.
    assert judge(verdict("discard", -0.1, p_worse=0.2), 0.05, none) == ("flat", (), "")


def test_judge_p_values_computed_when_the_verdict_has_none() -> None:
    none = Resolution()
    # p_worse missing: from delta / se: P(Z <= -3) = 0.00135.
    v = verdict("discard", -0.3, p_worse=None, se=0.1)
    assert judge(v, 0.05, none) == ("worse", ("target",), "gt shown worse: p=0.0013 <= 0.05")
    assert judge(verdict("discard", 0.05, p_worse=None), 0.05, none)[0] == "flat"
    # No standard error (an old verdict): no evidence, whatever the delta.
    assert judge(verdict("discard", -0.3, p_worse=None, se=0.0), 0.05, none)[0] == "flat"
    # A stored p_worse is used as it is, even without a standard error.
    assert judge(verdict("discard", -0.3, p_worse=0.001, se=0.0), 0.05, none)[0] == "worse"
    # p_regress missing: from the guard's delta -1.0, se 0.1 against -0.5: P(Z <= -5).
    g = verdict("guard_fail", -0.1, guard=(-1.0, None, -0.5), regressed=True)
    assert judge(g, 0.05, none) == (
        "worse",
        ("guard",),
        "voice regressed past -0.50: p=<1e-4 <= 0.025",
    )
    # Without a threshold or a standard error, no regression test.
    no_threshold = verdict("guard_fail", -0.1, guard=(-1.0, None, None), regressed=True)
    assert judge(no_threshold, 0.05, none)[0] == "flat"
    guard_only = replace(g, categories=(replace(g.categories[1], se=0.0),))
    assert judge(guard_only, 0.05, none) == ("flat", (), "")


def test_judge_guard_threshold_and_p_value_wording() -> None:
    none = Resolution()
    zero = verdict("guard_fail", -0.1, guard=(-1.0, 0.00005, 0.0), regressed=True)
    assert judge(zero, 0.05, none)[2] == "voice regressed past +0.00: p=<1e-4 <= 0.025"
    at = verdict("guard_fail", -0.1, guard=(-1.0, 0.0001, -0.5), regressed=True)
    assert judge(at, 0.05, none)[2] == "voice regressed past -0.50: p=0.0001 <= 0.025"
    mid = verdict("guard_fail", -0.1, guard=(-1.0, 0.002, -0.8), regressed=True)
    assert judge(mid, 0.05, none)[2] == "voice regressed past -0.80: p=0.002 <= 0.025"
    # A guard the verdict did not list as regressed is no evidence.
    assert judge(replace(at, regressed_guards=()), 0.05, none)[0] == "flat"


def test_judge_critical_failures_count_only_on_a_guard_fail_with_one_more_per_run() -> None:
    none = Resolution()
    one_more = verdict("guard_fail", -0.1, critical_p=0.0001, new_critical=1.0)
    assert judge(one_more, 0.05, none) == (
        "worse",
        ("critical",),
        "+1.0 critical: p=0.0001 <= 0.025",
    )
    fewer = verdict("guard_fail", -0.1, critical_p=0.0001, new_critical=0.9)
    assert judge(fewer, 0.05, none)[0] == "flat"
    not_failed = verdict("discard", -0.1, critical_p=0.0001, new_critical=3.0)
    assert judge(not_failed, 0.05, none)[0] == "flat"


# ---- the session-corrected level ---------------------------------------------------------


def test_the_level_is_session_alpha_over_the_judged_probes() -> None:
    noise = verdict("discard", -0.1, p_worse=0.3)
    single = derive_findings([rec("rank", 8, noise)], RECIPE)
    assert (single.judged, single.level) == (1, 0.05)
    two = [rec("rank", 8, noise), rec("beta", 0.2, noise)]
    assert derive_findings(two, RECIPE, session_alpha=0.2).level == pytest.approx(0.1)
    assert derive_findings(two, RECIPE, power=power(session_alpha=0.1)).level == pytest.approx(0.05)
    assert derive_findings([], RECIPE).level == 0.05


def test_findings_carry_the_resolution_and_serialize_their_counts() -> None:
    noise = verdict("discard", -0.1, p_worse=0.3)
    p = power(guard_tolerance_needed={"voice": 0.42, "style": math.inf})
    findings = derive_findings([rec("rank", 8, noise), rec("beta", 0.2, noise)], RECIPE, power=p)
    assert findings.resolution == Resolution.of(p)
    d = findings.to_dict()
    assert set(d) == {"knobs", "lanes", "judged", "level"}
    assert (d["judged"], d["level"]) == (2, 0.025)
    assert [k["knob"] for k in d["knobs"]] == ["beta", "rank"]
    assert d["lanes"] == [lane.to_dict() for lane in findings.lanes]


# ---- resolution --------------------------------------------------------------------------


def test_resolution_of_a_power_report() -> None:
    p = power(
        guard_tolerance_needed={"voice": 0.42, "style": math.inf, "tone": 0.8},
        underpowered=["guard tone has no scored prompts"],
    )
    r = Resolution.of(p)
    assert r == Resolution(
        target="gt",
        mde=0.93,
        min_improvement=0.5,
        guard_tolerance_needed={"voice": 0.42, "style": math.inf, "tone": 0.8},
        target_underpowered=False,
        underpowered_guards=frozenset({"style", "tone"}),
    )
    assert r.note() == (
        "this session resolves gt effects >= 0.93; guard tolerance needed: voice 0.42, "
        "style inf (underpowered), tone 0.80 (underpowered)"
    )
    cannot = Resolution.of(power(mde=math.inf, guard_tolerance_needed={}))
    assert cannot.target_underpowered
    assert cannot.note() == "this session cannot resolve gt effects (underpowered)"
    assert Resolution.of(None) == Resolution()
    assert Resolution().note() == NO_POWER


# ---- lanes -------------------------------------------------------------------------------


def test_lane_summaries_count_every_status_and_prefer_a_keep_as_best() -> None:
    crash = Verdict(VerdictStatus.CRASH, "oom", "gt")
    records = [
        rec("learning_rate", 2.4e-5, keep(0.4, (0.1, 0.7))),
        rec("rank", 8, verdict("candidate", 0.9)),  # bigger, but unconfirmed
        rec("beta", 0.12, verdict("guard_fail", 1.2)),
        rec("rank", 32, crash),
        rec("learning_rate", 1.8e-5, verdict("discard", -0.1)),
        rec("curriculum", "easy_first", verdict("candidate", 0.3), "data"),
        rec("curriculum", "source_first", verdict("guard_fail", 0.9), "data"),
        rec("epochs", 5, verdict("discard", -0.2), "data"),
        rec("epochs", 6, keep(0.2, (0.0, 0.4)), "deltas"),
        ProbeRecord({"epochs": 7}, replace(keep(0.2, (0.0, 0.4)), target_delta=None), "deltas"),
    ]
    findings = derive_findings(records, RECIPE, lanes=["empty", "data"])
    lanes = [lane.to_dict() for lane in findings.lanes]
    assert [lane["lane"] for lane in lanes] == ["empty", "data", "hyperparameters", "deltas"]
    assert lanes[0] == LaneSummary("empty", 0, 0, 0, 0, 0, None, None, None, False).to_dict()
    assert findings.lanes[1] == LaneSummary(
        lane="data",
        tried=3,
        kept=0,
        candidates=1,
        guard_fails=1,
        crashes=0,
        best_change={"curriculum": "easy_first"},
        best_delta=0.3,
        best_status="candidate",
        best_kept=False,
    )
    assert findings.lanes[2] == LaneSummary(
        lane="hyperparameters",
        tried=5,
        kept=1,
        candidates=1,
        guard_fails=1,
        crashes=1,
        best_change={"learning_rate": 2.4e-5},
        best_delta=0.4,
        best_status="keep",
        best_kept=True,
    )
    # A keep without a delta is not the best when one with a delta exists.
    assert findings.lanes[3].best_change == {"epochs": 6}
    epochs = {k.knob: k for k in findings.knobs}["epochs"]
    assert (epochs.best_value, epochs.best_delta) == (6, 0.2)


def test_the_last_record_of_a_change_wins_in_the_order_of_its_last_run() -> None:
    a1 = rec("rank", 8, verdict("candidate", 0.4))
    b = rec("beta", 0.2, verdict("discard", -0.1))
    a2 = rec("rank", 8, verdict("inconclusive", 0.2))
    assert _last_per_change([a1, b, a2]) == [b, a2]


# ---- untried moves -----------------------------------------------------------------------


def test_untried_moves_exactly_with_knob_objects() -> None:
    lanes: dict[str, dict[str, Any]] = {
        "hp": {
            "rank": Knob(type="int", low=4, high=64),
            "lr": Knob(type="float", low=1e-6, high=1e-3),
            "eps": Knob(type="float", low=1e-10, high=1e-8),  # a tiny range
        },
        "mix": {"mixture": Knob(type="categorical", choices=["n", "a", "b"])},
    }
    recipe = {"rank": 4, "lr": 2e-5, "eps": 1e-9, "mixture": "n"}  # rank at its lower bound
    assert untried_moves([], recipe, lanes) == {
        "rank": ["rank up"],
        "lr": ["lr up", "lr down"],
        "eps": ["eps up", "eps down"],
        "mixture": ["mixture=a", "mixture=b"],
    }
    noise = verdict("discard", -0.1, p_worse=0.3)
    crash = Verdict(VerdictStatus.CRASH, "oom", "gt")
    records = [
        rec("lr", 2e-5, noise),  # the recipe value itself: no move
        rec("eps", 2e-9, crash),  # crashed: not judged
        ProbeRecord({"rank": 8, "lr": 3e-5}, noise),  # not a single-knob probe
        rec("mixture", "a", noise),
        rec("rank", 5, noise),
    ]
    assert untried_moves(records, recipe, lanes) == {
        "lr": ["lr up", "lr down"],
        "eps": ["eps up", "eps down"],
        "mixture": ["mixture=b"],
    }


def test_a_recipe_within_rounding_of_its_bound_is_at_the_bound() -> None:
    # 1e-9 relative: a bound read back from YAML may differ from the recipe in its last bits.
    lanes = {"hp": {"w": {"type": "float", "low": 0.0, "high": 1.0 + 1e-9}}}
    assert untried_moves([], {"w": 1.0}, lanes) == {"w": ["w down"]}
    lanes = {"hp": {"w": {"type": "float", "low": 1.0 - 1e-9, "high": 2.0}}}
    assert untried_moves([], {"w": 1.0}, lanes) == {"w": ["w up"]}
    lanes = {"hp": {"w": {"type": "float", "low": 1.0, "high": 2.0}}}
    assert untried_moves([], {"w": 1.0}, lanes) == {"w": ["w up"]}
    assert untried_moves([], {"w": 2.0}, lanes) == {"w": ["w down"]}


# ---- report rows -------------------------------------------------------------------------


def row(change: str, status: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "probe", "lane": "hyperparameters", "change": change, "status": status, **kw}


def test_a_report_row_becomes_exactly_its_probe_record() -> None:
    rows = [
        row(
            "learning_rate=2.4e-05,rank=8",
            "discard",
            id=7,
            reason="below min_improvement",
            target_delta=-0.2,
            ci_low=-0.5,
            ci_high=0.1,
        ),
        {"kind": "probe", "lane": "", "change": "beta=0.2", "status": "inconclusive"},
    ]
    assert records_from_report_runs(rows, "gt") == [
        ProbeRecord(
            changes={"learning_rate": 2.4e-5, "rank": 8},
            verdict=Verdict(VerdictStatus.DISCARD, "below min_improvement", "gt", -0.2, -0.5, 0.1),
            lane="hyperparameters",
            probe_id="7",
        ),
        ProbeRecord(
            changes={"beta": 0.2},
            verdict=Verdict(VerdictStatus.INCONCLUSIVE, "", "gt"),
            lane=None,
            probe_id="",
        ),
    ]
    assert records_from_report_runs(rows[1:])[0].verdict.target == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"learning_rate": 2.4e-5, "rank": 8},
        {"template": "a=b"},  # split at the first "="
        {"note": ""},
        {"curriculum": "easy_first", "use_lora": True},
    ],
)
def test_change_strings_parse_back_to_their_changes(changes: dict[str, Any]) -> None:
    records = records_from_report_runs([row(format_changes(changes), "discard")])
    assert records[0].changes == changes


def test_the_changes_dict_is_preferred_to_the_change_string() -> None:
    r = row("learning_rate=1e-05", "discard", changes={"learning_rate": 1e-5})
    assert records_from_report_runs([r])[0].changes == {"learning_rate": 1e-5}
    r = {"kind": "probe", "changes": {"curriculum": "easy_first"}, "status": "discard"}
    assert records_from_report_runs([r])[0].changes == {"curriculum": "easy_first"}


def test_rows_that_are_not_judged_probes_are_skipped() -> None:
    rows = [
        {"kind": "baseline", "change": "rank=8", "status": "keep"},
        row("recipe", "keep"),
        row("", "keep"),
        {"kind": "probe", "status": "keep"},
        row("rank=8", "running"),
        row("rank=32", "keep", id="last"),
    ]
    records = records_from_report_runs(rows, "gt")
    assert [(r.changes, r.probe_id) for r in records] == [({"rank": 32}, "last")]


def test_a_stored_verdict_is_used_whole() -> None:
    v = verdict("discard", -0.5, (-0.7, -0.3), p_worse=0.001)
    r = row("rank=8", "discard", verdict=v.to_dict(), target_delta=-0.5)
    (record,) = records_from_report_runs([r], "gt")
    assert record.verdict == v
    f = knob_findings_from_report_runs([r], {"objective": {"target": "gt"}, "recipe": RECIPE})
    assert f[0]["observations"][0]["effect"] == "worse"


def test_confirmations_come_after_their_candidates_whatever_the_row_order() -> None:
    rows = [
        row("rank=8", "keep", kind="confirm", id="c"),
        row("rank=8", "inconclusive", kind="replay", id="r"),
        {"lane": "hyperparameters", "change": "beta=0.2", "status": "discard", "id": "x"},
        row("rank=8", "candidate", id="p"),
    ]
    records = records_from_report_runs(rows, "gt")
    assert [r.probe_id for r in records] == ["x", "p", "r", "c"]


def test_the_report_adapter_reads_the_campaign() -> None:
    campaign = {
        "objective": {"target": "gt"},
        "recipe": {**RECIPE, "rank": 64},
        "lanes": LANES,
    }
    runs = [row("rank=32", "keep", id="k", target_delta=0.4, ci_low=0.1, ci_high=0.7)]
    findings = findings_from_report_runs(runs, campaign, power=power())
    assert [lane.lane for lane in findings.lanes] == ["hyperparameters", "curriculum"]
    assert findings.resolution == Resolution.of(power())
    (rank,) = findings.knobs
    assert rank.classification == MONOTONE and rank.untried == []
    expected = f"better going down. 32: gt +0.40 [+0.10, +0.70] keep ({KEPT}) ({RESOLVES})"
    assert rank.detail == expected
    rows = knob_findings_from_report_runs(runs, campaign, power=power())
    assert [(r["knob"], r["detail"]) for r in rows] == [("rank", expected)]


def test_the_report_adapter_without_knob_specs_or_a_target() -> None:
    runs = [row("rank=8", "keep", target_delta=0.4, ci_low=0.1, ci_high=0.7)]
    for campaign in (
        {"recipe": RECIPE},
        {"recipe": RECIPE, "lanes": {"hyperparameters": ["rank"]}},  # knob names only
        {"recipe": RECIPE, "objective": {}, "lanes": {"hyperparameters": {"rank": {}}}},
    ):
        (rank,) = findings_from_report_runs(runs, campaign).knobs
        assert rank.untried == ["rank up"]
        assert rank.detail == (
            f"better going down; not tried: rank up. 8:  +0.40 [+0.10, +0.70] keep ({KEPT}) "
            f"({NO_POWER})"
        )
    # No recipe: the value cannot be placed up or down; it is a choice.
    (rank,) = findings_from_report_runs(runs, {"objective": {"target": "gt"}}).knobs
    assert rank.classification == BETTER_CHOICE and rank.observations[0].direction == "choice"
    assert rank.detail.startswith("8 kept. 8: gt +0.40")


# ---- bugs these tests found (fixed) --------------------------------------------------------


def test_a_change_string_with_an_exponent_is_a_number() -> None:
    (record,) = records_from_report_runs([row("learning_rate=1e-05", "discard")])
    assert record.changes == {"learning_rate": 1e-5}


def test_a_large_move_from_zero_that_collapses_is_not_fragile() -> None:
    collapse = verdict("guard_fail", -0.1, guard=(-2.0, 0.0001, -0.5), regressed=True)
    f = one([rec("weight_decay", 0.5, collapse)], "weight_decay", recipe={"weight_decay": 0.0})
    assert f.classification != FRAGILE


def test_a_probe_at_the_recipe_value_is_no_move_in_either_direction() -> None:
    collapse = verdict("guard_fail", -0.1, guard=(-2.0, 0.0001, -0.5), regressed=True)
    down = rec("weight_decay", 0.05, keep(0.5, (0.3, 0.7)))
    findings = {
        k.knob: k
        for k in derive_findings(
            [rec("weight_decay", 0.1, collapse), down], {"weight_decay": 0.1}
        ).knobs
    }
    f = findings["weight_decay"]
    # Only the real move (down) is an observation; the run at 0.1 is neither up nor down.
    assert [(o.value, o.direction) for o in f.observations] == [(0.05, "down")]
    assert f.classification != FRAGILE

"""Findings: knob classification and lane summaries from hand-made verdicts."""

from __future__ import annotations

from typing import Any

from agent.findings import (
    BETTER_CHOICE,
    FLAT,
    FRAGILE,
    LOCAL_OPTIMUM,
    MONOTONE,
    ONE_SIDED,
    UNTESTED,
    ProbeRecord,
    derive_findings,
    knob_findings_from_report_runs,
)
from agent.verdict import CategoryComparison, Verdict, VerdictStatus

RECIPE = {"learning_rate": 2e-5, "beta": 0.1, "curriculum": "shuffle", "rank": 16}


def verdict(
    status: str,
    delta: float,
    lo: float,
    hi: float,
    *,
    guard_delta: float = 0.0,
    guard_hi: float = 0.3,
    new_critical: float = 0.0,
) -> Verdict:
    guard = CategoryComparison(
        category="voice",
        role="guard",
        n_prompts=20,
        baseline_mean=7,
        probe_mean=7 + guard_delta,
        delta=guard_delta,
        ci_low=guard_delta - 0.3,
        ci_high=guard_hi,
        threshold=-0.5,
        passed=status != "guard_fail",
    )
    return Verdict(
        status=VerdictStatus(status),
        reason="",
        target="gt",
        target_delta=delta,
        ci_low=lo,
        ci_high=hi,
        worst_guard="voice",
        worst_guard_delta=guard_delta,
        new_critical=new_critical,
        categories=(guard,),
    )


def rec(knob: str, value: object, v: Verdict, lane: str = "hyperparameters") -> ProbeRecord:
    return ProbeRecord(changes={knob: value}, verdict=v, lane=lane)


def by_knob(records: list[ProbeRecord]) -> dict:
    return {k.knob: k for k in derive_findings(records, RECIPE).knobs}


def test_local_optimum_both_directions_worse() -> None:
    f = by_knob(
        [
            rec("learning_rate", 1.8e-5, verdict("discard", -0.31, -0.52, -0.10)),
            rec("learning_rate", 2.2e-5, verdict("discard", -0.28, -0.50, -0.06)),
        ]
    )["learning_rate"]
    assert f.classification == LOCAL_OPTIMUM
    assert "-0.31" in f.detail and "2.2e-05" in f.detail


def test_monotone_one_direction_better() -> None:
    f = by_knob(
        [
            rec("learning_rate", 1.8e-5, verdict("discard", -0.31, -0.52, -0.10)),
            rec("learning_rate", 2.4e-5, verdict("keep", 0.40, 0.12, 0.70)),
        ]
    )["learning_rate"]
    assert f.classification == MONOTONE and "going up" in f.detail
    assert f.best_value == 2.4e-5 and f.best_delta == 0.40


def test_flat_inside_the_noise() -> None:
    f = by_knob(
        [
            rec("rank", 8, verdict("inconclusive", 0.05, -0.2, 0.3)),
            rec("rank", 32, verdict("discard", -0.05, -0.3, 0.2)),
        ]
    )["rank"]
    assert f.classification == FLAT


def test_one_sided_when_the_other_direction_is_untried() -> None:
    f = by_knob([rec("rank", 8, verdict("discard", -0.5, -0.8, -0.2))])["rank"]
    assert f.classification == ONE_SIDED and "untried" in f.detail


def test_fragile_small_move_with_critical_failures() -> None:
    # Seed 003: beta 0.1 -> 0.12 (a 20% move) produced critical failures.
    f = by_knob(
        [
            rec(
                "beta",
                0.12,
                verdict(
                    "guard_fail", -0.4, -0.9, 0.1, guard_delta=-2.0, guard_hi=-1.5, new_critical=3
                ),
            ),
            rec("beta", 0.09, verdict("discard", -0.1, -0.3, 0.1)),
        ]
    )["beta"]
    assert f.classification == FRAGILE
    assert "critical" in f.detail and "20%" in f.detail


def test_a_large_move_that_collapses_is_not_fragile() -> None:
    f = by_knob(
        [
            rec(
                "beta", 0.5, verdict("guard_fail", -0.4, -0.9, 0.1, guard_delta=-2.0, guard_hi=-1.5)
            ),
        ]
    )["beta"]
    assert f.classification == ONE_SIDED


def test_categorical_knobs() -> None:
    collapse = verdict("guard_fail", -0.2, -0.5, 0.1, guard_delta=-4.37, guard_hi=-3.9)
    assert (
        by_knob([rec("curriculum", "source_first", collapse)])["curriculum"].classification
        == FRAGILE
    )
    better = verdict("keep", 0.5, 0.2, 0.8)
    assert (
        by_knob([rec("curriculum", "easy_first", better)])["curriculum"].classification
        == BETTER_CHOICE
    )


def test_last_record_of_a_change_wins_and_crashes_are_untested() -> None:
    records = [
        rec("learning_rate", 2.4e-5, verdict("candidate", 0.4, 0.1, 0.7)),
        rec("learning_rate", 2.4e-5, verdict("inconclusive", 0.2, -0.1, 0.5)),  # confirmation
        ProbeRecord(
            changes={"rank": 8},
            verdict=Verdict(VerdictStatus.CRASH, "oom", "gt"),
            lane="hyperparameters",
        ),
    ]
    f = by_knob(records)
    assert f["learning_rate"].classification == FLAT
    assert f["rank"].classification == UNTESTED


def test_lanes_tried_kept_best() -> None:
    records = [
        rec("learning_rate", 2.4e-5, verdict("keep", 0.4, 0.1, 0.7)),
        rec("rank", 8, verdict("discard", -0.1, -0.3, 0.1)),
        ProbeRecord(
            changes={"rank": 8, "learning_rate": 3e-5},
            verdict=verdict("keep", 0.6, 0.2, 0.9),
            lane="hyperparameters",
        ),
        rec("gt_weight", 2.0, verdict("guard_fail", 0.9, 0.5, 1.2), lane="data_mixture"),
    ]
    findings = derive_findings(
        records, RECIPE, lanes=["hyperparameters", "data_mixture", "curriculum"]
    )
    lanes = {lane.lane: lane for lane in findings.lanes}
    hp = lanes["hyperparameters"]
    assert (hp.tried, hp.kept, hp.best_delta, hp.best_kept) == (3, 2, 0.6, True)
    assert hp.best_change == {"rank": 8, "learning_rate": 3e-5}
    dm = lanes["data_mixture"]
    assert (dm.tried, dm.kept, dm.guard_fails, dm.best_change) == (1, 0, 1, None)
    assert lanes["curriculum"].tried == 0
    # Multi-knob changes are not attributed to a knob.
    assert {k.knob for k in findings.knobs} == {"learning_rate", "rank", "gt_weight"}
    assert findings.to_dict()["lanes"][0]["lane"] == "hyperparameters"


def test_report_adapter_parses_rows() -> None:
    confirm = verdict("keep", 0.45, 0.1, 0.8)
    runs: list[dict[str, Any]] = [  # sorted by delta as the report does: the confirmation first
        {
            "id": "c1",
            "kind": "confirm",
            "lane": "hyperparameters",
            "change": "learning_rate=2.4e-05",
            "status": "keep",
            "verdict": confirm.to_dict(),
        },
        {
            "id": "p1",
            "kind": "probe",
            "lane": "hyperparameters",
            "change": "learning_rate=2.4e-05",
            "status": "candidate",
            "target_delta": 0.4,
            "ci_low": 0.1,
            "ci_high": 0.7,
        },
        {
            "id": "p2",
            "kind": "probe",
            "lane": "hyperparameters",
            "change": "learning_rate=1.6e-05",
            "status": "discard",
            "target_delta": -0.4,
            "ci_low": -0.7,
            "ci_high": -0.1,
        },
    ]
    campaign = {"objective": {"target": "gt"}, "recipe": RECIPE, "lanes": {"hyperparameters": {}}}
    rows = knob_findings_from_report_runs(runs, campaign)
    assert len(rows) == 1
    assert rows[0]["knob"] == "learning_rate" and rows[0]["classification"] == MONOTONE
    assert rows[0]["observations"][1]["status"] == "keep"

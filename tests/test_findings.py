"""Findings: knob classification and lane summaries, only from confirmed or significant results.

Hand-made verdicts carry the numbers the rule reads (p_worse, p_regress, regressed_guards,
critical_p); the null-world test runs agent.verdict.compare on simulated sessions where no
change does anything and counts the sessions that claim anything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agent.campaign import Objective
from agent.findings import (
    BETTER_CHOICE,
    CLAIMS,
    FLAT,
    FRAGILE,
    LOCAL_OPTIMUM,
    MONOTONE,
    ONE_SIDED,
    UNRESOLVED,
    UNTESTED,
    WORSE_CHOICE,
    ProbeRecord,
    derive_findings,
    knob_findings_from_report_runs,
    signed,
    untried_moves,
)
from agent.stats import (
    DiffTest,
    PowerReport,
    confirmation_alpha,
    max_confirmations,
    power_report,
)
from agent.verdict import (
    CategoryComparison,
    Verdict,
    VerdictStatus,
    build_noise_model,
    compare,
)
from probes.spec import Score

RECIPE = {"learning_rate": 2e-5, "beta": 0.1, "curriculum": "shuffle", "rank": 16}
LANES: dict[str, dict[str, Any]] = {
    "hyperparameters": {
        "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
        "beta": {"type": "float", "low": 0.01, "high": 1.0},
        "rank": {"type": "int", "low": 4, "high": 64},
    },
    "curriculum": {
        "curriculum": {"type": "categorical", "choices": ["shuffle", "easy_first", "source_first"]}
    },
}
TOLERANCE = 0.5


def comparison(name: str, role: str, delta: float, se: float) -> CategoryComparison:
    t = DiffTest(delta, se, math.inf)
    low, high = t.interval(0.05)
    threshold = -TOLERANCE if role == "guard" else 0.3
    p_regress = t.p_below(threshold) if role == "guard" else None
    return CategoryComparison(
        category=name,
        role=role,
        n_prompts=20,
        baseline_mean=7.0,
        probe_mean=7.0 + delta,
        delta=delta,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        se=se,
        dof=math.inf,
        p_value=t.p_above(threshold),
        regressed=None if p_regress is None else p_regress <= 0.05,
        p_regress=p_regress,
        p_worse=t.p_below(0.0),
    )


def verdict(
    status: str,
    delta: float,
    se: float = 0.13,
    *,
    guard_delta: float = 0.0,
    guard_se: float = 0.15,
    new_critical: float = 0.0,
    critical_p: float = 0.5,
) -> Verdict:
    target = comparison("gt", "target", delta, se)
    guard = comparison("voice", "guard", guard_delta, guard_se)
    return Verdict(
        status=VerdictStatus(status),
        reason="",
        target="gt",
        target_delta=delta,
        ci_low=target.ci_low,
        ci_high=target.ci_high,
        worst_guard="voice",
        worst_guard_delta=guard_delta,
        new_critical=new_critical,
        categories=(target, guard),
        critical_p=critical_p,
        regressed_guards=("voice",) if guard.regressed else (),
        stage="confirm" if status == "keep" else "screen",
        alpha=0.025 if status == "keep" else 0.05,
    )


def rec(knob: str, value: object, v: Verdict, lane: str = "hyperparameters") -> ProbeRecord:
    return ProbeRecord(changes={knob: value}, verdict=v, lane=lane)


def power(
    *, mde: float = 0.93, underpowered: tuple[str, ...] = (), needed: float = 0.42
) -> PowerReport:
    return PowerReport(
        target="gt",
        mde=mde,
        min_improvement=0.5,
        confirm_alpha=0.025,
        table=[],
        guard_tolerance_needed={"voice": needed},
        underpowered=list(underpowered),
        fixes=[],
        warnings=[],
    )


def by_knob(records: list[ProbeRecord], **kw: Any) -> dict:
    kw.setdefault("lanes_knobs", LANES)
    return {k.knob: k for k in derive_findings(records, RECIPE, **kw).knobs}


def test_local_optimum_both_directions_shown_worse() -> None:
    f = by_knob(
        [
            rec("learning_rate", 1.8e-5, verdict("discard", -0.41)),  # p_worse 0.0008
            rec("learning_rate", 2.2e-5, verdict("discard", -0.38)),
        ]
    )["learning_rate"]
    assert f.classification == LOCAL_OPTIMUM
    assert "-0.41" in f.detail and "2.2e-05" in f.detail and "gt shown worse" in f.detail


def test_worse_needs_the_session_corrected_level() -> None:
    # p_worse 0.0036 would be "worse" at 5%, but not at 5% / 10 judged probes (Holm over the
    # probe's target, guard and critical tests: 0.005 / 3).
    noise = [rec("rank", r, verdict("inconclusive", 0.0)) for r in (5, 6, 7, 8, 24, 32, 40, 48)]
    records = [
        rec("learning_rate", 1.8e-5, verdict("discard", -0.35)),
        rec("learning_rate", 2.2e-5, verdict("discard", -0.35)),
        *noise,
    ]
    findings = derive_findings(records, RECIPE, lanes_knobs=LANES)
    assert findings.judged == 10 and math.isclose(findings.level, 0.005)
    lr = {k.knob: k for k in findings.knobs}["learning_rate"]
    assert lr.observations[0].status == "discard" and lr.classification == FLAT
    # With only these two probes judged (0.025 / 3), the same p-values are evidence.
    assert by_knob(records[:2])["learning_rate"].classification == LOCAL_OPTIMUM


def test_monotone_needs_a_keep_and_a_candidate_is_not_evidence() -> None:
    f = by_knob(
        [
            rec("learning_rate", 1.8e-5, verdict("discard", -0.41)),
            rec("learning_rate", 2.4e-5, verdict("keep", 0.40)),
        ]
    )["learning_rate"]
    assert f.classification == MONOTONE and "going up" in f.detail
    assert f.best_value == 2.4e-5 and f.best_delta == 0.40
    assert "kept on a fresh-seed confirmation" in f.detail
    unconfirmed = by_knob(
        [
            rec("learning_rate", 1.8e-5, verdict("discard", -0.41)),
            rec("learning_rate", 2.4e-5, verdict("candidate", 0.90)),
        ]
    )["learning_rate"]
    assert unconfirmed.classification == ONE_SIDED and unconfirmed.best_value is None


def test_flat_inside_the_noise_names_what_the_session_resolves() -> None:
    f = by_knob(
        [
            rec("rank", 8, verdict("inconclusive", 0.05)),
            rec("rank", 32, verdict("discard", -0.05)),
        ],
        power=power(),
    )["rank"]
    assert f.classification == FLAT
    assert "this session resolves gt effects >= 0.93" in f.detail
    assert "guard tolerance needed: voice 0.42" in f.detail


def test_one_sided_when_the_other_direction_is_untried() -> None:
    f = by_knob([rec("rank", 8, verdict("discard", -0.5))])["rank"]
    assert f.classification == ONE_SIDED and "untried" in f.detail
    assert f.untried == ["rank up"] and "not tried: rank up" in f.detail


def test_fragile_small_move_with_critical_failures() -> None:
    # Seed 003: beta 0.1 -> 0.12 (a 20% move) produced critical failures.
    broke = verdict("guard_fail", -0.1, new_critical=3, critical_p=0.001)
    f = by_knob([rec("beta", 0.12, broke), rec("beta", 0.09, verdict("discard", -0.1))])["beta"]
    assert f.classification == FRAGILE
    assert "critical" in f.detail and "20%" in f.detail
    # The same count at p = 0.04 passes the verdict's 5% test, not the session-corrected one.
    weak = verdict("guard_fail", -0.1, new_critical=3, critical_p=0.04)
    f = by_knob([rec("beta", 0.12, weak), rec("beta", 0.09, verdict("discard", -0.1))])["beta"]
    assert f.classification == FLAT


def test_a_guard_collapse_is_fragile_unless_the_guard_is_underpowered() -> None:
    collapse = verdict("guard_fail", -0.1, guard_delta=-2.0)
    assert collapse.regressed_guards == ("voice",)
    f = by_knob([rec("beta", 0.11, collapse)])["beta"]
    assert f.classification == FRAGILE and "voice regressed" in f.detail
    weak = power(underpowered=("guard voice: tolerance 0.50 is below 0.80, ...",), needed=0.8)
    f = by_knob([rec("beta", 0.11, collapse)], power=weak)["beta"]
    assert f.classification == FLAT
    assert "voice 0.80 (underpowered)" in f.detail


def test_a_large_move_that_collapses_is_not_fragile() -> None:
    f = by_knob([rec("beta", 0.5, verdict("guard_fail", -0.1, guard_delta=-2.0))])["beta"]
    assert f.classification == ONE_SIDED


def test_an_underpowered_target_yields_no_target_claims() -> None:
    weak = power(mde=1.9, underpowered=("target gt: the smallest effect kept ...",))
    records = [
        rec("learning_rate", 1.8e-5, verdict("discard", -0.41)),
        rec("learning_rate", 2.2e-5, verdict("discard", -0.38)),
    ]
    f = by_knob(records, power=weak)["learning_rate"]
    assert f.classification == UNRESOLVED
    assert "this session resolves gt effects >= 1.90 (underpowered)" in f.detail
    # A keep was confirmed at its alpha-spending level: it stands.
    kept = by_knob([*records, rec("learning_rate", 2.4e-5, verdict("keep", 2.0))], power=weak)
    assert kept["learning_rate"].classification == MONOTONE


def test_categorical_knobs() -> None:
    collapse = verdict("guard_fail", -0.2, guard_delta=-4.37)
    worse = verdict("discard", -0.6)
    assert (
        by_knob([rec("curriculum", "source_first", collapse)])["curriculum"].classification
        == FRAGILE
    )
    better = verdict("keep", 0.5)
    assert (
        by_knob([rec("curriculum", "easy_first", better)])["curriculum"].classification
        == BETTER_CHOICE
    )
    # The demo: mixture with 3 choices, one of two alternatives tried -> not a local optimum.
    f = by_knob([rec("curriculum", "easy_first", worse)])["curriculum"]
    assert f.classification == WORSE_CHOICE
    assert "not tried: curriculum=source_first" in f.detail
    both = [rec("curriculum", "easy_first", worse), rec("curriculum", "source_first", worse)]
    assert by_knob(both)["curriculum"].classification == LOCAL_OPTIMUM
    # Without the knob's choices, never a local optimum.
    assert by_knob(both, lanes_knobs=None)["curriculum"].classification == WORSE_CHOICE


def test_last_record_of_a_change_wins_and_crashes_are_untested() -> None:
    records = [
        rec("learning_rate", 2.4e-5, verdict("candidate", 0.4)),
        rec("learning_rate", 2.4e-5, verdict("inconclusive", 0.2)),  # confirmation
        ProbeRecord(
            changes={"rank": 8},
            verdict=Verdict(VerdictStatus.CRASH, "oom", "gt"),
            lane="hyperparameters",
        ),
    ]
    f = by_knob(records)
    assert f["learning_rate"].classification == FLAT
    assert f["rank"].classification == UNTESTED


def test_untried_moves_respect_the_range() -> None:
    recipe = {**RECIPE, "rank": 64}  # at its upper bound: only down is a move
    records = [rec("learning_rate", 3e-5, verdict("inconclusive", 0.0))]
    missing = untried_moves(records, recipe, LANES)
    assert missing["learning_rate"] == ["learning_rate down"]
    assert missing["rank"] == ["rank down"]
    assert missing["curriculum"] == ["curriculum=easy_first", "curriculum=source_first"]


def test_no_negative_zero() -> None:
    assert signed(-0.001) == "+0.00" and signed(-0.006) == "-0.01"
    f = by_knob([rec("rank", 8, verdict("inconclusive", -0.001))])["rank"]
    assert "-0.00" not in f.detail


def test_lanes_tried_kept_best() -> None:
    records = [
        rec("learning_rate", 2.4e-5, verdict("keep", 0.4)),
        rec("rank", 8, verdict("discard", -0.1)),
        ProbeRecord(
            changes={"rank": 8, "learning_rate": 3e-5},
            verdict=verdict("keep", 0.6),
            lane="hyperparameters",
        ),
        rec("gt_weight", 2.0, verdict("guard_fail", 0.9), lane="data_mixture"),
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
    confirm = verdict("keep", 0.45)
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
    campaign = {"objective": {"target": "gt"}, "recipe": RECIPE, "lanes": LANES}
    rows = knob_findings_from_report_runs(runs, campaign)
    assert len(rows) == 1
    assert rows[0]["knob"] == "learning_rate" and rows[0]["classification"] == MONOTONE
    assert rows[0]["observations"][1]["status"] == "keep"
    # A row without its verdict's numbers is no evidence of "worse".
    assert rows[0]["observations"][0]["effect"] == "flat"


# ---- the null world: nothing any change does matters ---------------------------------------

NULL_CATEGORIES = {"facts": 20, "voice": 20, "offtask": 20}
NULL_OBJECTIVE = Objective(
    target="facts",
    guards=["voice", "offtask"],
    min_improvement=0.0,  # keeps any effect it can show: the screen passes 5% of null probes
    guard_tolerance=2.0,
    critical_below=2.0,  # a few hard prompts fail critically in every run
)
NULL_RECIPE = {"learning_rate": 1e-3, "lora_r": 16, "mixture": "natural"}
NULL_LANES: dict[str, dict[str, Any]] = {
    "hyperparameters": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "lora_r": {"type": "int", "low": 4, "high": 64, "log": True},
    },
    "data_mixture": {
        "mixture": {"type": "categorical", "choices": ["natural", "stratified", "proportional"]}
    },
}
NULL_PROBES: list[tuple[str, Any]] = [
    ("learning_rate", 5e-4),
    ("learning_rate", 8e-4),
    ("learning_rate", 1.25e-3),
    ("learning_rate", 2e-3),
    ("lora_r", 8),
    ("lora_r", 32),
    ("mixture", "stratified"),
    ("mixture", "proportional"),
]
NULL_SESSIONS = 240


def null_session(seed: int, *, confirm: bool = True) -> list[str]:
    """One session where no change does anything: 3 baseline seeds, 8 single-knob probes over
    3 knobs (both ways, every choice), each candidate confirmed by a fresh run judged alone at
    its alpha-spending level -- or, with `confirm` False, left unconfirmed (the budget ran out
    first). Per-prompt scores = difficulty + a model-wide seed shift (every prompt of a run
    moves together) + per-prompt run noise. Returns the claims its findings make."""
    rng = np.random.default_rng(seed)
    difficulty = {c: rng.normal(6.0, 2.0, n) for c, n in NULL_CATEGORIES.items()}

    def train() -> list[Score]:
        shift = rng.normal(0.0, 0.6)
        out = []
        for c, n in NULL_CATEGORIES.items():
            x = difficulty[c] + shift + rng.normal(0.0, 0.8, n)
            out += [Score(f"{c}-{i}", c, float(x[i])) for i in range(n)]
        return out

    baseline = [train() for _ in range(3)]
    noise = build_noise_model(baseline, NULL_OBJECTIVE)
    budget = 3 + 2 * len(NULL_PROBES)
    cap = max_confirmations(budget, 3)
    report = power_report(noise, NULL_OBJECTIVE, max_confirmations=cap)
    records = []
    confirmations = 0
    for knob, value in NULL_PROBES:
        v = compare([train()], baseline, NULL_OBJECTIVE, noise)
        records.append(ProbeRecord({knob: value}, v, lane="x"))
        if confirm and v.status is VerdictStatus.CANDIDATE:
            confirmations += 1
            level = confirmation_alpha(confirmations, cap)
            v = compare([train()], baseline, NULL_OBJECTIVE, noise, confirmation=True, alpha=level)
            records.append(ProbeRecord({knob: value}, v, lane="x"))
    findings = derive_findings(records, NULL_RECIPE, power=report, lanes_knobs=NULL_LANES)
    return [f"{k.knob}: {k.classification}" for k in findings.knobs if k.classification in CLAIMS]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_null_world_claims_at_most_5_percent_of_sessions() -> None:
    # Half the sessions confirm their candidates, half end with them unconfirmed.
    claims = {s: null_session(20_000 + s, confirm=s % 2 == 0) for s in range(NULL_SESSIONS)}
    hits = sum(bool(c) for c in claims.values())
    rate = hits / NULL_SESSIONS
    low, high = wilson(hits, NULL_SESSIONS)
    examples = [c for c in claims.values() if c][:5]
    message = (
        f"{hits}/{NULL_SESSIONS} null sessions ({rate:.1%}, 95% Wilson [{low:.1%}, {high:.1%}]) "
        f"claim something; e.g. {examples}"
    )
    print("\n" + message)
    assert rate <= 0.05, message

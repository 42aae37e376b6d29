"""Edge cases of agent.verdict the mutation run found unguarded (docs/design.md, "Mutation
testing"): the exact wording of every reason, the critical-failure branch with counts per
category, the storage round trip (JSON, an unbounded dof), a guard no run shares a prompt
with, one- and two-prompt categories, lower-is-better, the default levels.

Small hand-built score sets: category c's baseline run j scores DIFFICULTY + (-a, 0, +a)[j]
(so the run-to-run SD of its mean is exactly a) and a probe run DIFFICULTY + shift + PERTURB
(PERTURB has mean 0, so the delta is the shift). Every expected number is recomputed here with
numpy and scipy from the definitions in agent/verdict.py's docstring, never read back from the
code under test; the wording of a reason is the contract the session log and report show.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import stats as sps

from agent.campaign import Objective
from agent.stats import DiffTest
from agent.verdict import (
    NoiseModel,
    Verdict,
    VerdictStatus,
    build_noise_model,
    compare,
    crash_verdict,
)
from probes.spec import Score

DIFFICULTY = (6.0, 5.0, 7.0, 4.5)
PERTURB = (0.04, -0.03, 0.02, -0.03)  # mean 0
OBJ = Objective(target="t", guards=["g1", "g2"], min_improvement=0.0, guard_tolerance=0.5)


def baseline(spread: dict[str, float], seeds: int = 3) -> dict[str, np.ndarray]:
    """`seeds` runs (3: offsets -a, 0, +a; other counts: all equal to DIFFICULTY)."""
    offsets = {c: (-a, 0.0, a) if seeds == 3 else (0.0,) * seeds for c, a in spread.items()}
    return {c: np.array([[d + o for d in DIFFICULTY] for o in offsets[c]]) for c in spread}


def probe(shift: dict[str, float], *perturbs: Sequence[float]) -> dict[str, np.ndarray]:
    """One run per perturbation (PERTURB when none is given)."""
    rows = perturbs or (PERTURB,)
    return {
        c: np.array([[d + s + e for d, e in zip(DIFFICULTY, p, strict=True)] for p in rows])
        for c, s in shift.items()
    }


def as_runs(
    values: dict[str, np.ndarray], critical: dict[str, Sequence[int]] | None = None
) -> list[list[Score]]:
    """Runs of Scores; critical[c][j] flags the first prompts of c in run j as critical."""
    flags = critical or {}
    rows = len(next(iter(values.values())))
    return [
        [
            Score(f"{c}-{i}", c, float(v), critical=i < flags.get(c, [0] * rows)[j])
            for c, m in values.items()
            for i, v in enumerate(m[j])
        ]
        for j in range(rows)
    ]


@dataclasses.dataclass
class Hand:
    """A t test computed here: delta, its SE and dof."""

    delta: float
    se: float
    dof: float

    def _dist(self):  # type: ignore[no-untyped-def]
        return sps.norm if math.isinf(self.dof) else sps.t(self.dof)

    def interval(self, level: float) -> tuple[float, float]:
        half = self._dist().ppf(1 - level) * self.se
        return self.delta - half, self.delta + half

    def p_above(self, threshold: float) -> float:
        return float(self._dist().sf((self.delta - threshold) / self.se))

    def p_below(self, threshold: float) -> float:
        return float(self._dist().cdf((self.delta - threshold) / self.se))

    def span(self, level: float) -> str:
        low, high = self.interval(level)
        return f"{self.delta:+.2f} [{low:+.2f}, {high:+.2f}]"


def hand(
    base: np.ndarray,
    probe_rows: np.ndarray,
    *,
    sign: float = 1.0,
    sd: float | None = None,
    dof: float | None = None,
) -> Hand:
    """Run-level SE sd * sqrt(1/k + 1/s) (sd: the SD of the baseline run means), floored by the
    per-prompt SE of the paired differences; dof s - 1 unless given."""
    s, k = len(base), len(probe_rows)
    run_sd = float(base.mean(axis=1).std(ddof=1)) if sd is None else sd
    run_se = run_sd * math.sqrt(1 / k + 1 / s)
    diffs = sign * (probe_rows.mean(axis=0) - base.mean(axis=0))
    prompt_se = float(diffs.std(ddof=1) / math.sqrt(diffs.size)) if diffs.size > 1 else 0.0
    return Hand(float(diffs.mean()), max(run_se, prompt_se), float(s - 1 if dof is None else dof))


def ans(count: float) -> float:
    return 2 * math.sqrt(count + 3 / 8)  # Anscombe


# ---- critical failures and regressed guards: one verdict with every field populated ------------

FULL_BASE = baseline({"t": 0.2, "g1": 0.1, "g2": 0.1, "o": 0.2})
FULL_PROBE = probe(
    {"t": 1.0, "g1": -3.0, "g2": -2.0, "o": 0.5}, PERTURB, (-0.02, 0.03, -0.04, 0.03)
)
FULL_CRITICAL_BASE = {"t": [1, 1, 1], "o": [3, 0, 0]}  # o is not judged: its flags never count
FULL_CRITICAL_PROBE = {"t": [1, 1], "g1": [4, 4], "g2": [2, 1], "o": [2, 2]}


def full_verdict() -> Verdict:
    base_runs = as_runs(FULL_BASE, FULL_CRITICAL_BASE)
    # "o" measured with a known variance (unbounded dof): stored as null, shown as normal.
    noise = build_noise_model(base_runs, OBJ)
    noise = dataclasses.replace(noise, dof={**noise.dof, "o": math.inf})
    return compare(as_runs(FULL_PROBE, FULL_CRITICAL_PROBE), base_runs, OBJ, noise)


def test_critical_failures_and_two_regressed_guards_are_all_named_with_their_numbers() -> None:
    v = full_verdict()
    h = {c: hand(FULL_BASE[c], FULL_PROBE[c]) for c in ("t", "g1", "g2")}
    h["o"] = hand(FULL_BASE["o"], FULL_PROBE["o"], dof=math.inf)
    # Judged categories only: per run 1 + 4 + 2 and 1 + 4 + 1 against 1 in every seed.
    new = (7 + 6) / 2 - 1
    se = math.sqrt(1.0 * (1 / 2 + 1 / 3))  # Poisson floor: the seeds agree on their count
    critical_p = float(sps.t.sf(((ans(7) + ans(6)) / 2 - ans(1)) / se, df=2))
    assert critical_p < 0.05
    p_reg = {g: h[g].p_below(-0.5) for g in ("g1", "g2")}
    assert v.reason == (
        f"5.5 new critical failure(s) per run beyond the baseline's 1.0 "
        f"(p={critical_p:.3f} < 0.05); guard regressed: "
        f"g1 {h['g1'].span(0.05)} entirely below -0.50 (p={p_reg['g1']:.3f}, Holm); "
        f"g2 {h['g2'].span(0.05)} entirely below -0.50 (p={p_reg['g2']:.3f}, Holm)"
    )
    assert v.status is VerdictStatus.GUARD_FAIL and v.guard_ok is False
    assert v.target == "t" and v.runs == 2 and v.stage == "screen"
    assert v.alpha == pytest.approx(0.05) and v.confidence == pytest.approx(0.90)
    assert v.new_critical == pytest.approx(new)
    assert v.critical_p == pytest.approx(critical_p)
    assert v.regressed_guards == ("g1", "g2") and v.failed_guards == ("g1", "g2")
    assert v.worst_guard == "g1" and v.worst_guard_delta == pytest.approx(h["g1"].delta)
    assert v.target_delta == pytest.approx(h["t"].delta)
    assert (v.ci_low, v.ci_high) == pytest.approx(h["t"].interval(0.05))
    # Critically failing prompts per run, per judged category: baseline over 3 seeds, probe
    # over its 2 runs; an "other" category is reported, never counted.
    per_run = {"t": (1.0, 1.0), "g1": (0.0, 4.0), "g2": (0.0, 1.5), "o": (0.0, 0.0)}
    for name, (crit_base, crit_probe) in per_run.items():
        c = v.category(name)
        assert c is not None
        assert (c.critical_baseline, c.critical_probe) == pytest.approx((crit_base, crit_probe))
        assert c.se == pytest.approx(h[name].se)  # two probe runs: sqrt(1/2 + 1/3)
        assert c.dof == h[name].dof
        assert (c.ci_low, c.ci_high) == pytest.approx(h[name].interval(0.05))
    other = v.category("o")
    assert other is not None and other.role == "other" and other.level == pytest.approx(0.05)
    assert other.threshold is None and other.p_value is None and other.passed is None
    assert other.regressed is None and other.p_regress is None
    assert other.p_worse == pytest.approx(h["o"].p_below(0.0))
    assert v.category("absent") is None


FIELDS = {
    "status", "reason", "target", "target_delta", "ci_low", "ci_high", "guard_ok",
    "worst_guard", "worst_guard_delta", "new_critical", "categories", "runs", "confidence",
    "failed_guards", "critical_p", "regressed_guards", "stage", "alpha",
}  # fmt: skip


def test_a_stored_verdict_is_plain_json_and_reads_back_equal() -> None:
    v = full_verdict()
    data = v.to_dict()
    assert set(data) == FIELDS
    assert type(data["status"]) is str and data["status"] == "guard_fail"
    assert data["failed_guards"] == ["g1", "g2"] and data["regressed_guards"] == ["g1", "g2"]
    assert isinstance(data["categories"], list)
    dofs = {c["category"]: c["dof"] for c in data["categories"]}
    assert dofs == {"t": 2.0, "g1": 2.0, "g2": 2.0, "o": None}  # JSON has no infinity
    text = json.dumps(data, allow_nan=False)
    back = Verdict.from_dict(json.loads(text))
    assert back == v
    assert back.category("o").dof == math.inf  # type: ignore[union-attr]


def test_a_crash_verdict_stores_its_defaults_and_reads_back_from_three_keys() -> None:
    v = crash_verdict(OBJ, "boom")
    assert v.to_dict() == {
        "status": "crash", "reason": "boom", "target": "t", "target_delta": None,
        "ci_low": None, "ci_high": None, "guard_ok": None, "worst_guard": None,
        "worst_guard_delta": None, "new_critical": 0.0, "categories": [], "runs": 1,
        "confidence": None, "failed_guards": [], "critical_p": None, "regressed_guards": [],
        "stage": "screen", "alpha": None,
    }  # fmt: skip
    # The oldest rows hold only these three keys.
    assert Verdict.from_dict({"status": "crash", "reason": "boom", "target": "t"}) == v


def test_crash_reasons_name_what_is_missing() -> None:
    base_runs = as_runs(FULL_BASE)
    for no_probe in ([], [[]]):
        v = compare(no_probe, base_runs, OBJ)
        assert (v.status, v.reason, v.target) == (VerdictStatus.CRASH, "no scores", "t")
    v = compare(as_runs(FULL_PROBE), [[], []], OBJ)
    assert (v.status, v.reason, v.target) == (VerdictStatus.CRASH, "no baseline scores", "t")


# ---- the wording of each outcome ---------------------------------------------------------------

CALM_GUARDS = {"g1": 0.05, "g2": 0.05}


def test_a_screen_candidate_says_what_cleared_what_at_which_level() -> None:
    base, pr = baseline({"t": 0.3, **CALM_GUARDS}), probe({"t": 1.5, "g1": 0.0, "g2": 0.0})
    v = compare(as_runs(pr), as_runs(base), OBJ)
    h = hand(base["t"], pr["t"])
    assert v.status is VerdictStatus.CANDIDATE
    assert v.reason == (
        f"t {h.span(0.05)} (90.0% interval, t, 2 dof) on one run clears 0.00 "
        f"(p={h.p_above(0.0):.4f} <= 0.05); awaiting a fresh-seed confirmation"
    )
    # The comparison's own test answers other questions with the same numbers.
    t = v.category("t")
    assert t is not None
    assert t.test().p_above(0.5) == pytest.approx(h.p_above(0.5))
    assert t.test().p_below(2.0) == pytest.approx(h.p_below(2.0))
    assert t.test().interval(0.025) == pytest.approx(h.interval(0.025))


def test_a_confirmation_defaults_to_half_the_session_alpha_and_says_keep() -> None:
    base, pr = baseline({"t": 0.3, **CALM_GUARDS}), probe({"t": 3.0, "g1": 0.0, "g2": 0.0})
    v = compare(as_runs(pr), as_runs(base), OBJ, confirmation=True)
    h = hand(base["t"], pr["t"])
    assert v.status is VerdictStatus.KEEP and v.stage == "confirm"
    assert v.alpha == pytest.approx(0.025) and v.confidence == pytest.approx(0.95)
    t = v.category("t")
    assert t is not None and t.level == pytest.approx(0.025)
    assert (v.ci_low, v.ci_high) == pytest.approx(h.interval(0.025))
    assert v.reason == (
        f"t {h.span(0.025)} (95.0% interval, t, 2 dof) on the confirmation run "
        f"(fresh seed, judged alone) clears 0.00 (p={h.p_above(0.0):.4f} <= 0.025); "
        "every guard shown above its tolerance"
    )


def test_guards_not_shown_safe_on_a_confirmation_are_listed_worst_first() -> None:
    base = baseline({"t": 0.3, "g1": 0.3, "g2": 0.3})
    pr = probe({"t": 3.0, "g1": -0.2, "g2": -0.35})
    v = compare(as_runs(pr), as_runs(base), OBJ, confirmation=True, alpha=0.025)
    h = {c: hand(base[c], pr[c]) for c in base}
    for g in ("g1", "g2"):  # lower bound below -0.5, upper bound above: unsafe, not regressed
        low, high = h[g].interval(0.05)
        assert low < -0.5 < high
    assert v.status is VerdictStatus.INCONCLUSIVE
    assert v.failed_guards == ("g2", "g1") and v.regressed_guards == ()
    assert v.reason == (
        f"t {h['t'].span(0.025)} (95.0% interval, t, 2 dof) on the confirmation run "
        f"(fresh seed, judged alone) clears 0.00 (p={h['t'].p_above(0.0):.4f} <= 0.025), "
        f"but not shown safe: g2 {h['g2'].span(0.05)} reaches below -0.50; "
        f"g1 {h['g1'].span(0.05)} reaches below -0.50"
    )


def test_a_target_shown_below_min_improvement_is_a_discard_saying_so() -> None:
    strict = Objective(target="t", guards=["g1", "g2"], min_improvement=2.5)
    base, pr = baseline({"t": 0.3, **CALM_GUARDS}), probe({"t": 1.0, "g1": 0.0, "g2": 0.0})
    v = compare(as_runs(pr), as_runs(base), strict)
    h = hand(base["t"], pr["t"])
    assert h.interval(0.05)[1] < 2.5
    assert v.status is VerdictStatus.DISCARD
    assert v.reason == f"t {h.span(0.05)} (90.0% interval, t, 2 dof) on one run is below 2.50"


def test_a_target_exactly_at_min_improvement_straddles_it() -> None:
    # Seeds that agree and a probe that moves every prompt by exactly 0.5: the interval is
    # [0.5, 0.5], not below 0.5, and p = 0.5 clears nothing. No guards: no worst guard.
    edge = Objective(target="t", min_improvement=0.5)
    base, pr = baseline({"t": 0.0}), probe({"t": 0.5}, (0.0,) * 4)
    v = compare(as_runs(pr), as_runs(base), edge)
    assert v.status is VerdictStatus.INCONCLUSIVE
    assert (v.target_delta, v.ci_low, v.ci_high) == (0.5, 0.5, 0.5)
    assert v.reason == "t +0.50 [+0.50, +0.50] (90.0% interval, t, 2 dof) on one run straddles 0.50"
    assert v.guard_ok is True and v.failed_guards == () and v.regressed_guards == ()
    assert v.worst_guard is None and v.worst_guard_delta is None


def test_a_spent_error_budget_shows_the_90_percent_interval_and_no_confidence() -> None:
    only = Objective(target="t")
    base, pr = baseline({"t": 0.3}), probe({"t": 3.0})
    v = compare(as_runs(pr), as_runs(base), only, confirmation=True, alpha=0.0)
    h = hand(base["t"], pr["t"])
    assert v.status is VerdictStatus.INCONCLUSIVE
    assert v.confidence is None and v.alpha == 0.0
    assert (v.ci_low, v.ci_high) == pytest.approx(h.interval(0.05))
    assert v.reason == (
        f"t {h.span(0.05)}: the session's error budget for confirmations is spent, "
        "so no further change can be kept"
    )


def test_a_spent_error_budget_marks_nothing_passed_even_at_p_zero() -> None:
    only = Objective(target="t")
    base, pr = baseline({"t": 0.0}), probe({"t": 1.0}, (0.0,) * 4)  # no noise at all
    v = compare(as_runs(pr), as_runs(base), only, confirmation=True, alpha=0.0)
    t = v.category("t")
    assert t is not None and t.se == 0.0 and t.p_value == 0.0
    assert t.passed is False and v.status is VerdictStatus.INCONCLUSIVE


def test_an_unbounded_dof_is_a_normal_interval_and_says_so() -> None:
    only = Objective(target="t")
    base, pr = baseline({"t": 0.3}), probe({"t": 1.0})
    noise = NoiseModel(seed_sd={"t": 0.3}, dof={"t": math.inf}, seeds=3)
    v = compare(as_runs(pr), as_runs(base), only, noise)
    h = hand(base["t"], pr["t"], sd=0.3, dof=math.inf)
    assert (v.ci_low, v.ci_high) == pytest.approx(h.interval(0.05))
    assert v.reason == (
        f"t {h.span(0.05)} (90.0% interval, normal) on one run clears 0.00 "
        f"(p={h.p_above(0.0):.4f} <= 0.05); awaiting a fresh-seed confirmation"
    )
    assert v.to_dict()["categories"][0]["dof"] is None
    assert Verdict.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False))) == v


# ---- prompts: none shared, one, two ------------------------------------------------------------


def test_a_guard_no_run_shares_a_prompt_with_is_unmeasured_never_safe() -> None:
    """Judge errors left g1's prompts 0-1 out of one baseline seed and 2-3 out of the probe:
    no g1 prompt was scored by every run. A replicated configuration adds a dof."""
    base = baseline({"t": 0.3, "g1": 0.05, "g2": 0.05})
    pr = probe({"t": 3.0, "g1": 0.0, "g2": 0.2})
    base_runs, probe_runs = as_runs(base), as_runs(pr)
    base_runs[0] = [s for s in base_runs[0] if s.prompt_id not in ("g1-0", "g1-1")]
    probe_runs[0] = [s for s in probe_runs[0] if s.prompt_id not in ("g1-2", "g1-3")]
    replicate = {c: np.array([[d + o for d in DIFFICULTY] for o in (0.1, -0.1)]) for c in base}
    noise = build_noise_model(base_runs, OBJ, replicates=[as_runs(replicate)])
    v = compare(probe_runs, base_runs, OBJ, noise)
    g1 = v.category("g1")
    assert g1 is not None and g1.n_prompts == 0
    assert (g1.delta, g1.se, g1.dof) == (0.0, math.inf, 3.0)
    assert (g1.ci_low, g1.ci_high) == (-math.inf, math.inf)
    assert (g1.p_value, g1.p_regress, g1.p_worse) == (0.5, 0.5, 0.5)
    assert g1.passed is False and g1.regressed is False
    assert v.failed_guards == ("g1",) and v.regressed_guards == () and v.guard_ok is False
    # The others keep their tests: the pooled SD of the run means has (3 - 1) + (2 - 1) dof.
    ss = base["t"].mean(axis=1).var(ddof=1) * 2 + replicate["t"].mean(axis=1).var(ddof=1)
    h = hand(base["t"], pr["t"], sd=math.sqrt(ss / 3), dof=3.0)
    assert v.status is VerdictStatus.CANDIDATE
    assert v.reason == (
        f"t {h.span(0.05)} (90.0% interval, t, 3 dof) on one run clears 0.00 "
        f"(p={h.p_above(0.0):.4f} <= 0.05); awaiting a fresh-seed confirmation"
    )
    g2 = v.category("g2")
    assert g2 is not None and g2.dof == 3.0 and g2.passed is True and g2.n_prompts == 4
    # Stored as strict JSON (verdict.json, the database): the unmeasured guard's infinite SE
    # and interval are nulls, and read back as the same infinities.
    stored = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    g1_stored = next(c for c in stored["categories"] if c["category"] == "g1")
    assert (g1_stored["se"], g1_stored["ci_low"], g1_stored["ci_high"]) == (None, None, None)
    assert Verdict.from_dict(stored) == v


def test_one_and_two_prompt_categories_use_the_right_floor_without_warnings() -> None:
    # t has one prompt: no per-prompt spread, the run-level SE alone. g has two prompts and
    # seeds that agree: the per-prompt SE of the two differences is the whole SE.
    obj = Objective(target="t", guards=["g"], guard_tolerance=0.5)

    def run(t: float, g: tuple[float, float]) -> list[Score]:
        return [Score("t-0", "t", t), Score("g-0", "g", g[0]), Score("g-1", "g", g[1])]

    base = [run(5.0 + o, (7.0, 8.0)) for o in (-0.2, 0.0, 0.2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = compare([run(6.0, (7.5, 7.9))], base, obj)
    t, g = v.category("t"), v.category("g")
    assert t is not None and g is not None
    assert t.se == pytest.approx(0.2 * math.sqrt(1 + 1 / 3))
    assert g.se == pytest.approx(np.std([0.5, -0.1], ddof=1) / math.sqrt(2))  # 0.3
    assert (t.n_prompts, g.n_prompts) == (1, 2)


# ---- direction, criticals by score, default noise ----------------------------------------------


def test_lower_is_better_orients_deltas_and_counts_high_scores_as_critical() -> None:
    """Lower is better, critical_below 9: a score above 9 fails critically. The baseline seeds
    have 0, 2 and 4 such g prompts, so that count's own spread (not the Poisson floor) is the
    noise, and only a noise model that knows critical_below sees it."""
    obj = Objective(target="t", guards=["g"], critical_below=9.0, higher_is_better=False)
    base = baseline({"t": 0.2, "g": 0.0})
    for j, bad in enumerate((0, 2, 4)):
        base["g"][j, :bad] = 9.5
    pr = probe({"t": -1.0, "g": 0.0})
    pr["g"][0, :] = 9.5
    v = compare(as_runs(pr), as_runs(base), obj)  # noise model built from the baseline
    h = hand(base["t"], pr["t"], sign=-1.0)
    t, g = v.category("t"), v.category("g")
    assert t is not None and g is not None
    assert t.delta == pytest.approx(1.0) and v.target_delta == pytest.approx(h.delta)
    assert t.baseline_mean == pytest.approx(np.mean(DIFFICULTY))
    assert t.probe_mean == pytest.approx(np.mean(DIFFICULTY) - 1.0)
    assert (g.critical_baseline, g.critical_probe) == pytest.approx((2.0, 4.0))
    assert (t.critical_baseline, t.critical_probe) == (0.0, 0.0)
    assert v.new_critical == pytest.approx(2.0)
    spread = float(np.std([ans(0), ans(2), ans(4)], ddof=1))
    assert spread > 1  # wider than a Poisson count: the measured spread is the noise
    shift = ans(4) - np.mean([ans(0), ans(2), ans(4)])
    expected = sps.t.sf(shift / (spread * math.sqrt(1 + 1 / 3)), df=2)
    assert v.critical_p == pytest.approx(expected)


def test_exactly_one_new_critical_failure_per_run_fails_when_significant() -> None:
    # Ten seeds without critical failures, ten probe runs with exactly one each: one more per
    # run is the smallest count that fails, and p is small with 9 dof. Every guard is safe,
    # but the critical failures alone make guard_ok false.
    obj = Objective(target="t", guards=["g"], guard_tolerance=0.5)
    base = baseline({"t": 0.0, "g": 0.0}, seeds=10)
    pr = probe({"t": 1.0, "g": 0.0}, *[PERTURB] * 10)
    v = compare(as_runs(pr, {"g": [1] * 10}), as_runs(base), obj)
    p = float(sps.t.sf((ans(1) - ans(0)) / math.sqrt(1 / 10 + 1 / 10), df=9))
    assert p < 0.05
    assert v.new_critical == pytest.approx(1.0) and v.critical_p == pytest.approx(p)
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.reason == (
        f"1.0 new critical failure(s) per run beyond the baseline's 0.0 (p={p:.3f} < 0.05)"
    )
    assert v.failed_guards == () and v.regressed_guards == () and v.guard_ok is False
    g = v.category("g")
    assert g is not None and g.passed is True and g.critical_probe == pytest.approx(1.0)


def test_the_comparison_test_is_the_t_test_behind_it() -> None:
    c = full_verdict().category("t")
    assert c is not None
    assert c.test() == DiffTest(c.delta, c.se, c.dof)
    h = hand(FULL_BASE["t"], FULL_PROBE["t"])
    assert c.test().p_above(0.3) == pytest.approx(h.p_above(0.3))


def test_a_p_value_equal_to_the_level_clears_it_as_the_reason_says() -> None:
    # The rule the reason prints is "p <= alpha". A delta exactly at min_improvement has
    # p = 0.5 exactly (t = 0): at a one-sided level of 0.5 it clears; just below, it does not.
    edge = Objective(target="t", min_improvement=0.5)
    base, pr = as_runs(baseline({"t": 0.0})), as_runs(probe({"t": 0.5}, (0.0,) * 4))
    at = compare(pr, base, edge, alpha=0.5)
    t = at.category("t")
    assert t is not None and t.p_value == 0.5 and t.passed is True
    assert at.status is VerdictStatus.CANDIDATE and "(p=0.5000 <= 0.5)" in at.reason
    below = compare(pr, base, edge, alpha=0.4999)
    assert below.category("t").passed is False  # type: ignore[union-attr]
    assert below.status is VerdictStatus.INCONCLUSIVE

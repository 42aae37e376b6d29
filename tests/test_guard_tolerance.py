"""Per-guard tolerances (`guard_tolerance: {voice: 3.0, default: 0.5}`): each guard is judged
against its own tolerance, the others against `default`.

A guard that drops by 1.0 (clearly, with small noise) passes with its own tolerance 3.0 and is
shown regressed (guard_fail) with 0.5: a verdict that used `default` for every guard would
fail it.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.campaign import Objective
from agent.verdict import CategoryComparison, Verdict, VerdictStatus, build_noise_model, compare
from probes.spec import Score

GUARDS = ["voice", "offtask"]
DROP = 1.0


def runs(
    shift: dict[str, float] | None = None,
    *,
    n: int = 40,
    seeds: int = 3,
    repeats: int = 2,
    seed: int = 0,
    noise: float = 0.3,
    difficulty_seed: int = 99,
) -> list[list[Score]]:
    """`seeds` runs of categories facts (target), voice and offtask (guards) with per-category
    shifts and per-evaluation noise (after tests/test_verdict.py's helper)."""
    cats = ["facts", *GUARDS]
    difficulty = np.random.default_rng(difficulty_seed).normal(6, 1, (len(cats), n))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(seeds):
        run = []
        for ci, c in enumerate(cats):
            for i in range(n):
                for r in range(repeats):
                    value = difficulty[ci, i] + (shift or {}).get(c, 0.0)
                    run.append(Score(f"{c}{i}", c, float(value + rng.normal(0, noise)), r))
        out.append(run)
    return out


BASE = runs(seed=1)
VOICE_DROPS = runs({"voice": -DROP}, seeds=1, seed=2)


def judge(tolerance: float | dict[str, float]) -> Verdict:
    objective = Objective(
        target="facts", guards=GUARDS, min_improvement=0.0, guard_tolerance=tolerance
    )
    return compare(VOICE_DROPS, BASE, objective, build_noise_model(BASE, objective))


def guard(v: Verdict, name: str) -> CategoryComparison:
    c = v.category(name)
    assert c is not None and c.role == "guard"
    return c


def test_the_drop_is_clear() -> None:
    # The data: voice drops by about DROP, tightly measured; offtask does not move.
    v = judge(0.5)
    voice = guard(v, "voice")
    assert voice.delta == pytest.approx(-DROP, abs=0.15)
    assert voice.ci_high < -0.5 and voice.ci_low > -3.0
    assert abs(guard(v, "offtask").delta) < 0.15


def test_a_guard_with_its_own_tolerance_passes() -> None:
    v = judge({"voice": 3.0, "default": 0.5})
    voice, offtask = guard(v, "voice"), guard(v, "offtask")
    assert voice.threshold == pytest.approx(-3.0)
    assert offtask.threshold == pytest.approx(-0.5)  # the default for the unnamed guard
    assert voice.passed is True and voice.regressed is False
    assert offtask.passed is True and offtask.regressed is False
    assert v.guard_ok is True
    assert v.status is not VerdictStatus.GUARD_FAIL
    assert v.failed_guards == () and v.regressed_guards == ()


@pytest.mark.parametrize("tolerance", [0.5, {"default": 0.5}, {"offtask": 3.0, "default": 0.5}])
def test_the_same_drop_fails_with_the_default_tolerance(
    tolerance: float | dict[str, float],
) -> None:
    # The same drop, but voice has no tolerance of its own (the last case gives one to the
    # *other* guard, which must not spill over onto voice).
    v = judge(tolerance)
    voice = guard(v, "voice")
    assert voice.threshold == pytest.approx(-0.5)
    assert voice.passed is False and voice.regressed is True
    assert v.status is VerdictStatus.GUARD_FAIL
    assert v.guard_ok is False
    assert v.regressed_guards == ("voice",)
    assert "voice" in v.reason
    expected_offtask = 3.0 if isinstance(tolerance, dict) and "offtask" in tolerance else 0.5
    assert guard(v, "offtask").threshold == pytest.approx(-expected_offtask)


def test_tolerance_for_each_guard() -> None:
    objective = Objective(
        target="facts", guards=GUARDS, guard_tolerance={"voice": 3.0, "default": 0.25}
    )
    assert objective.tolerance_for("voice") == 3.0
    assert objective.tolerance_for("offtask") == 0.25
    no_default = Objective(target="facts", guards=GUARDS, guard_tolerance={"voice": 3.0})
    assert no_default.tolerance_for("offtask") == 0.5  # the documented default
    assert Objective(target="facts", guards=GUARDS, guard_tolerance=0.7).tolerance_for(
        "voice"
    ) == pytest.approx(0.7)

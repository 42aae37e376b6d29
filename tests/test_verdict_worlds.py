"""Simulated worlds: whole sessions at the verdict level, with known true effects.

A world draws per-prompt scores for baseline seeds and probes from

    score = difficulty[prompt] + effect[category] + seed_shift[run, category]
            + seed_x_prompt[run, prompt] + eval_noise[run, prompt, repeat]

plus rare judge glitches (one evaluation scored 0 and flagged critical) and rare model
failures (a prompt failing critically in every repeat of one run). A session measures the
baseline (`seeds` x `repeats`), then tries `probes` changes the way agent/session.py does:
probe -> compare; if CANDIDATE, a confirmation run -> compare(confirmation=True).

Run with `python -m pytest tests/test_verdict_worlds.py -s` to see the rates;
benchmarks/verdict_vs_naive.py imports this module to compare with a naive rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.campaign import Objective
from agent.verdict import (
    NoiseModel,
    Verdict,
    VerdictStatus,
    build_noise_model,
    compare,
    minimum_detectable_effect,
)
from probes.spec import Score


@dataclass(frozen=True)
class Change:
    """What one proposed change truly does."""

    name: str
    effects: dict[str, float] = field(default_factory=dict)  # category -> true delta
    new_critical: int = 0  # prompts (of the target and guards) that fail critically


@dataclass(frozen=True)
class World:
    """Noise parameters and the eval set of a simulated campaign (scores on a 0-10 scale)."""

    prompts: dict[str, int] = field(
        default_factory=lambda: {"ground_truth": 30, "voice": 25, "format": 25}
    )
    target: str = "ground_truth"
    guards: tuple[str, ...] = ("voice", "format")
    difficulty_sd: float = 1.2
    seed_shift_sd: float = 0.05  # the whole category moves with the training seed
    seed_x_prompt_sd: float = 0.3  # one prompt moves with the training seed
    eval_sd: float = 1.5  # one prompt moves between evaluations (seed 003: "3-8 points")
    glitch: float = 0.002  # per evaluation: judge output unparsable, scored 0, critical
    model_failure: float = 0.001  # per prompt per run: the model fails it critically
    seeds: int = 3
    repeats: int = 5
    min_improvement: float = 0.0
    tolerance: float = 1.0

    @property
    def objective(self) -> Objective:
        return Objective(
            target=self.target,
            guards=list(self.guards),
            min_improvement=self.min_improvement,
            guard_tolerance=self.tolerance,
        )

    def per_prompt_se(self, category: str | None = None) -> float:
        """SE of a category mean from per-prompt noise of one evaluation pass: the unit the
        issue's "2x the per-prompt noise SE" effect is measured in."""
        n = self.prompts[category or self.target]
        return math.sqrt(self.seed_x_prompt_sd**2 + self.eval_sd**2) / math.sqrt(n)

    def true_noise(self) -> NoiseModel:
        """The noise model a perfectly measured baseline would give (for predicted power)."""
        cats = list(self.prompts)
        w = {c: self.seed_x_prompt_sd**2 + self.eval_sd**2 / self.repeats for c in cats}
        return NoiseModel(
            seed_sd={c: math.sqrt(self.seed_shift_sd**2 + w[c] / self.prompts[c]) for c in cats},
            prompt_sd={c: math.sqrt(w[c]) for c in cats},
            n_prompts=dict(self.prompts),
            seeds=self.seeds,
            repeats=self.repeats,
            repeat_sd=dict.fromkeys(cats, self.eval_sd),
            seed_component_sd=dict.fromkeys(cats, self.seed_shift_sd),
        )


class Lab:
    """One session's universe: fixed prompt difficulties, fresh noise for every run."""

    def __init__(self, world: World, seed: int):
        self.world = world
        self.rng = np.random.default_rng(seed)
        self.difficulty = {
            c: 7.0 + self.rng.normal(0.0, world.difficulty_sd, n) for c, n in world.prompts.items()
        }

    def run(self, change: Change | None = None) -> list[Score]:
        """One training run of the recipe plus `change`, evaluated `repeats` times."""
        w, rng = self.world, self.rng
        effects = change.effects if change else {}
        scores: list[Score] = []
        protected = [w.target, *w.guards]
        forced: set[tuple[str, int]] = set()
        if change and change.new_critical:
            # New failures land on distinct prompts of the target and guards.
            pool = [(c, i) for c in protected for i in range(w.prompts[c])]
            picks = rng.choice(len(pool), size=change.new_critical, replace=False)
            forced = {pool[int(j)] for j in picks}
        for c, n in w.prompts.items():
            mean = (
                self.difficulty[c]
                + effects.get(c, 0.0)
                + rng.normal(0.0, w.seed_shift_sd)
                + rng.normal(0.0, w.seed_x_prompt_sd, n)
            )
            evals = mean[:, None] + rng.normal(0.0, w.eval_sd, (n, w.repeats))
            failed = rng.random(n) < w.model_failure
            glitch = rng.random((n, w.repeats)) < w.glitch
            for i in range(n):
                broken = bool(failed[i]) or (c, i) in forced
                for r in range(w.repeats):
                    if broken:
                        scores.append(Score(f"{c}-{i}", c, 1.0, repeat=r, critical=True))
                    elif glitch[i, r]:
                        scores.append(Score(f"{c}-{i}", c, 0.0, repeat=r, critical=True))
                    else:
                        scores.append(Score(f"{c}-{i}", c, float(evals[i, r]), repeat=r))
        return scores


@dataclass
class SessionOutcome:
    """Final status per change (after confirmation where there was one)."""

    final: dict[str, Verdict]
    first: dict[str, Verdict]
    runs_used: int

    def kept(self) -> list[str]:
        return [n for n, v in self.final.items() if v.status is VerdictStatus.KEEP]


Rule = Callable[..., Verdict]


def run_session(
    world: World, changes: Sequence[Change], seed: int, *, rule: Rule = compare
) -> SessionOutcome:
    """The session's decision procedure over `changes`, each tried once."""
    lab = Lab(world, seed)
    objective = world.objective
    baseline = [lab.run() for _ in range(world.seeds)]
    noise = build_noise_model(baseline, objective)
    final: dict[str, Verdict] = {}
    first: dict[str, Verdict] = {}
    runs = world.seeds
    for i, change in enumerate(changes):
        probe = lab.run(change)
        runs += 1
        v = rule([probe], baseline, objective, noise, seed=2 * i)
        first[change.name] = v
        if v.status is VerdictStatus.CANDIDATE:
            confirm = lab.run(change)
            runs += 1
            v = rule(
                [probe, confirm], baseline, objective, noise, confirmation=True, seed=2 * i + 1
            )
        final[change.name] = v
    return SessionOutcome(final=final, first=first, runs_used=runs)


def null_changes(n: int = 6) -> list[Change]:
    return [Change(f"null-{i}") for i in range(n)]


def effect_changes(world: World, multiple: float = 2.0, n: int = 6) -> list[Change]:
    """n changes, the third of which improves the target by `multiple` x per_prompt_se."""
    out = null_changes(n)
    out[2] = Change("effective", {world.target: multiple * world.per_prompt_se()})
    return out


def rates(
    world: World,
    changes_of: Callable[[int], Sequence[Change]],
    sessions: int,
    seed0: int = 0,
    rule: Rule = compare,
) -> dict[str, float]:
    """Fractions of sessions that kept anything / kept the change named 'effective'."""
    any_keep = effective_keep = false_keep = 0
    for s in range(sessions):
        out = run_session(world, changes_of(s), seed0 + s, rule=rule)
        kept = out.kept()
        any_keep += bool(kept)
        effective_keep += "effective" in kept
        false_keep += any(k != "effective" for k in kept)
    return {
        "any_keep": any_keep / sessions,
        "effective_keep": effective_keep / sessions,
        "false_keep": false_keep / sessions,
    }


WORLD = World()
SESSIONS = 200


def test_null_world_false_keeps_at_most_5_percent(record_property: Callable) -> None:
    r = rates(WORLD, lambda s: null_changes(6), SESSIONS, seed0=1000)
    print(
        f"\nnull world: {SESSIONS} sessions x 6 probes, sessions with a keep: {r['any_keep']:.1%}"
    )
    record_property("null_false_keep", r["any_keep"])
    assert r["any_keep"] <= 0.05


def test_effect_world_found_and_kept_at_least_80_percent(record_property: Callable) -> None:
    r = rates(WORLD, lambda s: effect_changes(WORLD, 2.0), SESSIONS, seed0=5000)
    predicted = minimum_detectable_effect(WORLD.true_noise(), WORLD.target)
    print(
        f"\neffect world: target +{2 * WORLD.per_prompt_se():.3f} (2 x per-prompt SE), "
        f"kept in {r['effective_keep']:.1%} of {SESSIONS} sessions; other keeps "
        f"{r['false_keep']:.1%}; predicted MDE {predicted:.3f}"
    )
    record_property("effect_detection", r["effective_keep"])
    assert r["effective_keep"] >= 0.80
    assert r["false_keep"] <= 0.05


def test_tradeoff_world_never_kept_and_names_the_guard(record_property: Callable) -> None:
    sessions = 60
    named = 0
    for s in range(sessions):
        change = Change("tradeoff", {WORLD.target: 0.8, "voice": -2.0})
        out = run_session(WORLD, [change], 9000 + s)
        v = out.final["tradeoff"]
        assert v.status is not VerdictStatus.KEEP
        assert v.status is VerdictStatus.GUARD_FAIL, v.reason
        assert "voice" in v.failed_guards and "voice" in v.reason
        named += 1
    print(f"\ntrade-off world: {named}/{sessions} guard_fail naming voice, 0 kept")
    record_property("tradeoff_guard_fail", named / sessions)


def test_critical_world_guard_fails(record_property: Callable) -> None:
    sessions = 60
    by_critical_test = 0
    for s in range(sessions):
        change = Change("breaks", {WORLD.target: 0.8}, new_critical=3)
        out = run_session(WORLD, [change], 12000 + s)
        v = out.final["breaks"]
        assert v.status is VerdictStatus.GUARD_FAIL, v.reason
        # Broken prompts also drag their guard down, so a guard may fail first; the critical
        # test itself must fire in nearly every session.
        by_critical_test += "new critical failure" in v.reason
    print(
        f"\ncritical world: {sessions}/{sessions} guard_fail, the critical-failure test fired "
        f"in {by_critical_test}/{sessions}"
    )
    record_property("critical_guard_fail", 1.0)
    assert by_critical_test >= 0.9 * sessions

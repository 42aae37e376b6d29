"""The verdict rule before issue 8, frozen (agent/stats.py and agent/verdict.py at e5bb3b5).

Kept only so that benchmarks/verdict_vs_naive.py and tests/test_verdict_worlds.py can measure
the old rule beside the new one; nothing in agent/ imports it. `stats.py` and `verdict.py` are
verbatim but for their imports. `LegacyRule` is how the session of that time applied it
(agent.testing.worlds drives it like the new rule):

- screen: one run against the baseline, bootstrap seeded per run, candidate at one-sided 5%;
- confirmation: the candidate and its fresh-seed run *pooled*, at one-sided 0.5% (99%
  interval), for every confirmation of the session (no alpha spending);
- the noise model is the baseline's alone (no replicated configurations);
- the stated MDE is power_report's (minimum_detectable_effect, normal approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.testing.worlds import TARGET, World
from benchmarks.legacy_rule.stats import build_noise_model, minimum_detectable_effect
from benchmarks.legacy_rule.verdict import Verdict, compare
from probes.spec import Score


class LegacyJudge:
    def __init__(self, baseline: list[list[Score]], world: World, power: bool):
        self.baseline = baseline
        self.objective = world.objective
        self.noise = build_noise_model(baseline, self.objective)
        self.underpowered = False
        # power_report(noise, objective).mde, without its (slow) fix and guard searches.
        self.stated_mde = minimum_detectable_effect(self.noise, TARGET) if power else None

    def screen(self, run: Sequence[Score], *, index: int = 0) -> Verdict:
        return compare([run], self.baseline, self.objective, self.noise, seed=2 * index)

    def confirm(
        self, candidate: Sequence[Score], confirmation: Sequence[Score], j: int, *, index: int = 0
    ) -> Verdict:
        return compare(
            [candidate, confirmation],
            self.baseline,
            self.objective,
            self.noise,
            confirmation=True,
            seed=2 * index + 1,
        )

    def finished_pair(self, candidate: Sequence[Score], confirmation: Sequence[Score]) -> None:
        pass


@dataclass(frozen=True)
class LegacyRule:
    name: str = "old"

    def start(
        self, baseline: list[list[Score]], world: World, *, power: bool = False
    ) -> LegacyJudge:
        return LegacyJudge(baseline, world, power)

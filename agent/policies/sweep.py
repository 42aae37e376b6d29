"""The simplest offline policy: one knob at a time, one step down and up from the recipe.

Numeric knobs move by `step` (additive; a factor on log-scale knobs; default a factor of 2
on log scales and a tenth of the range, rounded for ints, otherwise), clamped to the range;
categorical knobs go through their other choices. Lanes take turns; a tried change is never
proposed again. When every candidate has been tried it concludes.
"""

from __future__ import annotations

import math
from typing import Any

from agent.campaign import Campaign, Knob
from agent.policies.base import Action, Policy, PolicyContext, Proposal
from agent.proposals import canonical_changes


def neighbours(knob: Knob, value: Any) -> list[Any]:
    """The values one step down and up from `value` (or the other choices), in range.

    Floats are rounded to three significant digits when that stays in range, so proposals
    read like a person's (2e-3, not 0.0019999999)."""
    if knob.type == "categorical":
        return [c for c in (knob.choices or []) if c != value]
    assert knob.low is not None and knob.high is not None
    if knob.log:
        factor = knob.step or 2.0
        candidates = [value / factor, value * factor]
    else:
        step = knob.step or (knob.high - knob.low) / 10
        candidates = [value - step, value + step]
    out: list[Any] = []
    for c in candidates:
        c = min(max(c, knob.low), knob.high)
        c = round(c) if knob.type == "int" else readable_value(knob, float(c))
        if c != value and c not in out and knob.contains(c):
            out.append(c)
    return out


def readable_value(knob: Knob, value: float) -> float:
    """`value` to three significant digits when that stays in the knob's range."""
    if value == 0 or not math.isfinite(value):
        return value
    rounded = float(f"{value:.3g}")
    return rounded if knob.contains(rounded) else value


def lane_candidates(campaign: Campaign) -> dict[str, list[dict[str, Any]]]:
    """Every single-knob change the sweep will try, per lane, in order."""
    return {
        lane: [
            {name: v}
            for name, knob in knobs.items()
            if name not in campaign.protected
            for v in neighbours(knob, campaign.recipe[name])
        ]
        for lane, knobs in campaign.lanes.items()
    }


class SweepPolicy(Policy):
    """Walks the lanes one change at a time, rotating lanes, never repeating a change."""

    name = "sweep"

    def __init__(self, campaign: Campaign):
        self.candidates = lane_candidates(campaign)
        self._refused: set[tuple[tuple[str, Any], ...]] = set()

    def ask(self, context: PolicyContext) -> Proposal:
        tried = {canonical_changes(c) for c in context.tried()} | self._refused
        lanes = list(self.candidates)
        start = len(context.tried()) % len(lanes) if lanes else 0
        for lane in lanes[start:] + lanes[:start]:
            for changes in self.candidates[lane]:
                if canonical_changes(changes) not in tried:
                    ((name, value),) = changes.items()
                    recipe_value = context.campaign.recipe[name]
                    direction = (
                        "switch"
                        if not isinstance(value, (int, float))
                        else "raise"
                        if value > recipe_value
                        else "lower"
                    )
                    return Proposal(
                        action=Action.PROBE,
                        lane=lane,
                        changes=changes,
                        hypothesis=f"sweep: {direction} {name} {recipe_value!r} -> {value!r}",
                    )
        return Proposal(action=Action.CONCLUDE, hypothesis="sweep: every neighbour was tried")

    def reject(self, proposal: Proposal, reason: str, context: PolicyContext) -> None:
        self._refused.add(canonical_changes(proposal.changes))

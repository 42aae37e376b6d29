"""Validation of proposals against the search space: the loop's gate, shared by all policies."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from agent.campaign import Campaign
from agent.policies.base import Action, ProbeRecord, Proposal


def canonical_changes(changes: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-free form of a change set (floats rounded to 12 significant digits)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and math.isfinite(v) and v != 0:
            return float(f"{v:.12g}")
        return v

    return tuple(sorted((k, norm(v)) for k, v in changes.items()))


def format_changes(changes: dict[str, Any]) -> str:
    """Readable form: `learning_rate=2.2e-05,lora_r=16`."""
    if not changes:
        return "recipe"
    return ",".join(f"{k}={_fmt(v)}" for k, v in sorted(changes.items()))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


COMBINATION_LANE = "combination"
"""A reserved lane: a probe combining changes that were each confirmed (kept) on their own."""


def confirmed_changes(history: Iterable[ProbeRecord]) -> dict[str, Any]:
    """knob -> value of every change the session has confirmed (a `keep` verdict)."""
    out: dict[str, Any] = {}
    for record in history:
        if record.status == "keep":
            out.update(record.changes)
    return out


def _validate_combination(
    proposal: Proposal, campaign: Campaign, history: list[ProbeRecord]
) -> str | None:
    confirmed = confirmed_changes(history)
    if len(proposal.changes) < 2:
        return "a combination joins at least two confirmed changes"
    for name, value in proposal.changes.items():
        if name in campaign.protected:
            return f"{name!r} is protected and may not be changed"
        if name not in confirmed or confirmed[name] != value:
            return (
                f"{name}={value!r} was not confirmed on its own; a combination may only join "
                f"confirmed changes ({format_changes(confirmed) if confirmed else 'none yet'})"
            )
    key = canonical_changes(proposal.changes)
    for record in history:
        if record.kind == "probe" and canonical_changes(record.changes) == key:
            return f"{format_changes(proposal.changes)} was already tried as {record.probe_id}"
    return None


def validate_proposal(
    proposal: Proposal, campaign: Campaign, history: Iterable[ProbeRecord]
) -> str | None:
    """Return why `proposal` cannot run, or None when it may."""
    history = list(history)
    if proposal.action is Action.CONCLUDE:
        return None
    if proposal.action is Action.REPLAY:
        ids = {r.probe_id for r in history}
        if proposal.replay_of not in ids:
            return f"replay_of {proposal.replay_of!r} is not a probe of this session"
        return None
    if proposal.lane == COMBINATION_LANE:
        return _validate_combination(proposal, campaign, history)
    if proposal.lane not in campaign.lanes:
        return f"unknown lane {proposal.lane!r}; lanes are {sorted(campaign.lanes)}"
    if not proposal.changes:
        return "a probe must change at least one knob"
    knobs = campaign.lanes[proposal.lane]
    for name, value in proposal.changes.items():
        if name in campaign.protected:
            return f"{name!r} is protected and may not be changed"
        if name not in knobs:
            where = campaign.knob(name)
            if where is not None:
                return f"knob {name!r} belongs to lane {where[0]!r}, not {proposal.lane!r}"
            return f"{name!r} is not a knob of lane {proposal.lane!r}; knobs are {sorted(knobs)}"
        knob = knobs[name]
        if not knob.contains(value):
            return f"{name}={value!r} is outside the knob's range ({knob.describe()})"
        if value == campaign.recipe[name] and type(value) is type(campaign.recipe[name]):
            return f"{name}={value!r} is the recipe's own value (no change)"
    key = canonical_changes(proposal.changes)
    for record in history:
        if record.kind == "probe" and canonical_changes(record.changes) == key:
            return f"{format_changes(proposal.changes)} was already tried as {record.probe_id}"
    return None


def coerce_changes(changes: dict[str, Any], campaign: Campaign) -> dict[str, Any]:
    """Cast proposal values to their knob types (an LLM may send 16.0 for an int knob)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        where = campaign.knob(name)
        if where is None:
            out[name] = value
            continue
        knob = where[1]
        if knob.type == "int" and isinstance(value, float) and value == int(value):
            out[name] = int(value)
        elif knob.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            out[name] = float(value)
        else:
            out[name] = value
    return out

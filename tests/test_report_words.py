"""The report's words: every TL;DR sentence is true of the numbers beside it.

Sessions are built directly in a temporary store (no training): a keep, an underpowered stop,
a session whose every training timed out, a forced one, and one that is a clean negative only
once every knob was tried both ways.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.report.render import render_report, report_data
from agent.stats import DiffTest, NoiseModel, PowerReport
from agent.store.store import Store, utcnow
from agent.store.tables import ProbeRow, SessionRow
from agent.verdict import CategoryComparison, Verdict, VerdictStatus

CAMPAIGN: dict[str, Any] = {
    "objective": {
        "target": "facts",
        "guards": ["voice"],
        "min_improvement": 0.5,
        "guard_tolerance": 0.8,
    },
    "probe": {"steps": 30, "baseline_seeds": 3, "eval_repeats": 1},
    "recipe": {"learning_rate": 1e-3, "mixture": "natural"},
    "lanes": {
        "hyperparameters": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}
        },
        "data_mixture": {
            "mixture": {"type": "categorical", "choices": ["natural", "stratified", "proportional"]}
        },
    },
}
NOISE = NoiseModel(
    seed_sd={"facts": 0.2, "voice": 0.15},
    dof={"facts": 2.0, "voice": 2.0},
    n_prompts={"facts": 20, "voice": 20},
    seeds=3,
)


def power(**kw: Any) -> PowerReport:
    values: dict[str, Any] = dict(
        target="facts",
        mde=0.93,
        min_improvement=0.5,
        confirm_alpha=0.025,
        table=[],
        guard_tolerance_needed={"voice": 0.42},
        underpowered=[],
        fixes=[],
        warnings=[],
        session_alpha=0.05,
        max_confirmations=2,
    )
    values.update(kw)
    return PowerReport(**values)


def category(name: str, role: str, delta: float, se: float, alpha: float) -> CategoryComparison:
    t = DiffTest(delta, se, 2.0)
    low, high = t.interval(alpha)
    threshold = 0.5 if role == "target" else -0.8
    return CategoryComparison(
        category=name,
        role=role,
        n_prompts=20,
        baseline_mean=6.0,
        probe_mean=6.0 + delta,
        delta=delta,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        se=se,
        dof=2.0,
        level=alpha,
        p_value=t.p_above(threshold),
        p_regress=t.p_below(-0.8) if role == "guard" else None,
        regressed=False if role == "guard" else None,
        p_worse=t.p_below(0.0),
    )


def verdict(status: str, delta: float, *, se: float = 0.25, confirm: bool = False) -> Verdict:
    alpha = 0.025 if confirm else 0.05
    target = category("facts", "target", delta, se, alpha)
    guard = category("voice", "guard", 0.05, 0.2, 0.05)
    return Verdict(
        status=VerdictStatus(status),
        reason=f"facts {delta:+.2f} ({status})",
        target="facts",
        target_delta=delta,
        ci_low=target.ci_low,
        ci_high=target.ci_high,
        guard_ok=True,
        worst_guard="voice",
        worst_guard_delta=0.05,
        categories=(target, guard),
        confidence=1 - 2 * alpha,
        critical_p=0.5,
        stage="confirm" if confirm else "screen",
        alpha=alpha,
    )


def keep_verdict() -> Verdict:
    """A keep with exact numbers: facts +0.71 [+0.12, +1.30] at one-sided 0.025."""
    v = verdict("keep", 0.71, confirm=True)
    return replace(v, ci_low=0.12, ci_high=1.30)


class Builder:
    def __init__(self, store: Store, **session: Any):
        self.store = store
        self.id = session.pop("id", "s1")
        p = session.pop("power", power())
        noise = session.pop("noise", NOISE)
        row = SessionRow(
            id=self.id,
            status=session.pop("status", "finished"),
            started_at=utcnow(),
            budget_runs=session.pop("budget_runs", 8),
            seconds_used=120.0,
            policy="sweep",
            campaign=CAMPAIGN,
            campaign_path="search_space.yaml",
            noise=noise.to_dict() if noise is not None else None,
            mde=p.mde if p is not None else None,
            power=p.to_dict() if p is not None else None,
            **session,
        )
        store.create_session(row)
        self.seq = 0
        for seed in range(3):
            self.baseline(seed, ok=noise is not None)

    def baseline(self, seed: int, *, ok: bool = True, error: str | None = None) -> None:
        self.add(
            f"{self.id}-baseline-s{seed}",
            "baseline",
            {},
            "baseline" if ok else "crash",
            None,
            error=None if ok else error or "timed out after 60s",
        )

    def add(
        self,
        pid: str,
        kind: str,
        changes: dict[str, Any],
        status: str,
        v: Verdict | None,
        *,
        parent: str | None = None,
        error: str | None = None,
        lane: str | None = None,
    ) -> str:
        self.store.add_probe(
            ProbeRow(
                id=pid,
                session_id=self.id,
                seq=0,
                kind=kind,
                lane=lane or (None if kind == "baseline" else _lane_of(next(iter(changes), ""))),
                changes=changes,
                steps=30,
                seed=self.seq,
                parent_id=parent,
                state="pending",
            )
        )
        self.seq += 1
        self.store.update_probe(
            pid,
            state="finished",
            counted=True,
            status=status,
            verdict=v.to_dict() if v is not None else None,
            error=error,
        )
        return pid

    def probe(self, changes: dict[str, Any], status: str, delta: float) -> str:
        pid = f"{self.id}-p{self.seq}"
        return self.add(pid, "probe", changes, status, verdict(status, delta))

    def tldr(self) -> str:
        data = report_data(self.store, self.id)
        text = render_report(data)
        assert data["conclusion"] in text
        self.text = text
        return str(data["conclusion"])


def _lane_of(knob: str) -> str:
    return "data_mixture" if knob == "mixture" else "hyperparameters"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "ws")


RESOLVES = (
    "This session resolves facts effects of 0.93 and above (kept with 80% power at the first "
    "confirmation's level; min_improvement 0.50); guard tolerance an unchanged guard passes "
    "with 80% power: voice needs 0.42 (has 0.80)."
)
GUARANTEE = (
    "At most 5% chance that this session kept any change that does nothing (each confirmation "
    "tested at its alpha-spending level; budget allows 2 confirmations)."
)


def test_a_keep_states_the_confirmations_own_numbers(store: Store) -> None:
    s = Builder(store)
    cand = s.probe({"learning_rate": 0.002}, "candidate", 1.2)
    s.add("s1-c1", "confirm", {"learning_rate": 0.002}, "keep", keep_verdict(), parent=cand)
    s.probe({"learning_rate": 0.0005}, "inconclusive", 0.1)
    tldr = s.tldr()
    assert tldr == (
        "Finding: learning_rate=0.002 improves facts by +0.71 [+0.12, +1.30] on an "
        "independent fresh-seed confirmation (judged alone at one-sided 0.025), with every "
        "guard shown within its tolerance. " + RESOLVES
    )
    assert f"**Guarantee.** {GUARANTEE}" in s.text
    assert "Smallest facts effect kept with 80% power: **0.93**" in s.text
    assert "| voice | 0.80 | 0.42 |" in s.text
    assert "| learning_rate | monotone | better going up" in s.text
    assert "Clean negative" not in s.text


def test_an_underpowered_session_says_so_with_reasons_and_fixes(store: Store) -> None:
    reason = (
        "target facts: the smallest effect kept with 80% power is 1.90, above 1.00 "
        "(objective.max_mde, default 2 x min_improvement)"
    )
    fixes = ["60 facts prompts (now 20)", "objective.max_mde 1.90 (accept seeing less)"]
    p = power(mde=1.9, underpowered=[reason], fixes=fixes)
    s = Builder(store, status="underpowered", power=p, error="underpowered: ...")
    tldr = s.tldr()
    assert tldr.startswith(
        "Stopped after the baseline as underpowered: this campaign cannot resolve what it asks "
        f"({reason}), so no probe was trained. Any one of these would fix it: "
        "60 facts prompts (now 20); objective.max_mde 1.90 (accept seeing less). "
        "This session resolves facts effects of 1.90 and above"
    )
    assert "Clean negative" not in s.text and "optimum" not in s.text
    assert f"What this session cannot resolve:\n\n- {reason}" in s.text


@pytest.mark.parametrize(
    ("error", "why"),
    [
        ("timed out after 60s", "every baseline training timed out (timed out after 60s)"),
        ("exit code 1", "every baseline training crashed (last: exit code 1)"),
    ],
)
def test_no_baseline_means_nothing_was_measured(store: Store, error: str, why: str) -> None:
    # Seed 003: every training timed out, and the report said "Clean negative result ... at
    # or near its optimum".
    stopped = f"the baseline could not be trained: 3 baseline runs crashed (last: {error})"
    s = Builder(store, status="failed", noise=None, power=None, error=stopped)
    for seed in range(3):
        s.store.update_probe(f"s1-baseline-s{seed}", error=error)
    tldr = s.tldr()
    assert tldr == (
        f"This session measured nothing: {why}; the session stopped: {stopped}. Without a "
        "measured baseline no change was judged; this is not a negative result."
    )
    assert "Clean negative" not in s.text and "optimum" not in s.text
    assert "No baseline was measured, so no change could be kept." in s.text


def test_a_forced_session_says_it_ran_past_the_gate(store: Store) -> None:
    reason = (
        "guard voice: tolerance 0.30 is below 0.42, the smallest an unchanged voice passes "
        "with 80% power (spurious refusals)"
    )
    p = power(underpowered=[reason], fixes=["objective.guard_tolerance voice: 0.42"])
    s = Builder(store, power=p, forced=True)
    for changes in (
        {"learning_rate": 0.002},
        {"learning_rate": 0.0005},
        {"mixture": "stratified"},
        {"mixture": "proportional"},
    ):
        s.probe(changes, "inconclusive", 0.1)
    tldr = s.tldr()
    assert tldr == (
        "This session ran past the power gate (--force): it could not resolve what it asks "
        f"({reason}). No change was kept. " + RESOLVES
    )
    assert "(it ran past the power gate with --force)" in s.text
    assert "Clean negative" not in s.text


def test_clean_negative_only_when_every_knob_was_tried_every_way(store: Store) -> None:
    s = Builder(store)
    s.probe({"learning_rate": 0.002}, "discard", -0.001)  # rounds to zero: never "-0.00"
    s.probe({"mixture": "stratified"}, "discard", -0.2)
    s.probe({"mixture": "proportional"}, "inconclusive", 0.1)
    tldr = s.tldr()
    assert tldr == (
        "No change was kept. " + RESOLVES + " So this is not a clean negative: not tried: "
        "learning_rate down."
    )
    assert "Clean negative" not in s.text and "optimum" not in s.text
    assert "-0.00" not in s.text and "+0.00" in s.text
    assert "Not tried: learning_rate down." in s.text

    s2 = Builder(store, id="s2")
    s2.probe({"learning_rate": 0.002}, "discard", -0.001)
    s2.probe({"learning_rate": 0.0005}, "discard", 0.1)
    s2.probe({"mixture": "stratified"}, "discard", -0.2)
    s2.probe({"mixture": "proportional"}, "inconclusive", 0.1)
    assert s2.tldr() == (
        "Clean negative result: no change was kept, none is left unconfirmed, the session was "
        "powered for what it asks (its power report names nothing underpowered), and it tried "
        "every knob both ways (every choice of the categorical ones). " + RESOLVES
    )
    # Nothing was shown worse or kept: every knob is inside the noise, no guard "regressed".
    assert (
        "| learning_rate | flat | no move shown better or worse at the session-corrected level."
        in s2.text
    )
    assert (
        "| mixture | flat | no move shown better or worse at the session-corrected level."
        in s2.text
    )
    assert "regressed past" not in s2.text and "guard regressed" not in s2.text


def test_an_unconfirmed_candidate_is_not_a_clean_negative(store: Store) -> None:
    s = Builder(store)
    s.probe({"learning_rate": 0.002}, "candidate", 1.2)
    s.probe({"learning_rate": 0.0005}, "discard", 0.1)
    s.probe({"mixture": "stratified"}, "discard", -0.2)
    s.probe({"mixture": "proportional"}, "discard", 0.1)
    tldr = s.tldr()
    assert tldr.startswith(
        "No confirmed finding yet. Promising and worth a replay or a larger budget: "
        "`learning_rate=0.002` (+1.20 ["
    )
    assert tldr.endswith(RESOLVES)
    assert "Clean negative" not in s.text
    # A candidate is not evidence: learning_rate is inside the noise, not monotone.
    assert "| learning_rate | flat |" in s.text


def test_a_session_without_stored_power_recomputes_it(store: Store) -> None:
    s = Builder(store, power=None)
    data = report_data(store, s.id)
    assert data["power_recomputed"] and data["power"] is not None
    assert math.isfinite(data["power"]["mde"])
    assert data["guarantee"].startswith("At most 5% chance")

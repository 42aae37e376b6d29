"""Replay: re-run a recorded probe from its stored, fully resolved config."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from agent.campaign import Campaign
from agent.session import BASELINE_STATUS, SessionError
from agent.stats import category_means
from agent.store.store import Store, utcnow
from agent.store.tables import ProbeRow
from agent.verdict import NoiseModel, Verdict, build_noise_model, compare
from probes.spec import ProbeKind, ProbeResult, ProbeSpec, scored
from probes.trainers.base import Trainer


@dataclass(frozen=True)
class ReplayOutcome:
    """The original probe, its replay and the per-category comparison."""

    original: ProbeRow
    replay_id: str
    result: ProbeResult
    original_means: dict[str, float]
    replay_means: dict[str, float]
    verdict: Verdict | None


def stored_campaign(store: Store, session_id: str) -> Campaign:
    """The campaign a session ran with (today's search_space.yaml may differ)."""
    session = store.get_session(session_id)
    if session is None:
        raise SessionError(f"session {session_id} not found")
    return Campaign.from_stored(session.campaign).model_copy(
        update={"path": Path(session.campaign_path)}
    )


def resolve_probe(store: Store, ref: str) -> ProbeRow:
    """A probe by id or unique id prefix; a clear error otherwise."""
    matches = store.find_probe(ref)
    if not matches:
        raise SessionError(f"no probe {ref!r} in {store.url} (`autoresearch status` lists them)")
    if len(matches) > 1:
        shown = ", ".join(m.id for m in matches[:5])
        raise SessionError(f"{ref!r} matches {len(matches)} probes ({shown}); give more of the id")
    return matches[0]


def replay(store: Store, ref: str, *, seed: int | None, trainer: Trainer) -> ReplayOutcome:
    """Run the probe's stored spec again (same params, steps, prompts, trainer settings)."""
    original = resolve_probe(store, ref)
    if original.spec is None or original.state != "finished":
        raise SessionError(f"probe {original.id} never finished; there is nothing to replay")
    stored = ProbeSpec.from_config(original.spec)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    replay_id = f"probe-{stamp}-replay-of-{original.id.removeprefix('probe-')}"[:120]
    n = 2
    while store.get_probe(replay_id) is not None:
        replay_id = f"{replay_id[:116]}-{n}"
        n += 1
    spec = replace(
        stored,
        probe_id=replay_id,
        kind=ProbeKind.REPLAY,
        seed=stored.seed if seed is None else seed,
        out_dir=store.runs_dir / replay_id,
        parent_id=original.id,
        trainer={k: v for k, v in stored.trainer.items() if k != "resume_from"},
    )
    row = store.add_probe(
        ProbeRow(
            id=replay_id,
            session_id=original.session_id,
            seq=0,
            kind=ProbeKind.REPLAY.value,
            lane=original.lane,
            changes=dict(original.changes or {}),
            steps=original.steps,
            seed=spec.seed,
            parent_id=original.id,
            hypothesis=f"replay of {original.id} (seed {spec.seed})",
            state="pending",
            in_budget=False,
        )
    )
    store.mark_running(row.id, spec.out_dir, spec.to_config())
    store.event(original.session_id, "replay", f"replaying {original.id} seed {spec.seed}", row.id)
    result = trainer.run(spec)
    campaign = stored_campaign(store, original.session_id)
    baselines = [
        store.scores(p.id)
        for p in store.probes(original.session_id)
        if p.kind == ProbeKind.BASELINE.value and p.status == BASELINE_STATUS
    ]
    verdict = None
    status = "crash"
    if result.ok and baselines and original.kind != ProbeKind.BASELINE.value:
        session = store.get_session(original.session_id)
        noise = (
            NoiseModel.from_dict(session.noise)
            if session is not None and session.noise
            else build_noise_model(baselines, campaign.objective)
        )
        verdict = compare(
            [scored(result.scores)],
            baselines,
            campaign.objective,
            noise,
        )
        status = verdict.status.value
    elif result.ok:
        status = BASELINE_STATUS if original.kind == ProbeKind.BASELINE.value else "inconclusive"
    store.finish_probe(row.id, result, verdict.to_dict() if verdict else None, status)
    store.update_probe(row.id, finished_at=utcnow())
    store.event(original.session_id, "replay", f"replay {row.id} -> {status}", row.id)
    return ReplayOutcome(
        original=original,
        replay_id=row.id,
        result=result,
        original_means=category_means([store.scores(original.id)]),
        replay_means=category_means([scored(result.scores)]) if result.ok else {},
        verdict=verdict,
    )

"""Wiring: build the trainer, executor and policies a campaign selects, and open sessions.

Heavy dependencies are imported here only when the campaign selects them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.campaign import Campaign, load_campaign
from agent.policies.base import Policy
from agent.session import (
    BudgetSpec,
    Observer,
    ResearchSession,
    SessionError,
    preflight,
    reusable_baselines,
)
from agent.store.store import Store
from probes.executors.base import Executor
from probes.trainers.base import Trainer
from probes.trainers.config import CommandTrainerConfig, TrlTrainerConfig

API_KEY_ENV = "ANTHROPIC_API_KEY"


def build_trainer(campaign: Campaign) -> Trainer:
    """The trainer `trainer.kind` selects."""
    config = campaign.trainer
    if isinstance(config, CommandTrainerConfig):
        from probes.trainers.command import CommandTrainer

        return CommandTrainer(config, campaign.workspace, campaign.secrets)
    if isinstance(config, TrlTrainerConfig):
        from probes.trainers.trl import TrlTrainer

        return TrlTrainer(config, campaign)
    raise SessionError(f"unknown trainer kind {config!r}")


def build_executor(trainer: Trainer) -> Executor:
    """Probes run one at a time on this machine (a Ray executor is selected by `executor`)."""
    from probes.executors.local import LocalExecutor

    return LocalExecutor(trainer)


def policy_name(campaign: Campaign) -> str:
    """The policy `agent.policy` selects; `auto` is claude with an API key, else optuna."""
    name = campaign.agent.policy
    if name == "auto":
        return "claude" if os.environ.get(API_KEY_ENV) else "optuna"
    return name


def build_policies(campaign: Campaign, runs_dir: Path) -> tuple[Policy, Policy]:
    """(policy, offline fallback). The fallback of an LLM policy is the optuna policy."""
    from agent.policies.sweep import SweepPolicy

    name = policy_name(campaign)
    sweep = SweepPolicy(campaign)
    if name == "sweep":
        return sweep, sweep
    from agent.policies.optuna import OptunaPolicy

    optuna_policy = OptunaPolicy(campaign, storage_dir=runs_dir)
    if name == "optuna":
        return optuna_policy, sweep
    if name == "claude":
        if not os.environ.get(API_KEY_ENV):
            raise SessionError(
                f"agent.policy is claude but {API_KEY_ENV} is not set in the environment; "
                "set it, or use `policy: optuna` (offline)"
            )
        from agent.policies.claude import ClaudePolicy

        return ClaudePolicy(campaign, fallback=optuna_policy), optuna_policy
    raise SessionError(f"unknown agent.policy {name!r}")


def workspace_campaign(workspace: Path) -> Campaign:
    return load_campaign(workspace / "search_space.yaml")


def open_session(
    workspace: Path,
    *,
    budget: BudgetSpec | None,
    resume: bool,
    new: bool = False,
    observer: Observer | None = None,
    trainer: Trainer | None = None,
    policies: tuple[Policy, Policy] | None = None,
    force: bool = False,
    no_cache: bool = False,
) -> ResearchSession:
    """Start a new session or resume the unfinished one (the caller holds the WorkspaceLock).

    `force` goes on past the power gate; `no_cache` trains every baseline afresh instead of
    reusing identical runs of earlier sessions."""
    store = Store(workspace)
    unfinished = store.unfinished_session()
    if resume:
        if unfinished is None:
            raise SessionError(
                "nothing to resume: no unfinished session in this workspace "
                "(`autoresearch start --budget N` starts one)"
            )
        # Resume with the campaign the session started with, not today's file.
        campaign = Campaign.from_stored(unfinished.campaign).model_copy(
            update={"path": Path(unfinished.campaign_path)}
        )
    else:
        campaign = workspace_campaign(workspace)
        if unfinished is not None and not new:
            raise SessionError(
                f"session {unfinished.id} is unfinished; `autoresearch resume` continues it, "
                "`autoresearch start --new` abandons it and starts another"
            )
    store.protect(campaign.secrets)
    if not resume and unfinished is not None:
        store.update_session(unfinished.id, status="abandoned")
        store.event(unfinished.id, "session", "abandoned by `start --new`")
    trainer = trainer or build_trainer(campaign)
    free = 0 if resume or no_cache else reusable_baselines(store, campaign)
    report = preflight(campaign, trainer, None if resume else budget, reusable_baselines=free)
    if not report.ok:
        raise SessionError("preflight failed:\n" + "\n".join(f"  - {p}" for p in report.problems))
    prepare = getattr(trainer, "prepare", None)
    if callable(prepare):
        prepare()
    executor = build_executor(trainer)
    policy, fallback = policies or build_policies(campaign, store.runs_dir)
    kwargs: dict[str, Any] = dict(
        executor=executor, policy=policy, fallback=fallback, observer=observer, no_cache=no_cache
    )
    if resume:
        assert unfinished is not None
        # A session started with --no-cache resumes without the cache too.
        kwargs["no_cache"] = no_cache or bool(unfinished.no_cache)
        session = ResearchSession(store=store, campaign=campaign, row=unfinished, **kwargs)
        store.sync_views()
        store.event(unfinished.id, "session", "resumed")
        return session
    assert budget is not None
    session = ResearchSession.create(
        store, campaign, budget, policy_name=policy.name, force=force, **kwargs
    )
    for warning in report.warnings:
        store.event(session.id, "warning", warning)
    return session

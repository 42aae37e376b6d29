"""The research loop: preflight, baseline, ask → validate → run → verdict → tell, confirm,
budget, resume.

The session owns everything that decides what a result means: the same-step baseline, the
noise model, the comparison, confirmation runs and the budget. The policy only proposes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.campaign import Campaign, did_you_mean
from agent.campaign_memory import baseline_run_key, run_key
from agent.policies.base import (
    Action,
    Budget,
    Policy,
    PolicyContext,
    ProbeRecord,
    Proposal,
)
from agent.proposals import coerce_changes, format_changes, validate_proposal
from agent.stats import (
    PowerReport,
    confirmation_alpha,
    max_confirmations,
    power_report,
)
from agent.store.store import Store, utcnow
from agent.store.tables import DecisionRow, ProbeRow, SessionRow
from agent.verdict import NoiseModel, Verdict, VerdictStatus, build_noise_model, compare
from probes.durations import format_duration, parse_duration
from probes.executors.base import Executor
from probes.spec import (
    EvalPrompt,
    ProbeKind,
    ProbeResult,
    ProbeSpec,
    ProbeStatus,
    PromptFileError,
    Score,
    load_prompts,
    scored,
)
from probes.trainers.base import Trainer

BASELINE_STATUS = "baseline"
EXTRA_BASELINE_TRIES = 2  # crashed baseline seeds are replaced at most this many times


class SessionError(RuntimeError):
    """A session cannot start or continue; the message says why and what to do."""


# ---- budget ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSpec:
    """`--budget 8` (trainings, baselines and confirmations included) or `--budget 90m`."""

    runs: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> BudgetSpec:
        text = text.strip()
        expected = "expected a whole number of trainings (e.g. 8) or a wall-clock duration with "
        expected += "its unit (e.g. 90m, 10h)"
        if re.fullmatch(r"\d+", text):
            runs = int(text)
            if runs < 1:
                raise ValueError("a run budget must be at least 1")
            if runs > 1_000_000:
                raise ValueError(f"--budget {text}: at most 1000000 trainings")
            return cls(runs=runs)
        # A bare fraction is neither: `1.5` is not 1.5 trainings, nor (silently) 1.5 seconds.
        if not re.fullmatch(r"\d+(\.\d+)?\s*[smhd]", text):
            raise ValueError(f"--budget {text!r}: {expected}")
        try:
            return cls(seconds=parse_duration(text))
        except ValueError:
            raise ValueError(f"--budget {text!r}: {expected}") from None

    def describe(self) -> str:
        if self.runs is not None:
            return f"{self.runs} trainings"
        assert self.seconds is not None
        return f"{format_duration(self.seconds)} wall-clock"


# ---- preflight ------------------------------------------------------------------------------


@dataclass
class PreflightReport:
    """What `check` and `start` verify before any training."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    prompts: list[EvalPrompt] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def preflight(
    campaign: Campaign,
    trainer: Trainer | None,
    budget: BudgetSpec | None = None,
    *,
    reusable_baselines: int = 0,
    here: bool = True,
) -> PreflightReport:
    """Check that a session can produce meaningful verdicts before spending anything.

    `reusable_baselines`: baseline seeds an earlier session already trained identically
    (they cost no budget). `here`: this machine will train (`start`), so its problems (no GPU,
    too little memory) are problems; `check` passes False and gets them as warnings."""
    report = PreflightReport()
    prompts_path = campaign.resolve(campaign.eval.prompts)
    try:
        report.prompts = load_prompts(prompts_path)
    except PromptFileError as exc:
        report.problems.append(str(exc))
    report.counts = dict(Counter(p.category for p in report.prompts))
    if not report.prompts and not report.problems:
        report.problems.append(
            f"{prompts_path}: the file has no eval prompts (empty); every probe would be a "
            "crash with no scores — add one JSON line per prompt (id, category, prompt)"
        )
    if report.prompts:
        need = campaign.probe.min_prompts_per_category
        for role, category in [("target", campaign.objective.target)] + [
            ("guard", g) for g in campaign.objective.guards
        ]:
            have = report.counts.get(category, 0)
            if have < need:
                report.problems.append(
                    f"{prompts_path}: {role} category {category!r} has {have} eval prompt(s); "
                    f"at least {need} needed (probe.min_prompts_per_category) — without them "
                    "every probe would show a phantom change in it"
                    + ("" if have else did_you_mean(category, report.counts))
                )
        others = sorted(set(report.counts) - set(campaign.objective.categories))
        if others:
            report.warnings.append(
                f"categories {others} are evaluated but are neither target nor guard "
                "(reported, never judged)"
            )
    if trainer is not None:
        report.problems.extend(trainer.preflight())
        # (a trainer written against the older interface has no machine_problems)
        machine = list(getattr(trainer, "machine_problems", list)())
        if here:
            report.problems.extend(machine)
        else:
            report.warnings.extend(f"on this machine: {m}" for m in machine)
        report.warnings.extend(getattr(trainer, "warnings", list)())
    judge = campaign.eval.judge_config() if campaign.trainer.kind == "trl" else None
    if judge is not None:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            report.problems.append(
                "eval.judge: the LLM judge needs ANTHROPIC_API_KEY in the environment "
                "(without it every probe's evaluation would fail)"
            )
        timeout = getattr(campaign.trainer, "timeout", None) or campaign.probe.timeout
        if judge.batch and timeout is not None and timeout < 3600:
            report.warnings.append(
                f"eval.judge.batch: a Message Batch can take up to hours; the probe timeout "
                f"({format_duration(timeout)}) may stop probes while they wait for it"
            )
    if budget is not None and budget.runs is not None:
        to_train = max(0, campaign.probe.baseline_seeds - reusable_baselines)
        need_runs = to_train + 1
        if budget.runs < need_runs:
            reused = f" ({reusable_baselines} reused)" if reusable_baselines else ""
            report.problems.append(
                f"--budget {budget.runs} cannot cover {to_train} baseline seed(s) to train"
                f"{reused} and one probe (need at least {need_runs})"
            )
    brief = campaign.agent.brief
    if brief and not campaign.resolve(brief).exists():
        report.warnings.append(f"agent.brief: {brief!r} not found; the agent gets no brief")
    return report


def reusable_baselines(store: Store, campaign: Campaign) -> int:
    """How many of the campaign's baseline seeds an earlier session trained identically."""
    count = 0
    for i in range(campaign.probe.baseline_seeds):
        try:
            key = baseline_run_key(campaign, campaign.probe.seed + i)
        except OSError:
            return count
        count += store.reusable_run(key, exclude_session="") is not None
    return count


# ---- workspace lock -------------------------------------------------------------------------


class WorkspaceLock:
    """An exclusive lock on a workspace's runs/ folder, released even on kill -9."""

    def __init__(self, runs_dir: Path):
        self.path = runs_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> WorkspaceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SessionError(
                f"another autoresearch process (pid {holder}) is using this workspace "
                f"({self.path.parent}); wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# ---- records --------------------------------------------------------------------------------


def record_from_row(row: ProbeRow) -> ProbeRecord:
    verdict = Verdict.from_dict(row.verdict) if row.verdict else None
    return ProbeRecord(
        probe_id=row.id,
        kind=row.kind,
        lane=row.lane,
        changes=dict(row.changes or {}),
        hypothesis=row.hypothesis or "",
        status=row.status or "",
        verdict=verdict,
        seed=row.seed,
        parent_id=row.parent_id,
        reading=row.reading,
    )


def _config_key(row: ProbeRow) -> str:
    """Runs with equal keys train the same configuration (changes and steps)."""
    return json.dumps([row.steps, row.changes or {}], sort_keys=True, default=str)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:48] or "probe"


Observer = Callable[[str, dict[str, Any]], None]


class ResearchSession:
    """One session of the loop over a store. Create with `start` or `resume`."""

    def __init__(
        self,
        *,
        store: Store,
        campaign: Campaign,
        row: SessionRow,
        executor: Executor,
        policy: Policy,
        fallback: Policy,
        observer: Observer | None = None,
        no_cache: bool = False,
    ):
        self.store = store
        self.no_cache = no_cache
        self.campaign = campaign
        self.row = row
        self.executor = executor
        self.policy = policy
        self.fallback = fallback
        self.observer = observer or (lambda _kind, _data: None)
        self._records: dict[tuple[str, str | None, str | None], ProbeRecord] = {}
        self._earlier: tuple[ProbeRecord, ...] | None = None
        self.budget = BudgetSpec(runs=row.budget_runs, seconds=row.budget_seconds)
        self.prompts_path = campaign.resolve(campaign.eval.prompts).resolve()
        self._tick_at = time.monotonic()
        self.noise: NoiseModel | None = NoiseModel.from_dict(row.noise) if row.noise else None
        self.mde: float | None = row.mde
        self.power: PowerReport | None = PowerReport.from_dict(row.power) if row.power else None

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        store: Store,
        campaign: Campaign,
        budget: BudgetSpec,
        *,
        policy_name: str,
        force: bool = False,
        **kwargs: Any,
    ) -> ResearchSession:
        """Record a new session in the store (the caller has checked for unfinished ones).
        `force`: go on past the power gate (the report says so)."""
        now = datetime.now()
        session_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        row = SessionRow(
            id=session_id,
            status="running",
            started_at=utcnow(),
            budget_runs=budget.runs,
            budget_seconds=budget.seconds,
            seconds_used=0.0,
            policy=policy_name,
            campaign=campaign.model_dump(mode="json"),
            campaign_path=str(campaign.path or ""),
            forced=force,
            no_cache=bool(kwargs.get("no_cache", False)),
        )
        store.create_session(row)
        session = cls(store=store, campaign=campaign, row=row, **kwargs)
        store.event(
            session_id,
            "session",
            f"started: target {campaign.objective.target}, guards "
            f"{', '.join(campaign.objective.guards) or 'none'}, {campaign.probe.steps} steps "
            f"per probe, budget {budget.describe()}, policy {policy_name}",
        )
        return session

    # ---- helpers -----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.row.id

    def _emit(self, name: str, **data: Any) -> None:
        self.observer(name, data)

    def _event(self, kind: str, message: str, probe_id: str | None = None) -> None:
        message = self.store.redact(message)  # the console shows what the record holds
        self.store.event(self.id, kind, message, probe_id)
        self._emit("event", kind=kind, message=message, probe_id=probe_id)

    def _tick(self) -> float:
        """Charge active wall-clock time since the last tick; return the session's total."""
        now = time.monotonic()
        total = self.store.add_seconds(self.id, now - self._tick_at)
        self._tick_at = now
        return total

    def budget_view(self) -> Budget:
        row = self.store.get_session(self.id)
        assert row is not None
        return Budget(
            runs_total=self.budget.runs,
            runs_used=self.store.runs_used(self.id),
            seconds_total=self.budget.seconds,
            seconds_used=row.seconds_used + (time.monotonic() - self._tick_at),
        )

    def _launch_timeout(self, *, charged: bool = False) -> float | bool | None:
        """The timeout for the next training, or False when the budget cannot afford one.
        `charged`: the training was already counted (an interrupted run being re-run)."""
        view = self.budget_view()
        timeout = self._configured_timeout()
        if not charged and view.runs_left is not None and view.runs_left <= 0:
            return False
        if view.seconds_left is not None:
            left = view.seconds_left
            finished = [p.runtime_s for p in self.store.probes(self.id) if p.runtime_s]
            estimate = max(finished) if finished else 0.0
            if left <= 0 or estimate > left:
                return False
            # Never overspend: a run that would outlast the budget is stopped at its end.
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _configured_timeout(self) -> float | None:
        trainer_timeout = getattr(self.campaign.trainer, "timeout", None)
        return trainer_timeout or self.campaign.probe.timeout

    def _trainer_settings(self) -> dict[str, Any]:
        settings = getattr(self.executor.trainer, "trainer_settings", None)
        return dict(settings()) if callable(settings) else {}

    def _new_probe_id(self, slug: str) -> str:
        base = f"probe-{datetime.now():%Y%m%d-%H%M%S}-{_slug(slug)}"
        candidate, n = base, 2
        while self.store.get_probe(candidate) is not None:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def _fresh_seed(self) -> int:
        probes = self.store.probes(self.id)
        return (
            max(
                [self.campaign.probe.seed + self.campaign.probe.baseline_seeds - 1]
                + [p.seed for p in probes]
            )
            + 1
        )

    def history(self) -> tuple[ProbeRecord, ...]:
        return tuple(
            self._record_of(p)
            for p in self.store.probes(self.id)
            if p.state == "finished" and p.kind != ProbeKind.BASELINE.value
        )

    def _record_of(self, row: ProbeRow) -> ProbeRecord:
        # A finished probe's record changes only with its status (a candidate confirmed) or
        # its reading: rebuild it (and its verdict) only then, not on every ask.
        key = (row.id, row.status, row.reading)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = record_from_row(row)
        return record

    def context(self) -> PolicyContext:
        brief = ""
        if self.campaign.agent.brief:
            path = self.campaign.resolve(self.campaign.agent.brief)
            if path.exists():
                # Hints for the agent: a stray byte must not stop the night.
                brief = path.read_text(encoding="utf-8", errors="replace")
        return PolicyContext(
            campaign=self.campaign,
            history=self.history(),
            budget=self.budget_view(),
            session_id=self.id,
            noise=self.noise,
            mde=self.mde,
            brief=brief,
            workspace_runs=str(self.store.runs_dir),
            earlier=self.earlier(),
        )

    def earlier(self) -> tuple[ProbeRecord, ...]:
        """Finished probes of earlier sessions with this objective whose baseline is this
        one's (equal baseline content keys): what the campaign already learned under these
        exact conditions. Computed once per session (their rows do not change)."""
        if self._earlier is None:
            try:
                key = baseline_run_key(self.campaign, self.campaign.probe.seed)
            except OSError:
                key = None
            found: list[ProbeRecord] = []
            objective = self.campaign.objective.model_dump(mode="json")
            for session in self.store.all_sessions():
                if session.id == self.id or key is None:
                    continue
                # Verdicts are about an objective: another target, other guards or another
                # critical threshold make them another question, even on the same baseline.
                if session.campaign.get("objective") != objective:
                    continue
                rows = self.store.probes(session.id)
                if not any(r.kind == ProbeKind.BASELINE.value and r.run_key == key for r in rows):
                    continue
                found += [
                    record_from_row(r)
                    for r in rows
                    # A reused probe is its original again: counted once, where it ran.
                    if r.kind == ProbeKind.PROBE.value
                    and r.state == "finished"
                    and not r.reused_from
                ]
            self._earlier = tuple(found)
        return self._earlier

    def _baseline_rows(self) -> list[ProbeRow]:
        return [
            p
            for p in self.store.probes(self.id)
            if p.kind == ProbeKind.BASELINE.value and p.status == BASELINE_STATUS
        ]

    def baseline_runs(self) -> list[list[Score]]:
        return [self.store.scores(p.id) for p in self._baseline_rows()]

    # ---- running one training ------------------------------------------------------------

    def _run(self, row: ProbeRow) -> ProbeResult | None:
        """Launch `row` (pending or interrupted) and record its result: an identical earlier
        training's, free, when there is one (`_reuse`). None: no budget."""
        reused = self._reuse(row)
        if reused is not None:
            return reused
        timeout = self._launch_timeout(charged=row.counted)
        if timeout is False:
            return None
        if row.reused_from:
            # Killed while taking over an earlier training, and not reused now (--no-cache):
            # train it here; the folder it pointed at belongs to the earlier session.
            self.store.update_probe(row.id, reused_from=None, run_dir=None, spec=None)
            row.reused_from, row.run_dir, row.spec = None, None, None
        previous = Path(row.run_dir) if row.run_dir else None
        attempt = row.attempts + 1
        run_dir = self.store.runs_dir / (row.id if attempt == 1 else f"{row.id}.attempt{attempt}")
        trainer = self._trainer_settings()
        if previous is not None:
            if previous.exists():
                (previous / "INTERRUPTED").write_text(
                    f"this attempt was interrupted; the probe re-ran in {run_dir.name}\n"
                )
            checkpoints = previous / "checkpoints"
            if checkpoints.exists():
                trainer["resume_from"] = str(checkpoints)
        params = {**self.campaign.recipe, **(row.changes or {})}
        if row.spec:
            # A re-run uses the spec recorded at the first launch, not today's campaign.
            params = dict(row.spec["params"])
        spec = ProbeSpec(
            probe_id=row.id,
            session_id=self.id,
            kind=ProbeKind(row.kind),
            steps=row.steps,
            seed=row.seed,
            lane=row.lane,
            changes=dict(row.changes or {}),
            params=params,
            eval_prompts=self.prompts_path,
            out_dir=run_dir,
            eval_repeats=self.campaign.probe.eval_repeats,
            parent_id=row.parent_id,
            timeout_s=timeout if isinstance(timeout, float) else None,
            trainer=trainer,
        )
        self.store.mark_running(row.id, run_dir, spec.to_config())
        what = "re-running interrupted " if previous is not None else ""
        self._event(
            "start",
            f"{what}{row.kind} {format_changes(row.changes or {})} seed {row.seed} "
            f"({row.steps} steps) in {run_dir.name}",
            row.id,
        )
        self._emit("probe_started", probe_id=row.id, kind=row.kind, changes=row.changes)
        result = self.executor.run(spec)
        self._tick()
        self._record(row, result, run_dir)
        return result

    def _record(self, row: ProbeRow, result: ProbeResult, run_dir: Path | None) -> None:
        """The verdict of a finished training, in the store (and in `run_dir`/verdict.json
        when the training ran here; a reused one's folder belongs to its own session)."""
        kind = ProbeKind(row.kind)
        verdict: Verdict | None
        if not result.ok:
            status = VerdictStatus.CRASH.value
            verdict = Verdict(
                status=VerdictStatus.CRASH,
                reason=result.error or "crash",
                target=self.campaign.objective.target,
            )
        elif kind is ProbeKind.BASELINE:
            status, verdict = BASELINE_STATUS, None
        else:
            verdict = self._judge(row, scored(result.scores))
            status = verdict.status.value
        payload = verdict.to_dict() if verdict else None
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "verdict.json").write_text(
                json.dumps({"status": status, "verdict": payload}, indent=2), encoding="utf-8"
            )
        self.store.finish_probe(row.id, result, payload, status)
        if verdict is not None:
            line = f"{status}: {verdict.reason}"
        else:
            line = "baseline finished"
        if not result.ok:
            line = f"crash: {result.error}"
        self._event("verdict", f"{format_changes(row.changes or {})} -> {line}", row.id)
        self._emit("probe_finished", probe_id=row.id, status=status)

    def _judge(self, row: ProbeRow, scores: list[Score]) -> Verdict:
        """The verdict of a finished probe, replay or confirmation (docs/verdicts.md).

        A replay is pooled with the run it replays (a stronger screen, at most a candidate);
        a confirmation is judged alone, at the level the session's alpha spending gives it.
        """
        baselines = self.baseline_runs()
        steps = {p.steps for p in self._baseline_rows()}
        if steps != {row.steps}:
            # The same-step rule: a probe is only ever compared with a baseline trained
            # exactly as long (seed 003 compared 300-step probes with 861-step numbers).
            return Verdict(
                status=VerdictStatus.CRASH,
                reason=(
                    f"trained {row.steps} steps but the baseline {sorted(steps)}: a probe is "
                    "compared only with a baseline trained for the same number of steps"
                ),
                target=self.campaign.objective.target,
            )
        probe_runs = [scores]
        confirmation = row.kind == ProbeKind.CONFIRM.value
        alpha: float | None = None
        if row.kind == ProbeKind.REPLAY.value and row.parent_id:
            parent = self.store.scores(row.parent_id)
            if parent:
                probe_runs = [parent, scores]
        if confirmation:
            alpha = self.confirmation_level(row)
        return compare(
            probe_runs,
            baselines,
            self.campaign.objective,
            self.noise_for(row, baselines),
            confirmation=confirmation,
            alpha=alpha,
        )

    def confirmation_level(self, row: ProbeRow) -> float:
        """The one-sided level of a confirmation: its index among the session's
        confirmations in the alpha-spending schedule (agent.stats.confirmation_alpha)."""
        confirms = [p.id for p in self.store.probes(self.id) if p.kind == ProbeKind.CONFIRM.value]
        index = confirms.index(row.id) + 1 if row.id in confirms else len(confirms) + 1
        return confirmation_alpha(index, self._max_confirmations())

    def _max_confirmations(self) -> int | None:
        if self.power is not None:
            return self.power.max_confirmations
        return max_confirmations(self.budget.runs, self.campaign.probe.baseline_seeds)

    def noise_for(self, row: ProbeRow, baselines: list[list[Score]]) -> NoiseModel:
        """The noise model a verdict on `row` uses: the baseline seeds plus every other
        configuration trained more than once (a candidate and its confirmation, a probe and
        its replay), each adding its runs - 1 degrees of freedom. The row's own
        configuration is left out: its first run was selected for passing."""
        assert self.noise is not None
        own = _config_key(row)
        groups: dict[str, list[str]] = {}
        for p in self.store.probes(self.id):
            if (
                p.kind == ProbeKind.BASELINE.value
                or p.state != "finished"
                or p.status == VerdictStatus.CRASH.value
                or p.id == row.id
                or _config_key(p) == own
            ):
                continue
            groups.setdefault(_config_key(p), []).append(p.id)
        # Scores only of configurations trained more than once: loading every probe's scores
        # for every verdict made a session's per-training cost grow with its length.
        replicates = [
            [self.store.scores(probe_id) for probe_id in ids]
            for ids in groups.values()
            if len(ids) >= 2
        ]
        if not replicates:
            return self.noise
        return build_noise_model(baselines, self.campaign.objective, replicates=replicates)

    # ---- phases --------------------------------------------------------------------------

    def _rerun_interrupted(self) -> None:
        """Finish what an interruption left: trainings that were running, and probes that
        were accepted but not yet launched (baselines are the baseline phase's work)."""
        for row in self.store.probes(self.id):
            if row.state == "running":
                self._event("resume", f"{row.id} was interrupted; running it again", row.id)
            elif row.state != "pending" or row.kind == ProbeKind.BASELINE.value:
                continue
            if self._run(row) is None:
                return

    def _add_baseline(self, seed: int, hypothesis: str) -> None:
        self.store.add_probe(
            ProbeRow(
                id=self._new_probe_id(f"baseline-s{seed}"),
                session_id=self.id,
                seq=0,
                kind=ProbeKind.BASELINE.value,
                lane=None,
                changes={},
                steps=self.campaign.probe.steps,
                seed=seed,
                hypothesis=hypothesis,
                state="pending",
            )
        )

    def _reuse(self, row: ProbeRow) -> ProbeResult | None:
        """Record an identical training of an earlier session instead of paying for it again:
        same content key (the resolved recipe, steps, seed, kind, trainer and its files, data,
        eval set; agent/campaign_memory.py). Baselines, probes, replays and confirmations
        alike; free of budget. A probe's verdict is judged afresh against this session's
        baseline. None when there is nothing to reuse (or `--no-cache`)."""
        if row.state != "pending":
            return None
        params = {**self.campaign.recipe, **(row.changes or {})}
        try:
            key = run_key(self.campaign, params=params, steps=row.steps, seed=row.seed,
                          kind=row.kind)  # fmt: skip
        except OSError:
            return None  # an unreadable input: train, and let the trainer say what is wrong
        # The key is recorded even with --no-cache: later sessions find this one comparable.
        self.store.update_probe(row.id, run_key=key)
        if self.no_cache:
            return None
        earlier = self.store.reusable_run(key, exclude_session=self.id)
        if earlier is None:
            return None
        scores = self.store.scores(earlier.id, include_errors=True)
        if any(score.error for score in scores):
            # Some answers could not be scored (a judge outage): train and score afresh
            # rather than inherit the gaps (the eval cache refuses these too).
            return None
        result = ProbeResult(
            probe_id=row.id,
            status=ProbeStatus.OK,
            scores=tuple(scores),
            metrics=dict(earlier.metrics or {}),
            log_tail=earlier.log_tail or "",
            runtime_s=earlier.runtime_s or 0.0,
        )
        self.store.update_probe(
            row.id,
            reused_from=earlier.id,
            run_dir=earlier.run_dir,
            spec=earlier.spec,
            started_at=utcnow(),
        )
        what = (
            f"baseline seed {row.seed}"
            if row.kind == ProbeKind.BASELINE.value
            else f"{row.kind} {format_changes(row.changes or {})} seed {row.seed}"
        )
        self._event(
            "reused",
            f"{what}: identical to {earlier.id} (session {earlier.session_id}); its scores "
            "are reused, no training charged",
            row.id,
        )
        # The earlier run's folder is left as it is: the verdict goes to the store only.
        self._record(row, result, None)
        return result

    def _baseline(self) -> bool:
        """Train the recipe with `baseline_seeds` seeds; False when it could not be measured."""
        need = self.campaign.probe.baseline_seeds
        probes = [p for p in self.store.probes(self.id) if p.kind == ProbeKind.BASELINE.value]
        if not probes:
            for i in range(need):
                self._add_baseline(self.campaign.probe.seed + i, "the recipe, same steps")
        while True:
            probes = [p for p in self.store.probes(self.id) if p.kind == ProbeKind.BASELINE.value]
            ok = [p for p in probes if p.status == BASELINE_STATUS]
            pending = [p for p in probes if p.state == "pending"]
            crashed = [p for p in probes if p.status == VerdictStatus.CRASH.value]
            if pending:
                if self._run(pending[0]) is None:
                    return False
                continue
            if len(ok) >= need:
                break
            if len(crashed) > EXTRA_BASELINE_TRIES:
                self._fail(
                    f"the baseline could not be trained: {len(crashed)} baseline runs crashed "
                    f"(last: {crashed[-1].error}); fix the trainer and `autoresearch start --new`"
                )
                return False
            seed = self._fresh_seed()
            self._event("baseline", f"a baseline run crashed; adding seed {seed}")
            self._add_baseline(seed, "the recipe, same steps (replacing a crashed seed)")
        if self.noise is None:
            self._measure_noise()
        return True

    def _measure_noise(self) -> None:
        runs = self.baseline_runs()
        objective = self.campaign.objective
        self.noise = build_noise_model(runs, objective)
        # What the budget can still pay for, fixed before any probe (so it cannot depend on
        # their outcomes): the alpha-spending schedule is set once, here.
        left = self.budget_view().runs_left
        most = None if left is None else max(1, left // 2)
        self.power = power_report(self.noise, objective, max_confirmations=most)
        self.mde = self.power.mde
        self.store.update_session(
            self.id, noise=self.noise.to_dict(), mde=self.mde, power=self.power.to_dict()
        )
        spread = ", ".join(
            f"{c} ±{self.noise.seed_spread(c):.2f} ({self.noise.dof_of(c):g} dof)"
            for c in objective.categories
        )
        self._event("noise", f"baseline run-to-run spread: {spread}")
        guards = ", ".join(f"{g} {t:.2f}" for g, t in self.power.guard_tolerance_needed.items())
        self._event(
            "power",
            f"{objective.target} effects of {self.mde:.2f} or more are kept with 80% power "
            f"(min_improvement {objective.min_improvement:.2f}); smallest guard tolerances an "
            f"unchanged guard passes: {guards or 'no guards'}; at most "
            f"{self.power.session_alpha:.0%} chance of keeping any change that does nothing",
        )
        for warning in self.power.warnings:
            self._event("warning", warning)

    def _power_gate(self) -> bool:
        """True when the session may go on after its baseline; otherwise it stops as
        `underpowered`, having spent nothing more, and says what would fix it."""
        if self.power is None or not self.power.underpowered:
            return True
        reasons = "; ".join(self.power.underpowered)
        fixes = "; ".join(self.power.fixes)
        if self.row.forced:
            self._event(
                "warning",
                f"underpowered ({reasons}); going on because of --force: verdicts on what it "
                "cannot resolve will mostly read inconclusive",
            )
            return True
        message = (
            f"underpowered: {reasons}. To fix (any one per line item): {fixes}. Nothing more "
            "was spent; the next session reuses these baseline runs when nothing they depend "
            "on changed, and `autoresearch start --force` goes on anyway"
        )
        self.store.update_session(
            self.id, status="underpowered", finished_at=utcnow(), error=message
        )
        self._event("underpowered", message)
        return False

    def _pending_confirmation(self) -> ProbeRow | None:
        probes = self.store.probes(self.id)
        confirms = [p for p in probes if p.kind == ProbeKind.CONFIRM.value]
        confirmed = {p.parent_id for p in confirms}
        if confirmation_alpha(len(confirms) + 1, self._max_confirmations()) <= 0:
            return None  # the error budget is spent: a confirmation could keep nothing
        for p in probes:
            if p.status == VerdictStatus.CANDIDATE.value and p.id not in confirmed:
                return p
        return None

    def _ask(self) -> Proposal:
        """Ask the policy (validated, with retries), falling back to the offline policy."""
        attempts = self.campaign.agent.max_attempts
        for source in (self.policy, self.fallback):
            for _ in range(attempts):
                context = self.context()
                try:
                    proposal = source.ask(context)
                except Exception as exc:  # a policy failure never ends the session
                    self._event("policy", f"{source.name} failed: {type(exc).__name__}: {exc}")
                    break
                finally:
                    for notice in source.notices():
                        self._event("policy", notice)
                proposal = replace(
                    proposal, changes=coerce_changes(proposal.changes, self.campaign)
                )
                if source is self.fallback and self.fallback is not self.policy:
                    proposal = replace(
                        proposal, fallback_from=proposal.fallback_from or self.policy.name
                    )
                reason = validate_proposal(proposal, self.campaign, context.history)
                if reason is None and proposal.action is Action.REPLAY:
                    target = self.store.get_probe(proposal.replay_of or "")
                    if target is None or target.kind != ProbeKind.PROBE.value:
                        reason = "only a probe (not a baseline, replay or confirmation) is replayed"
                    elif any(
                        r.kind == ProbeKind.REPLAY.value and r.parent_id == target.id
                        for r in context.history
                    ):
                        reason = f"{target.id} was already replayed once"
                if reason is None:
                    return proposal
                self._decision(proposal, source, accepted=False, reason=reason)
                self._event("rejected", f"{source.name}: {reason}")
                source.reject(proposal, reason, context)
            if source is self.fallback:
                break
            self._event("policy", f"falling back to {self.fallback.name}")
        return Proposal(action=Action.CONCLUDE, hypothesis="no valid proposal")

    def _decision(
        self, proposal: Proposal, source: Policy, *, accepted: bool, reason: str | None = None
    ) -> DecisionRow:
        usage = proposal.usage
        row = DecisionRow(
            session_id=self.id,
            created_at=utcnow(),
            policy=(proposal.fallback_from and f"{source.name} (fallback)") or source.name,
            action=proposal.action.value,
            proposal={
                "lane": proposal.lane,
                "changes": proposal.changes,
                "hypothesis": proposal.hypothesis,
                "expected_effect": proposal.expected_effect,
                "replay_of": proposal.replay_of,
                "fallback_from": proposal.fallback_from,
            },
            accepted=accepted,
            reject_reason=reason,
            rationale=proposal.rationale,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cache_read_tokens=usage.cache_read_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
        )
        if not accepted:
            self.store.add_decision(row)
        return row

    def _fresh_seed_run(self, original: ProbeRow, kind: ProbeKind, hypothesis: str) -> ProbeRow:
        """`original`'s change trained again with a fresh seed (a confirmation or a replay)."""
        return ProbeRow(
            id=self._new_probe_id(f"{kind.value}-{format_changes(original.changes)}"),
            session_id=self.id,
            seq=0,
            kind=kind.value,
            lane=original.lane,
            changes=dict(original.changes),
            steps=original.steps,
            seed=self._fresh_seed(),
            parent_id=original.id,
            hypothesis=hypothesis,
            state="pending",
        )

    def _step(self) -> bool:
        """One iteration of the loop; False when the session should stop."""
        candidate = self._pending_confirmation()
        if candidate is not None:
            if self._launch_timeout() is False:
                return False  # no confirmation row the budget cannot train
            row = self.store.add_probe(
                self._fresh_seed_run(
                    candidate, ProbeKind.CONFIRM, f"confirm {candidate.id} with a fresh seed"
                )
            )
            return self._run(row) is not None
        if self._launch_timeout() is False:
            return False
        proposal = self._ask()
        source = self.fallback if proposal.fallback_from else self.policy
        if proposal.action is Action.CONCLUDE:
            self.store.add_decision(self._decision(proposal, source, accepted=True))
            self._event("conclude", f"{source.name}: {proposal.hypothesis or 'done'}")
            self.store.update_session(self.id, conclusion=proposal.hypothesis or None)
            return False
        decision = self._decision(proposal, source, accepted=True)
        if proposal.action is Action.REPLAY:
            original = self.store.get_probe(proposal.replay_of or "")
            assert original is not None
            row = self._fresh_seed_run(
                original, ProbeKind.REPLAY, proposal.hypothesis or f"replay {original.id}"
            )
        else:
            row = ProbeRow(
                id=self._new_probe_id(format_changes(proposal.changes)),
                session_id=self.id,
                seq=0,
                kind=ProbeKind.PROBE.value,
                lane=proposal.lane,
                changes=dict(proposal.changes),
                steps=self.campaign.probe.steps,
                # Its own seed, shared with no baseline: the verdict's variance assumes the
                # probe and the baseline runs are independent trainings.
                seed=self._fresh_seed(),
                hypothesis=proposal.hypothesis,
                expected_effect=proposal.expected_effect,
                state="pending",
            )
        row = self.store.add_probe(row, decision)
        return self._run(row) is not None

    def _tell(self, rows: list[ProbeRow], *, fresh: bool = True) -> None:
        """Tell both policies about finished probes, in order. `fresh` rows finished in this
        process and get the policy's one-line reading first (history on resume does not)."""
        context = self.context()
        for row in rows:
            record = record_from_row(row)
            if fresh and row.reading is None:
                try:
                    reading = self.policy.read(record, context)
                except Exception as exc:
                    reading = None
                    self._event("policy", f"{self.policy.name}.read failed: {exc}")
                if reading:
                    self.store.update_probe(row.id, reading=reading)
                    record = replace(record, reading=reading)
                    self._event("reading", reading, row.id)
            for policy in {id(self.policy): self.policy, id(self.fallback): self.fallback}.values():
                try:
                    policy.tell(record, context)
                except Exception as exc:
                    self._event("policy", f"{policy.name}.tell failed: {type(exc).__name__}: {exc}")

    def write_narrative(self, report_data: dict[str, Any]) -> str | None:
        """Ask the policy for the report's narrative and record what it cost."""
        text = self.policy.narrative(report_data)
        if text:
            self.store.update_session(self.id, narrative=text)
        usage = self.policy.narrative_usage
        if usage is not None and usage.cost_usd:
            self.store.add_decision(
                DecisionRow(
                    session_id=self.id,
                    created_at=utcnow(),
                    policy=self.policy.name,
                    action="narrative",
                    proposal={},
                    accepted=True,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cache_read_tokens,
                    cache_write_tokens=usage.cache_write_tokens,
                    cost_usd=usage.cost_usd,
                )
            )
        return text

    def _fail(self, message: str) -> None:
        self.store.update_session(self.id, status="failed", error=message, finished_at=utcnow())
        self._event("failed", message)

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> SessionRow:
        """Run (or continue) the session until its budget is spent or the policy concludes."""
        self._tick_at = time.monotonic()
        told: set[str] = set()

        def tell_new(fresh: bool = True) -> None:
            # Policies hear about every finished probe once, in order (on resume: the history).
            new = [
                p
                for p in self.store.probes(self.id)
                if p.state == "finished" and p.id not in told and p.kind != ProbeKind.BASELINE.value
            ]
            told.update(p.id for p in new)
            self._tell(new, fresh=fresh)

        self.store.hold_probes = True  # this process is the session's only writer (lock)
        try:
            tell_new(fresh=False)
            self._rerun_interrupted()
            tell_new()
            if not self._baseline():
                row = self.store.get_session(self.id)
                if row is not None and row.status == "running" and self._launch_timeout() is False:
                    self._fail("the budget ran out before the baseline was measured")
                return self.store.get_session(self.id)  # type: ignore[return-value]
            if not self._power_gate():
                return self.store.get_session(self.id)  # type: ignore[return-value]
            while self._step():
                tell_new()
            tell_new()
            self._tick()
            used = self.budget_view()
            self.store.update_session(self.id, status="finished", finished_at=utcnow())
            self._event(
                "session",
                f"finished: {used.runs_used} trainings, {format_duration(used.seconds_used)}",
            )
        finally:
            self.store.hold_probes = False
            self._tick()
        row = self.store.get_session(self.id)
        assert row is not None
        return row

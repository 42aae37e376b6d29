"""The `autoresearch` command line: init, check, start, resume, status, show, replay, report,
power. Imports stay light so `--help`, `status` and `report` start fast."""

from __future__ import annotations

import errno
import functools
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probes.redaction import environment_secrets, redact

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Autonomous, noise-aware research on a fine-tuning recipe.",
)


class SafeConsole(Console):
    """A console that masks secrets in every text it prints (the last line of defence after
    the store's: an exception message, a trainer's error shown live)."""

    secret_names: tuple[str, ...] = ()
    """A campaign's `secrets:`, set once the campaign is loaded (the loop's own are masked
    always)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        secrets = environment_secrets(SafeConsole.secret_names)
        super().print(*(_masked(o, secrets) for o in objects), **kwargs)


def _masked(renderable: Any, secrets: list[str]) -> Any:
    if isinstance(renderable, str):
        return redact(renderable, secrets)
    if isinstance(renderable, Text):
        plain = redact(renderable.plain, secrets)
        return renderable if plain == renderable.plain else Text(plain, style=renderable.style)
    return renderable  # tables are built from the store's records, masked when written


# Piped output (CI logs, `| less`) gets a wide console so probe ids are never cut.
# markup=False: no text is ever read as rich markup. Values come from user files, trainers,
# models and the agent ("[/x]" in a lane choice must print, not crash the CLI); the few styled
# words are built with `styled`, never by formatting markup into a string.
console = SafeConsole(highlight=False, markup=False, width=None if sys.stdout.isatty() else 200)
err = SafeConsole(
    stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 200
)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Plain text with some parts styled: styled(("error:", "bold red"), " ", message)."""
    return Text.assemble(*parts)


Workspace = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Folder holding search_space.yaml (default: here)."),
]


class CliError(Exception):
    """Printed as a clean message with exit code 2."""


def _fail(message: str) -> None:
    err.print(styled(("error:", "bold red"), f" {message}"), soft_wrap=True)
    raise typer.Exit(code=2)


_FAULTS = {
    errno.ENOSPC: ("no space left", "free space on that disk"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("read-only file system", "make it writable (or use another workspace)"),
    errno.EACCES: ("permission denied", "make it writable by this user"),
    errno.EPERM: ("operation not permitted", "make it writable by this user"),
    errno.EIO: ("disk I/O error", "check the disk"),
    errno.ENOTDIR: ("not a folder", "pass a workspace folder with -w"),
    errno.EISDIR: ("a folder, not a file", "remove or rename it"),
}
# SQLite says what went wrong in words, not errno.
_DB_FAULTS = {
    "database or disk is full": _FAULTS[errno.ENOSPC],
    "disk i/o error": _FAULTS[errno.EIO],
    "readonly database": _FAULTS[errno.EROFS],
    "unable to open database file": ("cannot open it", "check its folder exists and is writable"),
}


def storage_fault(exc: BaseException, workspace: Path) -> str | None:
    """One line for a filesystem or database fault (disk full, read-only, I/O error, a path
    that is a file): the path, what is wrong, what to do. None for any other error."""
    db = workspace / "runs" / "autoresearch.db"
    orig = getattr(exc, "orig", None)  # sqlalchemy wraps the driver's error
    if type(exc).__module__.startswith("sqlalchemy") and orig is not None:
        text = str(orig).lower()
        found = next((v for k, v in _DB_FAULTS.items() if k in text), None)
        if found is None:
            return None
        path, (problem, fix) = db, found
    elif isinstance(exc, OSError) and exc.errno in _FAULTS:
        path = Path(exc.filename) if exc.filename else workspace
        problem, fix = _FAULTS[exc.errno]
    else:
        return None
    return (
        f"cannot write {path}: {problem}; {fix}, then run the command again "
        "(nothing recorded is lost: `autoresearch resume` continues an interrupted session)"
    )


def _one_line_faults(command: Callable[..., None]) -> Callable[..., None]:
    """A filesystem or database fault in a command is one clear line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except Exception as exc:
            workspace = Path(kwargs.get("workspace") or kwargs.get("directory") or ".").resolve()
            if workspace.is_file():
                _fail(f"{workspace} is a file: pass the folder holding search_space.yaml with -w")
            message = storage_fault(exc, workspace)
            if message is None:
                raise
            _fail(message)

    return wrapper


def _store(workspace: Path) -> Any:
    from agent.store.store import Store

    if not (workspace / "runs").exists() and not (workspace / "search_space.yaml").exists():
        _fail(f"{workspace} is not an autoresearch workspace (no search_space.yaml)")
    return Store(workspace)


def _campaign(workspace: Path) -> Any:
    from agent.campaign import CampaignError, load_campaign

    try:
        return load_campaign(workspace / "search_space.yaml")
    except CampaignError as exc:
        _fail(str(exc))


@app.command()
@_one_line_faults
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write a new workspace: search_space.yaml, a brief, an example command trainer and the
    demo lab's data and eval prompts (data/) to start from."""
    source = Path(__file__).parent / "templates" / "workspace"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        target = directory / path.relative_to(source)
        if target.exists() and not force:
            _fail(f"{target} exists; use --force to overwrite")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        written.append(target)
    from probes.demo.world import write_world

    data = directory / "data"
    if data.exists() and any(data.iterdir()) and not force:
        _fail(f"{data} exists; use --force to overwrite")
    written += write_world(data)
    for t in written:
        console.print(f"  wrote {t}")
    console.print(
        f"\nNext: edit {directory / 'search_space.yaml'}, then\n"
        f"  autoresearch check -w {directory}\n  autoresearch start -w {directory} --budget 8"
    )


@app.command()
@_one_line_faults
def check(workspace: Workspace = Path(".")) -> None:
    """Validate search_space.yaml and run the preflight, without training."""
    from agent.runtime import build_trainer
    from agent.session import SessionError, preflight

    campaign = _campaign(workspace)
    try:
        trainer = build_trainer(campaign)
    except SessionError as exc:
        _fail(str(exc))
    report = preflight(campaign, trainer, here=False)
    table = Table(title="eval prompts per category")
    table.add_column("category")
    table.add_column("role")
    table.add_column("prompts", justify="right")
    roles = {campaign.objective.target: "target", **{g: "guard" for g in campaign.objective.guards}}
    for category in sorted(set(report.counts) | set(roles)):
        table.add_row(category, roles.get(category, "—"), str(report.counts.get(category, 0)))
    console.print(table)
    for note in getattr(trainer, "notes", list)():
        console.print(styled(("note:", "cyan"), f" {note}"))
    for warning in report.warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"))
    if not report.ok:
        _fail("preflight failed:\n" + "\n".join(f"  - {p}" for p in report.problems))
    knobs = sum(len(k) for k in campaign.lanes.values())
    console.print(
        styled(
            ("ok", "green"),
            f": {campaign.path} — target {campaign.objective.target}, "
            f"{len(campaign.objective.guards)} guard(s), {len(campaign.lanes)} lane(s), "
            f"{knobs} knob(s)",
        )
    )


def _run_session(
    workspace: Path,
    *,
    budget: str | None,
    resume: bool,
    new: bool,
    force: bool = False,
    no_cache: bool = False,
) -> None:
    from agent.campaign import CampaignError
    from agent.report.render import write_report
    from agent.runtime import open_session
    from agent.session import BudgetSpec, SessionError, WorkspaceLock

    spec = None
    if budget is not None:
        try:
            spec = BudgetSpec.parse(budget)
        except ValueError as exc:
            _fail(str(exc))
    workspace = workspace.resolve()
    display = LiveDisplay(workspace)
    try:
        with WorkspaceLock(workspace / "runs"):
            if resume and _finish_missing_report(workspace):
                return
            session = open_session(
                workspace,
                budget=spec,
                resume=resume,
                new=new,
                observer=display.observe,
                force=force,
                no_cache=no_cache,
            )
            SafeConsole.secret_names = tuple(session.campaign.secrets)
            display.store = session.store
            display.session_id = session.id
            with display:
                try:
                    row = session.run()
                except KeyboardInterrupt:
                    display.stop()
                    err.print(
                        f"\ninterrupted: session {session.id} is saved; "
                        "`autoresearch resume` continues it"
                    )
                    raise typer.Exit(code=130) from None
            try:
                session.write_narrative(_report_data(session))
            except Exception as exc:  # the deterministic report never depends on the agent
                err.print(styled(("warning:", "yellow"), f" the agent's narrative failed: {exc}"))
            path, _archive = write_report(session.store, session.id)
    except (SessionError, CampaignError) as exc:
        _fail(str(exc))
    console.print(f"\nsession {row.id} {row.status}; report: {path}")
    if row.status == "underpowered":
        console.print(row.error or "", soft_wrap=True)
        raise typer.Exit(code=3)
    if row.status == "failed":
        raise typer.Exit(code=1)


def _finish_missing_report(workspace: Path) -> bool:
    """True when the last session had ended but was killed before its report was written:
    `resume` then writes the report (from the database, without the agent's narrative)."""
    from agent.report.render import report_archive_path, write_report
    from agent.store.store import Store

    store = Store(workspace)
    try:
        if store.unfinished_session() is not None:
            return False
        last = store.latest_session()
        if last is None or last.status == "abandoned":
            return False
        # A kill after the last event's commit leaves progress.log a line short.
        store.sync_views()
        if report_archive_path(workspace, last.id).exists():
            return False
        path, _archive = write_report(store, last.id)
    finally:
        store.close()
    console.print(
        f"session {last.id} had ended ({last.status}) before its report was written; wrote {path}"
    )
    return True


def _report_data(session: Any) -> dict[str, Any]:
    from agent.report.render import report_data

    return report_data(session.store, session.id)


class LiveDisplay:
    """The live view: the results so far and the running probe with its elapsed time and the
    last line of its log (plain lines when not a TTY)."""

    def __init__(self, workspace: Path):
        self.workspace = workspace
        self.store: Any = None
        self.session_id: str | None = None
        self.current: str | None = None
        self.current_dir: Path | None = None
        self.started = 0.0
        self.table: Table | None = None
        self.live: Any = None

    def __enter__(self) -> LiveDisplay:
        if console.is_terminal:
            from rich.live import Live

            self.live = Live(self, console=console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def observe(self, kind: str, data: dict[str, Any]) -> None:
        import time

        if kind == "probe_started":
            self.current = data["probe_id"]
            self.started = time.monotonic()
            row = self.store.get_probe(self.current) if self.store else None
            self.current_dir = Path(row.run_dir) if row is not None and row.run_dir else None
        elif kind == "probe_finished":
            self.current = None
        if kind == "event":
            if self.live is None:
                console.print(f"{data['kind']:<10} {data['message']}", soft_wrap=True)
            else:
                self.live.console.print(
                    styled((f"{data['kind']:<10}", "dim"), f" {data['message']}"), soft_wrap=True
                )
        self.table = None  # rebuilt from the database at the next refresh

    def __rich__(self) -> Any:
        import time

        from probes.durations import format_duration
        from probes.trainers.command import LOG_NAME, log_tail

        if self.table is None:
            self.table = (
                results_table(self.store, self.session_id, last=20, compact=True)
                if self.store and self.session_id
                else Table()
            )
        if self.current:
            elapsed = format_duration(time.monotonic() - self.started)
            last = log_tail(self.current_dir / LOG_NAME, 1) if self.current_dir else ""
            caption = f"running: {self.current} ({elapsed})"
            if last.strip():
                caption += f"\n{last.strip()[:120]}"
            self.table.caption = caption
        else:
            self.table.caption = None
        return self.table


_ID_STAMP = re.compile(r"^probe-\d{8}-\d{6}-")


def short_id(probe_id: str) -> str:
    """A probe id without its `probe-YYYYMMDD-HHMMSS-` prefix (the same for a whole session)."""
    return _ID_STAMP.sub("", probe_id)


def results_table(
    store: Any, session_id: str, last: int | None = None, *, compact: bool = False
) -> Table:
    """The probes of a session with their verdicts (only the `last` ones when given).
    `compact` (the live display): fits an 80-column terminal, one line a probe: ids without
    the session's time stamp (the full id is in `status` and `show`), no kind or seed column,
    long cells cut with an ellipsis."""
    session = store.get_session(session_id)
    target = session.campaign["objective"]["target"] if session else "target"
    table = Table(title=f"session {session_id}", box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD)
    # (name, justify, compact width: > 0 the widest a cell may be (cut with an ellipsis),
    # < 0 the width it always gets (numbers are never cut), 0 drops the column). 22 + 7 + 14 +
    # 14 + 12 characters and 2 of padding a column: 79.
    columns: list[tuple[str, str, int]] = [
        ("probe", "left", 22),
        ("kind", "left", 0),
        ("change", "left", 0),  # the short id names the change
        ("seed", "right", 0),
        (f"{target} Δ", "right", -7),
        ("interval", "right", -14),
        ("worst guard", "left", 14),
        ("status", "left", -12),
    ]
    dropped = {name for name, _, width in columns if compact and width == 0}
    for col, justify, width in columns:
        if col in dropped:
            continue
        table.add_column(
            col,
            justify=justify,  # type: ignore[arg-type]
            max_width=abs(width) if compact else None,
            min_width=-width if compact and width < 0 else None,
            no_wrap=compact,
            overflow="ellipsis" if compact and width > 0 else "fold",
        )
    from agent.proposals import format_changes

    probes = store.probes(session_id)
    if last is not None and len(probes) > last:
        table.title = f"session {session_id} (last {last} of {len(probes)})"
        probes = probes[-last:]
    for p in probes:
        v = p.verdict or {}
        delta = v.get("target_delta")
        interval = (
            f"[{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]" if v.get("ci_low") is not None else ""
        )
        worst = f"{v['worst_guard']} {v['worst_guard_delta']:+.2f}" if v.get("worst_guard") else ""
        status = p.status or p.state
        style = {
            "keep": "bold green",
            "candidate": "green",
            "guard_fail": "red",
            "crash": "red",
            "inconclusive": "yellow",
        }.get(status, "")
        cells = [  # in the order of `columns`
            short_id(p.id) if compact else p.id,
            p.kind,
            format_changes(p.changes or {}),
            str(p.seed),
            "" if delta is None else f"{delta:+.2f}",
            interval,
            worst,
            Text(status, style=style or ""),
        ]
        table.add_row(*(c for (name, _, _), c in zip(columns, cells, strict=True)
                        if name not in dropped))  # fmt: skip
    return table


@app.command()
@_one_line_faults
def start(
    budget: Annotated[
        str,
        typer.Option(
            help="Trainings (e.g. 8; baselines and confirmations count) or "
            "wall-clock (e.g. 90m, 10h)."
        ),
    ] = "8",
    new: Annotated[bool, typer.Option("--new", help="Abandon an unfinished session.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Go on past the power gate when the baseline shows the campaign cannot "
            "resolve what it asks (the report says so).",
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Train every baseline afresh (no reuse)."),
    ] = False,
    workspace: Workspace = Path("."),
) -> None:
    """Run a research session: baseline, the power gate, then probes until the budget is
    spent. Exit code 3: stopped as underpowered after the baseline."""
    _run_session(workspace, budget=budget, resume=False, new=new, force=force, no_cache=no_cache)


@app.command()
@_one_line_faults
def resume(workspace: Workspace = Path(".")) -> None:
    """Continue the unfinished session: finished probes are kept, the interrupted one re-runs."""
    _run_session(workspace, budget=None, resume=True, new=False)


@app.command()
@_one_line_faults
def status(
    session_id: Annotated[
        str | None,
        typer.Option(
            "--session",
            help="Session id or a unique prefix (default: the current "
            "or last; `autoresearch history` lists them).",
        ),
    ] = None,
    workspace: Workspace = Path("."),
) -> None:
    """A session (the current or last one by default): budget used and left, probes and
    verdicts."""
    store = _store(workspace)
    if session_id is not None:
        session = _session(store, session_id)
    else:
        session = store.unfinished_session() or store.latest_session()
    if session is None:
        console.print("no session yet (`autoresearch start --budget 8`)")
        return
    from probes.durations import format_duration

    used = store.runs_used(session.id)
    if session.budget_runs is not None:
        budget = f"{used}/{session.budget_runs} trainings ({session.budget_runs - used} left)"
    else:
        left = max(0.0, (session.budget_seconds or 0) - session.seconds_used)
        budget = (
            f"{format_duration(session.seconds_used)}/"
            f"{format_duration(session.budget_seconds or 0)}"
            f" ({format_duration(left)} left), {used} trainings"
        )
    running = [p.id for p in store.probes(session.id) if p.state == "running"]
    cost = sum(d.cost_usd for d in store.decisions(session.id))
    judge_cost = sum((p.metrics or {}).get("judge_cost_usd", 0.0) for p in store.probes(session.id))
    console.print(
        styled("session ", (session.id, "bold"), f" — {session.status}, policy {session.policy}")
    )
    console.print(f"budget: {budget}")
    if session.mde is not None:
        console.print(
            f"{session.campaign['objective']['target']} effects kept with 80% power: "
            f"{session.mde:.2f} or more"
        )
    if session.status == "underpowered":
        console.print(
            styled(("underpowered:", "bold red"), f" {session.error or ''}"), soft_wrap=True
        )
    elif session.forced:
        console.print(styled(("ran past the power gate (--force)", "yellow")))
    if cost:
        console.print(f"agent cost: ${cost:.2f}")
    if judge_cost:
        console.print(f"judge cost: ${judge_cost:.2f}")
    if running:
        console.print(f"running (or interrupted): {', '.join(running)}")
    console.print(results_table(store, session.id))


def _session(store: Any, ref: str) -> Any:
    """A session by id or unique id prefix; a clear error otherwise."""
    found = store.find_session(ref)
    if len(found) == 1:
        return found[0]
    if not found:
        _fail(f"no session {ref!r} in this workspace (`autoresearch history` lists them)")
    _fail(f"{ref!r} matches {len(found)} sessions: {', '.join(s.id for s in found)}")


def best_keep(store: Any, session_id: str) -> Any:
    """The session's confirmed change with the largest target gain, or None."""
    keeps = [
        p
        for p in store.probes(session_id)
        if p.status == "keep" and (p.verdict or {}).get("target_delta") is not None
    ]
    return max(keeps, key=lambda p: p.verdict["target_delta"], default=None)


@app.command()
@_one_line_faults
def adopt(
    probe: Annotated[str, typer.Argument(help="A kept probe or its confirmation (id or prefix).")],
    workspace: Workspace = Path("."),
) -> None:
    """Write a confirmed change into search_space.yaml's recipe (comments and layout kept),
    so the next session starts from the improved recipe."""
    from agent.adopt import AdoptError
    from agent.adopt import adopt as adopt_change
    from agent.replay import resolve_probe
    from agent.session import SessionError, WorkspaceLock

    store = _store(workspace)
    path = workspace / "search_space.yaml"
    try:
        with WorkspaceLock(store.runs_dir):
            done = adopt_change(store, resolve_probe(store, probe), path)
    except (AdoptError, SessionError) as exc:
        _fail(str(exc))
    from agent.proposals import format_changes

    console.print(
        styled(
            ("adopted", "green"),
            f" {format_changes(done.changes)} from {done.probe_id} ({done.comment}) into {path}",
        )
    )
    console.print(
        "the next session starts from this recipe: its baseline trains anew, and earlier "
        "findings are history measured against the old one"
    )


@app.command()
@_one_line_faults
def history(workspace: Workspace = Path(".")) -> None:
    """The campaign's sessions, oldest first: when, status, trainings, what was reused, and
    the best confirmed finding of each."""
    from agent.proposals import format_changes
    from agent.verdict import target_effect

    store = _store(workspace)
    sessions = store.all_sessions()
    if not sessions:
        console.print("no session yet (`autoresearch start --budget 8`)")
        return
    table = Table(title=f"campaign history ({len(sessions)} sessions)")
    for col in ("session", "status", "trainings", "reused", "probes", "best confirmed finding"):
        table.add_column(col)
    recipes: list[str] = []
    for session in sessions:
        recipe = json.dumps(session.campaign.get("recipe", {}), sort_keys=True)
        if recipe not in recipes:
            recipes.append(recipe)
    for session in sessions:
        probes = store.probes(session.id)
        recipe = json.dumps(session.campaign.get("recipe", {}), sort_keys=True)
        best = best_keep(store, session.id)
        finding = "—"
        if best is not None:
            finding = f"{format_changes(best.changes or {})}: {target_effect(best.verdict)}"
        table.add_row(
            f"{session.id}"
            + (
                f" (recipe {recipes.index(recipe) + 1})"
                if len(recipes) > 1 or recipes.index(recipe)
                else ""
            ),
            session.status,
            str(store.runs_used(session.id)),
            str(sum(1 for p in probes if p.reused_from)),
            str(sum(1 for p in probes if p.kind != "baseline")),
            finding,
        )
    console.print(table)
    if len(recipes) > 1:
        console.print(
            f"{len(recipes)} recipes: findings are measured against their own session's "
            "baseline (a kept change adopted into the recipe starts a new one)"
        )


@app.command()
@_one_line_faults
def show(
    probe: Annotated[str, typer.Argument(help="Probe id (or a unique prefix).")],
    workspace: Workspace = Path("."),
) -> None:
    """One probe: config, changes, per-category scores and deltas, verdict, log tail."""
    from agent.replay import resolve_probe
    from agent.session import SessionError
    from agent.stats import category_means
    from agent.training_log import (
        FIRST_FIELDS,
        HISTORY_FILE,
        number,
        read_history,
        readable_log_tail,
        sample_rows,
    )

    store = _store(workspace)
    try:
        row = resolve_probe(store, probe)
    except SessionError as exc:
        _fail(str(exc))
    console.print(styled((row.id, "bold"), f" — {row.kind}, session {row.session_id}"))
    from agent.proposals import format_changes

    console.print(
        f"change: {format_changes(row.changes or {})}  lane: {row.lane or '—'}  "
        f"steps: {row.steps}  seed: {row.seed}"
    )
    if row.hypothesis:
        console.print(f"hypothesis: {row.hypothesis}")
    console.print(f"state: {row.state}  status: {row.status or '—'}  run folder: {row.run_dir}")
    means = category_means([store.scores(row.id)])
    v = row.verdict or {}
    cats = {c["category"]: c for c in v.get("categories", [])}
    table = Table(title="per category")
    for col in ("category", "role", "probe", "baseline", "Δ", "interval", "passed"):
        table.add_column(col)
    for category in sorted(set(means) | set(cats)):
        c = cats.get(category, {})
        table.add_row(
            category,
            c.get("role", ""),
            f"{means.get(category, float('nan')):.2f}",
            f"{c['baseline_mean']:.2f}" if c else "",
            f"{c['delta']:+.2f}" if c else "",
            f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]" if c else "",
            "" if c.get("passed") is None else str(c["passed"]).lower(),
        )
    console.print(table)
    if v.get("reason"):
        console.print(styled("verdict: ", (row.status or "", "bold"), f" — {v['reason']}"))
    if row.error:
        console.print(styled(("error:", "red"), f" {row.error}"))
    memory = _memory_line(row.metrics or {})
    if memory:
        console.print(memory)
    if row.spec:
        console.print("config:")
        console.print_json(json.dumps(row.spec["params"]))
    history = read_history(Path(row.run_dir) if row.run_dir else None)
    if history:
        curve = Table(title=f"training log ({len(history)} logging steps, {HISTORY_FILE})")
        fields = [(k, name) for k, name in FIRST_FIELDS if any(k in e for e in history)]
        for _, name in fields:
            curve.add_column(name, justify="right")
        for entry in sample_rows(history):
            curve.add_row(*(number(entry[k]) if k in entry else "" for k, _ in fields))
        console.print(curve)
    if row.log_tail:
        console.print("log tail" + (" (its loss lines are the table above):" if history else ":"))
        tail = readable_log_tail(row.log_tail, omit_log_dicts=bool(history))
        console.print(tail, markup=False, highlight=False)


def _memory_line(metrics: dict[str, Any]) -> str | None:
    """Estimated vs measured peak memory of a training, when the trainer recorded them."""
    estimate, peak = metrics.get("estimated_memory_gib"), metrics.get("peak_memory_gib")
    if not isinstance(peak, (int, float)):
        return None
    line = f"memory: peak {peak:.2f} GiB"
    if isinstance(estimate, (int, float)):
        line += f", estimated {estimate:.2f} GiB"
        if peak:
            line += f" ({estimate / peak:.2f}x the peak)"
    return line


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="A probe id (or prefix), or `baseline`.")],
    b: Annotated[str, typer.Argument(help="A probe id (or prefix), or `baseline`.")],
    top: Annotated[int, typer.Option(help="How many of the most-moved prompts to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    workspace: Workspace = Path("."),
) -> None:
    """Two trainings side by side (a probe and `baseline`: its session's baseline): per
    category, and the prompts that moved most with both generations."""
    from agent.compare import BASELINE, CompareError, as_dict
    from agent.compare import compare as compare_runs
    from agent.findings import signed
    from agent.replay import resolve_probe
    from agent.session import SessionError

    store = _store(workspace)
    try:
        rows = [None if ref == BASELINE else resolve_probe(store, ref) for ref in (a, b)]
        result = compare_runs(store, rows[0], rows[1], top=max(0, top))
    except (SessionError, CompareError) as exc:
        _fail(str(exc))
    if as_json:
        console.print_json(json.dumps(as_dict(result), default=str))
        return
    console.print(styled("A: ", (result.a, "bold")))
    console.print(styled("B: ", (result.b, "bold")))
    for note in result.notes:
        console.print(styled(("note: ", "yellow"), note))
    table = Table(title="per category (Δ = B vs A, positive: B is better)")
    for col in ("category", "prompts", "A", "B", "Δ"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for category, mean_a, mean_b, delta, n in result.categories:
        table.add_row(category, str(n), f"{mean_a:.2f}", f"{mean_b:.2f}", signed(delta))
    console.print(table)
    if not result.moved:
        console.print("no prompt moved" if top else "")
        return
    console.print(styled(("prompts that moved most", "bold")))
    for m in result.moved:
        console.print(
            f"\n{m.prompt_id} ({m.category})  Δ {signed(m.delta)}: A {m.a:.2f} → B {m.b:.2f}",
            markup=False,
            highlight=False,
        )
        for label, text in (("prompt", m.prompt), ("reference", m.reference),
                            ("A", m.output_a), ("B", m.output_b)):  # fmt: skip
            if text is not None and text != "":
                console.print(f"  {label:<9} {text}", markup=False, highlight=False)
            elif label in ("A", "B"):
                console.print(f"  {label:<9} (no generation recorded)", markup=False)


@app.command()
@_one_line_faults
def replay(
    probe: Annotated[str, typer.Argument(help="Probe id (or a unique prefix).")],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the original's).")] = None,
    workspace: Workspace = Path("."),
) -> None:
    """Re-run a recorded probe from its stored config and compare per category."""
    from agent.replay import replay as run_replay
    from agent.replay import resolve_probe, stored_campaign
    from agent.runtime import build_trainer
    from agent.session import SessionError, WorkspaceLock

    store = _store(workspace)
    try:
        with WorkspaceLock(store.runs_dir):
            original = resolve_probe(store, probe)
            campaign = stored_campaign(store, original.session_id)
            store.protect(campaign.secrets)
            SafeConsole.secret_names = tuple(campaign.secrets)
            trainer = build_trainer(campaign)
            prepare = getattr(trainer, "prepare", None)
            if callable(prepare):
                prepare()
            outcome = run_replay(store, original.id, seed=seed, trainer=trainer)
    except SessionError as exc:
        _fail(str(exc))
    if not outcome.result.ok:
        _fail(f"the replay crashed: {outcome.result.error}\n{outcome.result.log_tail}")
    table = Table(title=f"{outcome.original.id} replayed as {outcome.replay_id}")
    for col in ("category", "original", "replay", "difference"):
        table.add_column(col, justify="right" if col != "category" else "left")
    for category in sorted(outcome.original_means):
        a = outcome.original_means[category]
        b = outcome.replay_means.get(category, float("nan"))
        table.add_row(category, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}")
    console.print(table)
    if outcome.verdict is not None:
        console.print(
            styled(
                "replay vs baseline: ",
                (outcome.verdict.status.value, "bold"),
                f" — {outcome.verdict.reason}",
            )
        )


@app.command()
@_one_line_faults
def report(
    session: Annotated[str | None, typer.Option(help="Session id (default: the latest).")] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Also write SESSION_REPORT.html, plots inlined.")
    ] = False,
    workspace: Workspace = Path("."),
) -> None:
    """Write SESSION_REPORT.md (and its archive copy under docs/sessions/, plots beside it);
    with --html also SESSION_REPORT.html, one self-contained page."""
    from agent.report.render import write_html_report, write_report

    store = _store(workspace)
    row = _session(store, session) if session else store.latest_session()
    if row is None:
        _fail("no session in this workspace")
    store.sync_views()
    path, archive = write_report(store, row.id)
    console.print(f"wrote {path} and {archive}")
    if html:
        console.print(f"wrote {write_html_report(store, row.id)}")


@app.command()
@_one_line_faults
def power(
    session: Annotated[str | None, typer.Option(help="Session id (default: the latest).")] = None,
    workspace: Workspace = Path("."),
) -> None:
    """What the session's baseline can resolve: the target effect kept with 80% power (vs
    eval repeats), the guard tolerances an unchanged guard passes, the power gate's verdict."""
    from agent.campaign import Objective
    from agent.stats import PowerReport, max_confirmations, power_report
    from agent.verdict import NoiseModel

    store = _store(workspace)
    row = _session(store, session) if session else store.latest_session()
    if row is None or not row.noise:
        _fail("no finished baseline yet: run `autoresearch start` first")
    objective = Objective.model_validate(row.campaign["objective"])
    if row.power:
        report = PowerReport.from_dict(row.power)
    else:  # a session recorded before the power gate existed
        seeds = row.campaign["probe"]["baseline_seeds"]
        report = power_report(
            NoiseModel.from_dict(row.noise),
            objective,
            max_confirmations=max_confirmations(row.budget_runs, seeds),
        )
    console.print(
        f"target {report.target}: effects of {report.mde:.2f} or more are kept with 80% "
        f"power (min_improvement {report.min_improvement:.2f}; first confirmation at "
        f"one-sided {report.confirm_alpha:.3g}; session guarantee: at most "
        f"{report.session_alpha:.0%} chance of keeping any change that does nothing)"
    )
    table = Table(title="target effect kept with 80% power vs eval repeats")
    for col in ("eval repeats", "prompts", "baseline seeds", "effect kept at 80%"):
        table.add_column(col, justify="right")
    for r in report.table:
        mark = "" if r.measured else " *"
        table.add_row(str(r.repeats), str(r.prompts), str(r.seeds), f"{r.mde:.2f}{mark}")
    console.print(table)
    if not all(r.measured for r in report.table):
        console.print(
            "* the baseline had one eval repeat, so the gain from more repeats is optimistic "
            "(eval noise was not measured separately)"
        )
    for guard, tolerance in report.guard_tolerance_needed.items():
        console.print(
            f"guard {guard}: an unchanged guard passes with 80% power at tolerance "
            f"{tolerance:.2f} or more (campaign: {objective.tolerance_for(guard):.2f})"
        )
    for warning in report.warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"))
    if report.underpowered:
        console.print(styled(("underpowered:", "bold red")))
        for reason in report.underpowered:
            console.print(f"  - {reason}")
        console.print("what would fix it (any one per item):")
        for fix in report.fixes:
            console.print(f"  - {fix}")
    else:
        console.print("the campaign can resolve what it asks (power gate passed)")


export_app = typer.Typer(help="Send a session to other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow(
    session: Annotated[str | None, typer.Option(help="Session id (default: the latest).")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: sqlite:///<workspace>/runs/mlflow.db)."),
    ] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "autoresearch",
    workspace: Workspace = Path("."),
) -> None:
    """The session as an MLflow parent run, each training a nested run (params, per-category
    metrics and deltas, verdict, loss curve, run files; the report and plots on the parent)."""
    from agent.export_mlflow import ExportError, export_session

    store = _store(workspace)
    row = _session(store, session) if session else store.latest_session()
    if row is None:
        _fail("no session in this workspace")
    try:
        done = export_session(store, row.id, tracking_uri=tracking_uri, experiment=experiment)
    except ExportError as exc:
        _fail(str(exc))
    console.print(
        f"exported session {row.id} to {done.tracking_uri} (experiment {experiment!r}): "
        f"parent run {done.parent_run_id}, {len(done.child_run_ids)} nested runs"
    )
    console.print(f"browse: mlflow ui --backend-store-uri {done.tracking_uri}")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()

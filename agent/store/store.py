"""The only writer of a workspace's records.

Every change goes to the database first (one transaction per event); results.tsv and
progress.log are then regenerated or appended from it, so after any interruption they can be
rebuilt to equal the database exactly (`Store.sync_views`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm import sessionmaker

from agent.proposals import format_changes
from agent.store.tables import (
    Base,
    DecisionRow,
    EventRow,
    ProbeRow,
    ScoreRow,
    SessionRow,
)
from probes.redaction import environment_secrets, redact, redact_value
from probes.spec import ProbeResult, Score
from probes.textfiles import write_text_whole

TSV_COLUMNS = [
    "probe_id",
    "session",
    "kind",
    "lane",
    "change",
    "steps",
    "seed",
    "target",
    "target_delta",
    "ci_low",
    "ci_high",
    "guard_ok",
    "worst_guard",
    "worst_guard_delta",
    "critical",
    "status",
    "description",
]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _clean(text: str | None) -> str:
    # TSV cells never contain tabs or newlines.
    return " ".join((text or "").split())


class Store:
    """Records of one workspace: autoresearch.db (or any SQLAlchemy URL), results.tsv,
    runs/progress.log."""

    def __init__(self, workspace: Path, url: str | None = None):
        self.workspace = workspace.resolve()
        self.runs_dir = self.workspace / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.tsv_path = self.workspace / "results.tsv"
        self.log_path = self.runs_dir / "progress.log"
        self.url = (
            url
            or os.environ.get("AUTORESEARCH_DB")
            or f"sqlite:///{self.runs_dir / 'autoresearch.db'}"
        )
        self.engine: Engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._secrets = environment_secrets()
        self._hold_probes = False
        self._held: dict[str, list[ProbeRow]] = {}
        # Every row passes here on its way to the database: whatever a trainer, a model or an
        # exception put into a text, no secret is ever recorded (nor, then, shown or reported).
        event.listen(self._sessions, "before_flush", self._before_flush)

    @property
    def hold_probes(self) -> bool:
        """Keep `probes()` between calls (see there); only for the one writer of a session."""
        return self._hold_probes

    @hold_probes.setter
    def hold_probes(self, on: bool) -> None:
        self._hold_probes = on
        self._held.clear()

    def protect(self, secret_names: Iterable[str]) -> None:
        """Also mask the values of these environment variables (a campaign's `secrets:`)."""
        self._secrets = environment_secrets(secret_names)

    def redact(self, text: str) -> str:
        """`text` as the store would record it (secrets masked)."""
        return redact(text, self._secrets)

    def _before_flush(self, db: DBSession, _context: Any, _instances: Any) -> None:
        """Drop the held probe lists when a probe is written; mask secrets in every row."""
        if any(isinstance(row, ProbeRow) for row in (*db.new, *db.dirty, *db.deleted)):
            self._held.clear()
        for row in (*db.new, *db.dirty):
            for attr in inspect(row).mapper.column_attrs:
                value = getattr(row, attr.key, None)
                if isinstance(value, (str, dict, list)):
                    masked = redact_value(value, self._secrets)
                    if masked != value:
                        setattr(row, attr.key, masked)

    @contextmanager
    def tx(self) -> Iterator[DBSession]:
        """A transaction: committed on success, rolled back on any error."""
        with self._sessions() as db, db.begin():
            yield db

    def close(self) -> None:
        self.engine.dispose()

    # ---- sessions -------------------------------------------------------------------------

    def create_session(self, row: SessionRow) -> SessionRow:
        with self.tx() as db:
            db.add(row)
        return row

    def get_session(self, session_id: str) -> SessionRow | None:
        with self._sessions() as db:
            return db.get(SessionRow, session_id)

    def unfinished_session(self) -> SessionRow | None:
        """The newest session still marked running (interrupted or live)."""
        with self._sessions() as db:
            return db.scalars(
                select(SessionRow)
                .where(SessionRow.status == "running")
                .order_by(SessionRow.started_at.desc())
            ).first()

    def latest_session(self) -> SessionRow | None:
        with self._sessions() as db:
            return db.scalars(select(SessionRow).order_by(SessionRow.started_at.desc())).first()

    def all_sessions(self) -> list[SessionRow]:
        with self._sessions() as db:
            return list(db.scalars(select(SessionRow).order_by(SessionRow.started_at)))

    def update_session(self, session_id: str, **values: Any) -> None:
        with self.tx() as db:
            row = db.get(SessionRow, session_id)
            assert row is not None, session_id
            for key, value in values.items():
                setattr(row, key, value)

    def add_seconds(self, session_id: str, seconds: float) -> float:
        """Add active wall-clock time to the session; return the new total."""
        with self.tx() as db:
            row = db.get(SessionRow, session_id)
            assert row is not None
            row.seconds_used = (row.seconds_used or 0.0) + max(0.0, seconds)
            return row.seconds_used

    # ---- probes ---------------------------------------------------------------------------

    def add_probe(self, row: ProbeRow, decision: DecisionRow | None = None) -> ProbeRow:
        """Insert a pending probe (and the decision that asked for it) in one transaction."""
        with self.tx() as db:
            row.seq = (
                db.scalar(
                    select(func.coalesce(func.max(ProbeRow.seq), 0)).where(
                        ProbeRow.session_id == row.session_id
                    )
                )
                or 0
            ) + 1
            row.state = "pending"
            db.add(row)
            if decision is not None:
                decision.probe_id = row.id
                db.add(decision)
        return row

    def mark_running(self, probe_id: str, run_dir: Path, spec: dict[str, Any]) -> ProbeRow:
        """The training is about to launch: charge it to the budget once, however often it
        is re-run after an interruption."""
        with self.tx() as db:
            row = db.get(ProbeRow, probe_id)
            assert row is not None
            row.state = "running"
            row.counted = True
            row.attempts += 1
            row.run_dir = str(run_dir)
            row.spec = spec
            row.started_at = utcnow()
            return row

    def finish_probe(
        self,
        probe_id: str,
        result: ProbeResult,
        verdict: dict[str, Any] | None,
        status: str,
    ) -> None:
        """Record a finished probe's scores and verdict, then refresh results.tsv."""
        with self.tx() as db:
            row = db.get(ProbeRow, probe_id)
            assert row is not None
            db.query(ScoreRow).filter(ScoreRow.probe_id == probe_id).delete()
            for s in result.scores:
                db.add(
                    ScoreRow(
                        probe_id=probe_id,
                        prompt_id=s.prompt_id,
                        category=s.category,
                        repeat=s.repeat,
                        score=None if s.error else s.score,
                        critical=s.critical,
                        components=s.components,
                        meta=s.meta,
                        error=s.error,
                    )
                )
            row.state = "finished"
            row.finished_at = utcnow()
            row.runtime_s = result.runtime_s
            row.metrics = dict(result.metrics)
            row.error = result.error
            row.log_tail = result.log_tail
            row.status = status
            row.verdict = verdict
        self._append_tsv(probe_id)

    def update_probe(self, probe_id: str, **values: Any) -> None:
        with self.tx() as db:
            row = db.get(ProbeRow, probe_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)

    def set_verdict(self, probe_id: str, verdict: dict[str, Any], status: str) -> None:
        """Change a finished probe's verdict (e.g. a candidate superseded by its confirmation)."""
        self.update_probe(probe_id, verdict=verdict, status=status)
        self.write_tsv()

    def get_probe(self, probe_id: str) -> ProbeRow | None:
        with self._sessions() as db:
            return db.get(ProbeRow, probe_id)

    def find_session(self, prefix: str) -> list[SessionRow]:
        """Sessions whose id equals or starts with `prefix` (the exact one alone if any)."""
        everything = self.all_sessions()
        return [s for s in everything if s.id == prefix] or [
            s for s in everything if s.id.startswith(prefix)
        ]

    def find_probe(self, prefix: str) -> list[ProbeRow]:
        """Probes whose id equals or starts with `prefix`."""
        with self._sessions() as db:
            exact = db.get(ProbeRow, prefix)
            if exact is not None:
                return [exact]
            return list(
                db.scalars(select(ProbeRow).where(ProbeRow.id.startswith(prefix, autoescape=True)))
            )

    def reusable_run(self, key: str, *, exclude_session: str) -> ProbeRow | None:
        """The first finished training with this content key in another session that did not
        crash (its scores are what the same training would give again)."""
        with self._sessions() as db:
            return db.scalars(
                select(ProbeRow)
                .where(
                    ProbeRow.run_key == key,
                    ProbeRow.state == "finished",
                    ProbeRow.status != "crash",
                    ProbeRow.session_id != exclude_session,
                )
                .order_by(ProbeRow.finished_at)
            ).first()

    def probes(self, session_id: str) -> list[ProbeRow]:
        """A session's probes in order. While `hold_probes` is on (the session that holds the
        workspace lock is running: the only writer), the list is kept between calls and
        dropped on any write of a probe, so a long session does not re-read and re-decode
        every row several times per training."""
        if self.hold_probes and session_id in self._held:
            return list(self._held[session_id])
        with self._sessions() as db:
            rows = list(
                db.scalars(
                    select(ProbeRow).where(ProbeRow.session_id == session_id).order_by(ProbeRow.seq)
                )
            )
        if self.hold_probes:
            self._held[session_id] = rows
        return list(rows)

    def scores(self, probe_id: str, *, include_errors: bool = False) -> list[Score]:
        """A probe's per-prompt scores; prompts that could not be scored (e.g. a judge error)
        only with `include_errors`, since they take no part in any comparison."""
        with self._sessions() as db:
            q = select(ScoreRow).where(ScoreRow.probe_id == probe_id)
            if not include_errors:
                q = q.where(ScoreRow.error.is_(None))
            rows = db.scalars(q.order_by(ScoreRow.id))
            return [
                Score(
                    prompt_id=r.prompt_id,
                    category=r.category,
                    score=math.nan if r.score is None else r.score,
                    repeat=r.repeat,
                    critical=r.critical,
                    components=r.components,
                    meta=r.meta,
                    error=r.error,
                )
                for r in rows
            ]

    def runs_used(self, session_id: str) -> int:
        """Trainings charged to the session's budget (each counted once)."""
        with self._sessions() as db:
            return int(
                db.scalar(
                    select(func.count())
                    .select_from(ProbeRow)
                    .where(
                        ProbeRow.session_id == session_id,
                        ProbeRow.counted.is_(True),
                        ProbeRow.in_budget.is_(True),
                    )
                )
                or 0
            )

    # ---- decisions and events -------------------------------------------------------------

    def add_decision(self, row: DecisionRow) -> None:
        with self.tx() as db:
            db.add(row)

    def decisions(self, session_id: str) -> list[DecisionRow]:
        with self._sessions() as db:
            return list(
                db.scalars(
                    select(DecisionRow)
                    .where(DecisionRow.session_id == session_id)
                    .order_by(DecisionRow.id)
                )
            )

    def event(self, session_id: str, kind: str, message: str, probe_id: str | None = None) -> None:
        """Record an event and append its line to progress.log."""
        row = EventRow(
            session_id=session_id,
            probe_id=probe_id,
            created_at=utcnow(),
            kind=kind,
            message=message,
        )
        with self.tx() as db:
            db.add(row)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(_log_line(row))

    def events(self, session_id: str | None = None) -> list[EventRow]:
        with self._sessions() as db:
            q = select(EventRow).order_by(EventRow.id)
            if session_id is not None:
                q = q.where(EventRow.session_id == session_id)
            return list(db.scalars(q))

    # ---- views ----------------------------------------------------------------------------

    def tsv_rows(self, probe_id: str | None = None) -> list[dict[str, str]]:
        """results.tsv's rows, derived from the database (finished probes, in order); with
        `probe_id`, that probe's row alone."""
        with self._sessions() as db:
            query = (
                select(ProbeRow, SessionRow.campaign)
                .join(SessionRow, SessionRow.id == ProbeRow.session_id)
                .where(ProbeRow.state == "finished")
                .order_by(SessionRow.started_at, ProbeRow.seq)
            )
            counts = (
                select(ScoreRow.probe_id, func.count())
                .where(ScoreRow.critical.is_(True))
                .group_by(ScoreRow.probe_id)
            )
            if probe_id is not None:
                query = query.where(ProbeRow.id == probe_id)
                counts = counts.where(ScoreRow.probe_id == probe_id)
            rows = db.execute(query).all()
            crit = dict(db.execute(counts).all())
        out = []
        for probe, campaign in rows:
            v = probe.verdict or {}
            guard_ok = v.get("guard_ok")
            out.append(
                {
                    "probe_id": probe.id,
                    "session": probe.session_id,
                    "kind": probe.kind,
                    "lane": probe.lane or "",
                    "change": format_changes(probe.changes or {}),
                    "steps": str(probe.steps),
                    "seed": str(probe.seed),
                    "target": v.get("target") or campaign["objective"]["target"],
                    "target_delta": _num(v.get("target_delta")),
                    "ci_low": _num(v.get("ci_low")),
                    "ci_high": _num(v.get("ci_high")),
                    "guard_ok": "" if guard_ok is None else str(bool(guard_ok)).lower(),
                    "worst_guard": v.get("worst_guard") or "",
                    "worst_guard_delta": _num(v.get("worst_guard_delta")),
                    "critical": str(crit.get(probe.id, 0)),
                    "status": probe.status or "",
                    "description": _clean(probe.hypothesis or probe.error),
                }
            )
        return out

    def render_tsv(self) -> str:
        return _tsv_text(self.tsv_rows(), header=True)

    def _append_tsv(self, probe_id: str) -> None:
        """After a probe finished: append its row when it is the last one results.tsv lists
        and the file holds every earlier row; otherwise rewrite the file. (Rewriting it after
        every training made a long session's per-training cost grow with its length.)"""
        with self._sessions() as db:
            probe = db.get(ProbeRow, probe_id)
            assert probe is not None
            started = db.scalar(
                select(SessionRow.started_at).where(SessionRow.id == probe.session_id)
            )
            finished = ProbeRow.state == "finished"
            later = db.scalar(
                select(func.count())
                .select_from(ProbeRow)
                .join(SessionRow, SessionRow.id == ProbeRow.session_id)
                .where(
                    finished,
                    ProbeRow.id != probe_id,
                    # Sessions started at the same moment have no defined order: rewrite.
                    ((SessionRow.id != probe.session_id) & (SessionRow.started_at >= started))
                    | ((ProbeRow.session_id == probe.session_id) & (ProbeRow.seq > probe.seq)),
                )
            )
            total = db.scalar(select(func.count()).select_from(ProbeRow).where(finished))
        try:
            with self.tsv_path.open("rb") as fh:
                lines = sum(1 for _ in fh)
        except OSError:
            lines = -1
        if later or lines != total:  # header + every earlier row = total lines
            self.write_tsv()
            return
        with self.tsv_path.open("a", encoding="utf-8") as fh:
            fh.write(_tsv_text(self.tsv_rows(probe_id), header=False))

    def write_tsv(self) -> None:
        """Regenerate results.tsv atomically (a reader never sees half a file)."""
        write_text_whole(self.tsv_path, self.render_tsv())

    def sync_views(self) -> None:
        """Make results.tsv and progress.log equal the database again (after a crash)."""
        self.write_tsv()
        write_text_whole(self.log_path, "".join(_log_line(e) for e in self.events()))


def _tsv_text(rows: list[dict[str, str]], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf,
        fieldnames=TSV_COLUMNS,
        delimiter="\t",
        lineterminator="\n",
        quoting=csv.QUOTE_NONE,
        escapechar="\\",
    )
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _log_line(row: EventRow) -> str:
    stamp = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
    probe = f" [{row.probe_id}]" if row.probe_id else ""
    return f"{stamp} {row.kind:<10}{probe} {' '.join(row.message.split())}\n"


def _add_missing_columns(engine: Engine) -> None:
    """Additive schema migration: a database written by an older version gains the columns
    added since (all nullable or defaulted), so old sessions stay readable."""
    from sqlalchemy import inspect, literal, text

    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = ""
                if column.default is not None and getattr(column.default, "is_scalar", False):
                    # The value in the database's own syntax (PostgreSQL refuses a boolean
                    # column with DEFAULT 1; SQLite has no TRUE before 3.23).
                    value = literal(column.default.arg, column.type).compile(  # type: ignore[attr-defined]
                        dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                    )
                    default = f" DEFAULT {value}"
                conn.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{default}')
                )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()

"""The database schema (SQLAlchemy 2). The database is the source of truth; results.tsv,
progress.log and the report are views of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    """One `start` … report cycle with one budget."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # running | finished | failed | underpowered | abandoned
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    budget_runs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds_used: Mapped[float] = mapped_column(Float, default=0.0)
    policy: Mapped[str] = mapped_column(String(32))
    campaign: Mapped[dict] = mapped_column(JSON)  # the validated campaign at start
    campaign_path: Mapped[str] = mapped_column(Text)
    noise: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    mde: Mapped[float | None] = mapped_column(Float, nullable=True)
    power: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # PowerReport.to_dict()
    forced: Mapped[bool] = mapped_column(Boolean, default=False)  # ran past the power gate
    no_cache: Mapped[bool] = mapped_column(Boolean, default=False)  # `start --no-cache`
    conclusion: Mapped[str | None] = mapped_column(Text, nullable=True)
    narrative: Mapped[str | None] = mapped_column(Text, nullable=True)  # the agent's prose
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    schema_version: Mapped[int] = mapped_column(Integer, default=SCHEMA_VERSION)


class ProbeRow(Base):
    """One training run (baseline, probe, confirmation or replay) and its outcome."""

    __tablename__ = "probes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    lane: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changes: Mapped[dict] = mapped_column(JSON)
    steps: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    expected_effect: Mapped[str | None] = mapped_column(Text, nullable=True)
    reading: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending -> running -> finished; a running row found on resume is re-run.
    state: Mapped[str] = mapped_column(String(16))
    counted: Mapped[bool] = mapped_column(Boolean, default=False)  # charged to the budget
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    spec: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the resolved ProbeSpec
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    runtime_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the verdict status
    verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    in_budget: Mapped[bool] = mapped_column(Boolean, default=True)  # False: a manual replay
    # A baseline reused from an earlier session (same content key): its original probe id.
    reused_from: Mapped[str | None] = mapped_column(String(128), nullable=True)
    run_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    __table_args__ = (Index("ix_probes_session_seq", "session_id", "seq"),)


class ScoreRow(Base):
    """One evaluated prompt and repeat of a finished probe."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    probe_id: Mapped[str] = mapped_column(ForeignKey("probes.id"), index=True)
    prompt_id: Mapped[str] = mapped_column(String(256))
    category: Mapped[str] = mapped_column(String(128))
    repeat: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: not scorable
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    components: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # e.g. judge rubric hash
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. judge_error: …


class DecisionRow(Base):
    """One policy answer: the proposal, whether the loop accepted it, and what it cost."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    probe_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    policy: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    proposal: Mapped[dict] = mapped_column(JSON)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)


class EventRow(Base):
    """One line of progress.log."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    probe_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)

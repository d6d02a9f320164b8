"""The database tables (SQLAlchemy 2 declarative mapping).

Lists (skills, certificates, equipment) are stored as JSON. Every owned object carries the
id of the organisation that owns it; access rules live in :mod:`iei_match_service.access`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ORG_KINDS = ("enterprise", "college", "alliance")
COLLEGE_TYPES = ("中职", "高职", "职教本科", "本科", "技工院校")
ROLES = ("enterprise", "college", "coordinator", "admin")
# Outcome events in the order a partnership goes through them; ``rejected`` ends one.
EVENTS = ("viewed", "contacted", "visited", "agreement_signed", "students_placed", "hired",
          "rejected")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
# Ids are never given again after a delete (outcomes, exports and job results refer to them):
# PostgreSQL's sequences never go back; SQLite needs AUTOINCREMENT, without which a new row
# takes the largest id in use plus one.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite stores it without zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    college_type: Mapped[str | None] = mapped_column(String(16))
    province: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """An organisation's membership of an alliance."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("alliance_id", "member_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                             index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                           index=True)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``prefix`` finds it without a scan."""

    __tablename__ = "api_keys"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                        index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class Need(Base):
    """An enterprise's talent need."""

    __tablename__ = "needs"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                        index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    skills: Mapped[list] = mapped_column(JSON, default=list)
    certificates: Mapped[list] = mapped_column(JSON, default=list)
    industry: Mapped[str] = mapped_column(String(100), default="")
    code: Mapped[str] = mapped_column(String(32), default="")
    headcount: Mapped[int] = mapped_column(Integer, default=1)
    level: Mapped[str] = mapped_column(String(16), default="")
    province: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # indexed: the prepared catalogs' state check reads the latest change per request
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow,
                                                 index=True)


class Program(Base):
    """A college's program (major), with its catalog code."""

    __tablename__ = "programs"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                        index=True)
    code: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    certificates: Mapped[list] = mapped_column(JSON, default=list)
    level: Mapped[str] = mapped_column(String(16), default="")
    province: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(50), default="")
    graduates_per_year: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # indexed: the prepared catalogs' state check reads the latest change per request
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow,
                                                 index=True)


class TrainingBase(Base):
    """A training / practice base (实训基地)."""

    __tablename__ = "training_bases"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                        index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    industry: Mapped[str] = mapped_column(String(100), default="")
    equipment: Mapped[list] = mapped_column(JSON, default=list)
    province: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(50), default="")
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Partnership(Base):
    """A (need, program) pair that someone acted on; ``stage`` is its latest event."""

    __tablename__ = "partnerships"
    __table_args__ = (UniqueConstraint("need_id", "program_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"),
                                            index=True)
    stage: Mapped[str] = mapped_column(String(24))
    grade: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    events: Mapped[list[OutcomeEvent]] = relationship(
        back_populates="partnership", order_by="OutcomeEvent.id",
        cascade="all, delete-orphan", passive_deletes=True)


class OutcomeEvent(Base):
    __tablename__ = "outcome_events"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    partnership_id: Mapped[int] = mapped_column(
        ForeignKey("partnerships.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(24))
    # Who recorded the event; kept (as NULL) when that organisation is deleted.
    actor_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    partnership: Mapped[Partnership] = relationship(back_populates="events")


class Job(Base):
    """A background job (retraining, batch scoring) and its progress.

    Any process of the service may run it: the one that claimed it holds a lease
    (``lease_owner`` until ``lease_expires_at``) and renews it while it works; a cancel is
    ``cancel_requested``, seen by the owner at its next renewal. ``active_key`` names the
    submission while the job is queued or running (unique, so an identical submission finds
    it).
    """

    __tablename__ = "jobs"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                        index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RateCount(Base):
    """Requests of one API key in one minute (``minute``: minutes since the epoch), counted
    by every process of the service when the rate limit is shared
    (``IEI_MATCH_SHARED_RATE_LIMIT``); old minutes are pruned."""

    __tablename__ = "rate_counts"

    bucket: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(Integer)

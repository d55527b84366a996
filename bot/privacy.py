"""Who may see or write what, how a patient is shown in shared places, and
the audit trail of every read and write of patient data."""

from __future__ import annotations

import hashlib
import json
from datetime import timezone

from sqlalchemy import bindparam, insert, text
from sqlalchemy import event as orm_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from bot.context import Context
from bot.store.models import AuditEvent, CareTeamMember, Patient
from bot.store.queries import team_patients
from bot.store.types import UTCDateTime

GENESIS = "0" * 64


def is_admin(ctx: Context) -> bool:
    return any(f"{i.platform}:{i.external_id}" in ctx.settings.admins for i in ctx.member.identities)


def may_register(ctx: Context) -> bool:
    """Registering patients is a role: care managers and hospital discharge
    staff by default (`[patients]` in renkei.toml), and admins."""
    rules = ctx.settings.team.patients
    return (is_admin(ctx) or ctx.member.profession in rules.register_professions
            or any(f"{i.platform}:{i.external_id}" in rules.registrars for i in ctx.member.identities))


# Built once (statements run on almost every request; see store.queries).
_TEAMS_PATIENTS = team_patients(bindparam("member"))
# SQLite: the head read and the rows inserted, chained in Python.
_CHAIN_HEAD = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_INSERT_AUDIT = insert(AuditEvent.__table__)
_AUDIT_COLUMNS = ("at", "actor", "action", "patient_code", "target", "allowed", "detail", "prev_hash", "hash")
# PostgreSQL: lock, head, hashes and rows in one call (migration 0016). The
# instants go through the column's own type, which refuses a naive one.
_APPEND_CHAINED = text(
    "SELECT renkei_audit_append(:ats, CAST(:actors AS varchar[]), "
    "CAST(:actions AS varchar[]), CAST(:codes AS varchar[]), CAST(:targets AS varchar[]), "
    "CAST(:alloweds AS boolean[]), CAST(:details AS varchar[]), CAST(:tails AS text[]), :genesis)"
).bindparams(bindparam("ats", type_=postgresql.ARRAY(UTCDateTime())))

_TEAMS = "renkei_care_teams"  # in session.info: {member id: the patient ids of their care teams}


def remember_care_teams(session: Session, member_id: int, patient_ids: frozenset[int]) -> None:
    """What `care_teams` would read, read already (with the acting member,
    `store.queries.acting_member`), for the rest of this transaction."""
    session.info.setdefault(_TEAMS, {})[member_id] = patient_ids


def care_teams(session: Session, member_id: int) -> frozenset[int]:
    """The patients on whose care teams the member is. Read once per
    transaction (for the acting member, with them: `remember_care_teams`):
    a command finds a patient among them, checks access and
    labels the patients it shows (`/patient list`: one check per row). Any
    change to a care team in the session forgets it: an added row at once,
    a deleted or changed one when flushed (`change_membership` flushes), an
    ORM statement on the table, a rolled-back savepoint. (SQL written by
    hand against `careteammember` would have to forget it itself.)"""
    known = session.info.setdefault(_TEAMS, {})
    if member_id not in known:
        known[member_id] = frozenset(session.exec(_TEAMS_PATIENTS, params={"member": member_id}))
    return known[member_id]


def in_care_team(session: Session, patient: Patient, member_id: int) -> bool:
    return patient.id in care_teams(session, member_id)


def may_access_notes(ctx: Context, patient: Patient) -> bool:
    return is_admin(ctx) or in_care_team(ctx.session, patient, ctx.member.id)


@orm_event.listens_for(OrmSession, "transient_to_pending")  # session.add of a new row, before any flush
def _forget_if_team(session: OrmSession, instance) -> None:
    if isinstance(instance, CareTeamMember):
        session.info.pop(_TEAMS, None)


@orm_event.listens_for(OrmSession, "do_orm_execute")
def _forget_if_team_statement(state) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and state.bind_mapper is not None \
            and state.bind_mapper.class_ is CareTeamMember:
        state.session.info.pop(_TEAMS, None)


@orm_event.listens_for(OrmSession, "after_flush")  # a changed row's UPDATE does not pass do_orm_execute
def _forget_if_team_flushed(session: OrmSession, _context) -> None:
    if any(isinstance(o, CareTeamMember) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(_TEAMS, None)


@orm_event.listens_for(OrmSession, "after_soft_rollback")  # a rolled-back savepoint may have held a change
def _forget_care_teams(session: OrmSession, *_args) -> None:
    session.info.pop(_TEAMS, None)


@orm_event.listens_for(OrmSession, "after_transaction_end")
def _forget_care_teams_after(session: OrmSession, transaction) -> None:
    # The transaction's end, not a savepoint's release (which fires
    # "after_commit" too and changes nothing).
    if transaction.parent is None:
        session.info.pop(_TEAMS, None)


def initials(patient: Patient) -> str:
    """`ヤマダ タロウ` -> `Y.T.`: enough for the team to recognise, not a name."""
    import jaconv

    parts = jaconv.kata2hira(patient.kana).split()
    letters = [jaconv.kana2alphabet(p)[:1].upper() for p in parts if p]
    letters = [c for c in letters if c.isascii() and c.isalpha()]
    return ".".join(letters) + "." if letters else "—"


def audit(ctx: Context, action: str, *, patient: Patient | None = None, allowed: bool = True,
          target: str = "", detail: str = "") -> AuditEvent:
    """Append one audit row in the caller's transaction. It is chained to
    the last row only when the transaction commits (`_chain_pending`): the
    lock that serialises chain writers is then held for the commit alone,
    not for the rest of the request, so it does not set every request's pace.
    The row's hashes are in the database only: on PostgreSQL the server
    computes them, and this object keeps them empty."""
    session = ctx.session
    row = AuditEvent(
        at=ctx.now, actor=ctx.actor, action=action,
        patient_code=patient.code if patient else None, target=target[:1024],
        allowed=allowed, detail=detail[:256], prev_hash="", hash="",
    )
    # Kept with the savepoint it was written in: a rolled-back savepoint takes its rows along.
    session.info.setdefault(_PENDING, []).append((session.get_nested_transaction(), row))
    return row


_PENDING = "renkei_audit_pending"


# First of the commit listeners: the tables' version bump (bot.store.versions)
# then comes inside the chain lock, not before it.
@orm_event.listens_for(OrmSession, "before_commit", insert=True)
def _chain_pending(session: OrmSession) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint: the rows wait for the transaction's own commit
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # everything else first, outside the lock
    rows = [row for _savepoint, row in pending]
    if session.get_bind().dialect.name == "postgresql":
        # The server serialises chain writers until commit (so no two rows
        # share a parent), reads the head under that lock and inserts the
        # rows chained: one round trip, then only the commit holds the lock.
        session.execute(_APPEND_CHAINED, {
            "ats": [r.at for r in rows], "actors": [r.actor for r in rows], "actions": [r.action for r in rows],
            "codes": [r.patient_code for r in rows], "targets": [r.target for r in rows],
            "alloweds": [r.allowed for r in rows], "details": [r.detail for r in rows],
            "tails": [_hashed_tail(r) for r in rows], "genesis": GENESIS})
        return
    # SQLite: the transaction already holds the write lock.
    last = session.execute(_CHAIN_HEAD).scalar()
    for row in rows:
        row.prev_hash = last or GENESIS
        row.hash = last = chain_hash(row)
    # One INSERT of plain values, not the ORM's unit of work for objects no
    # one reads back: its flush was a millisecond of every request's CPU.
    session.execute(_INSERT_AUDIT, [{c: getattr(row, c) for c in _AUDIT_COLUMNS} for row in rows])


@orm_event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back(session: OrmSession, rolled_back) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if not rolled_back.nested:
        session.info.pop(_PENDING, None)
        return

    def inside(savepoint) -> bool:
        while savepoint is not None:
            if savepoint is rolled_back:
                return True
            savepoint = savepoint.parent
        return False

    session.info[_PENDING] = [(sp, row) for sp, row in pending if not inside(sp)]


def chain_hash(event: AuditEvent) -> str:
    """SHA-256 of the JSON list [previous hash, at, actor, action, patient
    code, target, allowed, detail]. Migration 0016's function builds the same
    text on PostgreSQL (the previous hash first, then ", "): a change of
    this format needs a migration that changes it there too."""
    payload = json.dumps([event.prev_hash, *_hashed_fields(event)], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _hashed_fields(event: AuditEvent) -> list:
    return [event.at.astimezone(timezone.utc).isoformat(), event.actor, event.action, event.patient_code,
            event.target, event.allowed, event.detail]


def _hashed_tail(event: AuditEvent) -> str:
    """The JSON `chain_hash` hashes, without the previous hash: PostgreSQL
    puts that in front under the chain lock (migration 0016)."""
    return json.dumps(_hashed_fields(event), ensure_ascii=False)


def verify_chain(session: Session) -> tuple[int, int | None]:
    """(rows checked, id of the first broken row or None)."""
    prev = GENESIS
    count = 0
    for event in session.exec(select(AuditEvent).order_by(AuditEvent.id)):
        count += 1
        if event.prev_hash != prev or chain_hash(event) != event.hash:
            return count, event.id
        prev = event.hash
    return count, None

"""Queries that more than one command needs."""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, func, select

from bot.lookup import FuzzyIndex, normalise
from bot.store.models import CareTeamMember, Member, Patient


def get_or_create_member(session: Session, slack_user_id: str, now: datetime,
                         display_name: str = "") -> Member:
    member = session.exec(select(Member).where(Member.slack_user_id == slack_user_id)).first()
    if member is None:
        member = Member(slack_user_id=slack_user_id, display_name=display_name[:80], created_at=now)
        try:
            with session.begin_nested():
                session.add(member)
        except IntegrityError:  # created by a concurrent request a moment ago
            member = session.exec(select(Member).where(Member.slack_user_id == slack_user_id)).one()
    elif display_name and not member.display_name:
        member.display_name = display_name[:80]
        session.add(member)
    return member


@dataclass(frozen=True)
class PatientKey:
    """What the lookup needs of a patient: plain values, safe to share
    between requests (unlike a Patient row bound to one session)."""

    id: int
    code: str
    name: str
    kana: str


_indexes: "weakref.WeakKeyDictionary[Engine, tuple[tuple, FuzzyIndex[PatientKey]]]" = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def patient_index(session: Session) -> FuzzyIndex[PatientKey]:
    """The lookup index of every patient, built once and reused until a
    patient is added. Normalising all keys costs about twenty searches, so it
    must not happen on every command. Names, readings and codes never change
    after insert and no patient is deleted, so the highest id and the count
    tell whether the cached index is current."""
    engine = session.get_bind()
    version = tuple(session.exec(select(func.max(Patient.id), func.count(Patient.id))).one())
    with _indexes_lock:
        cached = _indexes.get(engine)
    if cached and cached[0] == version:
        return cached[1]
    rows = session.exec(select(Patient.id, Patient.code, Patient.name, Patient.kana).order_by(Patient.id)).all()
    index = FuzzyIndex([PatientKey(*row) for row in rows], keys=lambda p: (p.name, p.kana),
                       code=lambda p: p.code, code_prefix="P")
    with _indexes_lock:
        _indexes[engine] = (version, index)
    return index


def load_patients(session: Session, keys: list[PatientKey]) -> list[Patient]:
    """The current rows for lookup results, in the same order."""
    return [session.get(Patient, key.id) for key in keys]


def active_patients_named(session: Session, name: str, kana: str) -> list[Patient]:
    """Active patients registered under the same name and reading."""
    same = [k for k in patient_index(session).exact(name) if normalise(k.kana) == normalise(kana)]
    return [p for p in load_patients(session, same) if p.status == "active"]


def insert_patient(session: Session, patient: Patient) -> Patient:
    """Insert and give the short stable code (P-0007). The code comes from the
    row id, so two people adding patients at once never collide and a code
    is never reused."""
    patient.code = f"T{uuid.uuid4().hex[:12]}"
    session.add(patient)
    session.flush()
    patient.code = f"P-{patient.id:04d}"
    session.add(patient)
    session.flush()
    return patient


def care_team(session: Session, patient: Patient) -> list[Member]:
    return list(session.exec(
        select(Member).join(CareTeamMember, CareTeamMember.member_id == Member.id)
        .where(CareTeamMember.patient_id == patient.id).order_by(CareTeamMember.id)
    ))


def change_membership(session: Session, link: type[SQLModel], owner_field: str, owner_id: int, verb: str,
                      mentions: list[tuple[str, str]], now: datetime, **extra) -> list[Member]:
    """Add or remove mentioned members on a link table (care team, facility
    staff). Returns the members actually changed; adding someone already
    there, or removing someone absent, changes nothing."""
    changed = []
    for user_id, label in dict.fromkeys(mentions):
        member = get_or_create_member(session, user_id, now, label)
        row = session.exec(select(link).where(getattr(link, owner_field) == owner_id,
                                              link.member_id == member.id)).first()
        if verb == "add" and row is None:
            session.add(link(**{owner_field: owner_id, "member_id": member.id, **extra}))
            changed.append(member)
        elif verb == "remove" and row is not None:
            session.delete(row)
            changed.append(member)
    session.flush()
    return changed


def insert_once(session: Session, row: SQLModel) -> SQLModel | None:
    """Insert `row` unless one with its `request_key` exists (Slack delivered
    the same action again). Returns that earlier row, or None if `row` was
    inserted; a concurrent copy losing the insert race counts as earlier."""
    model = type(row)
    earlier = select(model).where(model.request_key == row.request_key)
    existing = session.exec(earlier).first()
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return session.exec(earlier).one()
    return None

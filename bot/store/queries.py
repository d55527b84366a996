"""Queries that more than one command needs."""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, func, select

from bot.lookup import FuzzyIndex, normalise
from bot.people import Handle
from bot.store.models import CareTeamMember, Identity, Member, Patient


def get_or_create_member(session: Session, handle: Handle, now: datetime) -> Member:
    """The member behind a platform identity, created on first contact.
    Runs on every request, so it is one query: the member comes back with
    just the identity acting now (enough for the actor and admin checks)."""
    query = select(Member, Identity).join(Identity, Identity.member_id == Member.id).where(
        Identity.platform == handle.platform, Identity.external_id == handle.external_id,
    ).options(lazyload(Member.identities))
    found = session.exec(query).first()
    member = _with_identity(*found) if found else None
    if member is None:
        try:
            with session.begin_nested():
                member = Member(display_name=handle.label[:80], created_at=now)
                member.identities.append(Identity(platform=handle.platform, external_id=handle.external_id))
                session.add(member)
        except IntegrityError:  # created by a concurrent request a moment ago
            member = _with_identity(*session.exec(query).one())
    elif handle.label and not member.display_name:
        member.display_name = handle.label[:80]
        session.add(member)
    return member


def _with_identity(member: Member, identity: Identity) -> Member:
    set_committed_value(member, "identities", [identity])
    return member


def members_by_id(session: Session, ids: list[int]) -> list[Member]:
    """Mentioned members, in the order mentioned, each once."""
    found = [session.get(Member, i) for i in dict.fromkeys(ids)]
    return [m for m in found if m is not None]


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
    must not happen on every command. No patient is deleted and a corrected
    name or reading sets `updated_at`, so the highest id, the count and the
    latest correction tell whether the cached index is current."""
    engine = session.get_bind()
    version = tuple(session.exec(select(func.max(Patient.id), func.count(Patient.id),
                                        func.max(Patient.updated_at))).one())
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
                      members: list[Member], **extra) -> list[Member]:
    """Add or remove members on a link table (care team, facility staff).
    Returns the members actually changed; adding someone already there, or
    removing someone absent, changes nothing."""
    changed = []
    for member in members:
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

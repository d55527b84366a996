"""Queries that more than one command needs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from bot.lookup import FuzzyIndex
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


def patient_index(session: Session, include_ended: bool = True) -> FuzzyIndex[Patient]:
    query = select(Patient).order_by(Patient.id)
    if not include_ended:
        query = query.where(Patient.status == "active")
    return FuzzyIndex(
        session.exec(query).all(),
        keys=lambda p: (p.name, p.kana),
        code=lambda p: p.code,
        code_prefix="P",
    )


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

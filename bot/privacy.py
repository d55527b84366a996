"""Who may see or write what, how a patient is shown in shared places, and
the audit trail of every read and write of patient data."""

from __future__ import annotations

import hashlib
import json
from datetime import timezone

from sqlalchemy import text
from sqlmodel import Session, select

from bot.context import Context
from bot.store.models import AuditEvent, CareTeamMember, Patient

GENESIS = "0" * 64


def is_admin(ctx: Context) -> bool:
    return any(f"{i.platform}:{i.external_id}" in ctx.settings.admins for i in ctx.member.identities)


def may_register(ctx: Context) -> bool:
    """Registering patients is a role: care managers and hospital discharge
    staff by default (`[patients]` in renkei.toml), and admins."""
    rules = ctx.settings.team.patients
    return (is_admin(ctx) or ctx.member.profession in rules.register_professions
            or any(f"{i.platform}:{i.external_id}" in rules.registrars for i in ctx.member.identities))


def in_care_team(session: Session, patient: Patient, member_id: int) -> bool:
    row = session.exec(
        select(CareTeamMember.id).where(
            CareTeamMember.patient_id == patient.id, CareTeamMember.member_id == member_id
        )
    ).first()
    return row is not None


def may_access_notes(ctx: Context, patient: Patient) -> bool:
    return is_admin(ctx) or in_care_team(ctx.session, patient, ctx.member.id)


def initials(patient: Patient) -> str:
    """`ヤマダ タロウ` -> `Y.T.`: enough for the team to recognise, not a name."""
    import jaconv

    parts = jaconv.kata2hira(patient.kana).split()
    letters = [jaconv.kana2alphabet(p)[:1].upper() for p in parts if p]
    letters = [c for c in letters if c.isascii() and c.isalpha()]
    return ".".join(letters) + "." if letters else "—"


def audit(ctx: Context, action: str, *, patient: Patient | None = None, allowed: bool = True,
          target: str = "", detail: str = "") -> AuditEvent:
    """Append one audit row in the caller's transaction, chained to the last."""
    session = ctx.session
    if session.get_bind().dialect.name == "postgresql":
        # Serialise chain writers until commit so no two rows share a parent.
        session.exec(text("SELECT pg_advisory_xact_lock(727001)"))
    last = session.exec(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    event = AuditEvent(
        at=ctx.now, actor=ctx.actor, action=action,
        patient_code=patient.code if patient else None, target=target[:1024],
        allowed=allowed, detail=detail[:256], prev_hash=last or GENESIS, hash="",
    )
    event.hash = chain_hash(event)
    session.add(event)
    session.flush()
    return event


def chain_hash(event: AuditEvent) -> str:
    payload = json.dumps(
        [event.prev_hash, event.at.astimezone(timezone.utc).isoformat(), event.actor, event.action, event.patient_code,
         event.target, event.allowed, event.detail],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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

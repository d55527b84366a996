"""Changes to patient records and care teams, each audited. Who may make a
change is decided here; the command module parses and words it."""

from __future__ import annotations

from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.context import Context
from bot.patients.fields import CONSENT, normalise_care
from bot.people import Place
from bot.privacy import audit, in_care_team, initials, is_admin, may_access_notes, may_register
from bot.store.models import CareTeamMember, Member, Patient, PatientEvent
from bot.store.queries import active_patients_named, care_team, change_membership, insert_patient


class NotRegistrar(Exception):
    """Only those whose role is to register patients may; already audited."""


def check_may_register(ctx: Context) -> None:
    if not may_register(ctx):
        audit(ctx, "patient.add", allowed=False, detail="not a registrar")
        raise NotRegistrar()


class NotInTeam(Exception):
    """Only the care team (and admins) may do this; the refusal is audited."""

    def __init__(self, patient: Patient):
        super().__init__(patient.code)
        self.patient = patient


def check_may_manage(ctx: Context, patient: Patient, action: str) -> None:
    if not (is_admin(ctx) or in_care_team(ctx.session, patient, ctx.member.id)):
        audit(ctx, action, patient=patient, allowed=False, detail="not in care team")
        raise NotInTeam(patient)


def create(ctx: Context, *, name: str, kana: str, area: str, care: str,
           consent: str) -> tuple[Patient, list, bool]:
    """Register a patient with the registering member as the first of the
    care team. Returns (patient, active patients with the same name, whether
    this very request had already registered them)."""
    earlier = _registered_by(ctx)
    if earlier is not None:
        return earlier, [], True
    check_may_register(ctx)
    same = active_patients_named(ctx.session, name, kana)
    patient = Patient(code="", name=name.strip(), kana=kana.strip(), area=area.strip(),
                      care_level=normalise_care(care) or "", consent=CONSENT[consent.strip().lower()],
                      created_by_id=ctx.member.id, created_at=ctx.now, channel=None, request_key=ctx.request_key)
    try:
        with ctx.session.begin_nested():
            insert_patient(ctx.session, patient)
    except IntegrityError:  # the same submission, delivered twice at once
        return _registered_by(ctx), [], True
    ctx.session.add(CareTeamMember(patient_id=patient.id, member_id=ctx.member.id, added_at=ctx.now))
    audit(ctx, "patient.add", patient=patient)
    return patient, same, False


def _registered_by(ctx: Context) -> Patient | None:
    if not ctx.request_key:
        return None
    return ctx.session.exec(select(Patient).where(Patient.request_key == ctx.request_key)).first()


def listed(ctx: Context, show_ended: bool) -> list[dict]:
    """My patients (everyone's for admins)."""
    query = select(Patient).order_by(Patient.id)
    if not show_ended:
        query = query.where(Patient.status == "active")
    if not is_admin(ctx):
        query = query.join(CareTeamMember, CareTeamMember.patient_id == Patient.id).where(
            CareTeamMember.member_id == ctx.member.id)
    rows = [{"patient": p, "visible": may_access_notes(ctx, p), "initials": initials(p)}
            for p in ctx.session.exec(query).all()]
    audit(ctx, "patient.list", target="all" if is_admin(ctx) else "mine", detail=f"{len(rows)} rows")
    return rows


class LastMember(Exception):
    """Removing these would leave nobody on the care team: nobody could reach
    the patient's record again."""


def change_team(ctx: Context, patient: Patient, verb: str, members: list[Member]) -> list[Member]:
    check_may_manage(ctx, patient, f"team.{verb}")
    if verb == "remove":
        current = {m.id for m in care_team(ctx.session, patient)}
        if current and current <= {m.id for m in members}:
            raise LastMember(patient.code)
    changed = change_membership(ctx.session, CareTeamMember, "patient_id", patient.id, verb, members,
                                **({"added_at": ctx.now} if verb == "add" else {}))
    audit(ctx, f"team.{verb}", patient=patient, target=",".join(m.qualified_id for m in changed))
    return changed


def end_care(ctx: Context, patient: Patient, outcome: str, ended_on: date) -> None:
    check_may_manage(ctx, patient, "patient.end")
    patient.status, patient.outcome, patient.ended_on = "ended", outcome, ended_on
    ctx.session.add(patient)
    audit(ctx, "patient.end", patient=patient, detail=f"{outcome} {ended_on.isoformat()}")


class NotAllowed(Exception):
    """Only admins may do this (reopen an ended care); already audited."""


def correct(ctx: Context, patient: Patient, changes: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Correct a record's name, reading, area or care level; the old values
    go into the audit trail. Returns {field: (old, new)} of what changed."""
    check_may_manage(ctx, patient, "patient.edit")
    column = {"name": "name", "kana": "kana", "area": "area", "care": "care_level"}
    changed = {}
    for key, new in changes.items():
        old = getattr(patient, column[key])
        if new != old:
            changed[key] = (old, new)
            setattr(patient, column[key], new)
    if changed:
        patient.updated_at = ctx.now
        ctx.session.add(patient)
        audit(ctx, "patient.edit", patient=patient,
              detail="; ".join(f"{k}: {old}→{new}" for k, (old, new) in changed.items()))
    return changed


def admit(ctx: Context, patient: Patient, on: date, hospital: str) -> None:
    check_may_manage(ctx, patient, "patient.admit")
    patient.admitted_on, patient.hospital = on, hospital.strip()[:80]
    ctx.session.add(patient)
    _event(ctx, patient, "admit", on, hospital)


def discharge(ctx: Context, patient: Patient, on: date) -> None:
    check_may_manage(ctx, patient, "patient.discharge")
    hospital = patient.hospital
    patient.admitted_on, patient.hospital = None, ""
    ctx.session.add(patient)
    _event(ctx, patient, "discharge", on, hospital)


def reopen(ctx: Context, patient: Patient, reason: str) -> None:
    """An admin undoes a care end recorded by mistake; the old outcome stays
    in the audit trail and the event history."""
    if not is_admin(ctx):
        audit(ctx, "patient.reopen", patient=patient, allowed=False, detail="not admin")
        raise NotAllowed(patient.code)
    old = f"{patient.outcome} {patient.ended_on.isoformat() if patient.ended_on else ''}".strip()
    patient.status, patient.outcome, patient.ended_on = "active", None, None
    ctx.session.add(patient)
    _event(ctx, patient, "reopen", ctx.today, f"{reason} (was {old})")


def _event(ctx: Context, patient: Patient, kind: str, on: date, detail: str) -> None:
    ctx.session.add(PatientEvent(patient_id=patient.id, kind=kind, on=on, detail=detail[:256],
                                 member_id=ctx.member.id, at=ctx.now))
    audit(ctx, f"patient.{kind}", patient=patient, detail=f"{on.isoformat()} {detail}".strip())


def set_consent(ctx: Context, patient: Patient, value: str) -> None:
    check_may_manage(ctx, patient, "patient.consent")
    patient.consent = value
    ctx.session.add(patient)
    audit(ctx, "patient.consent", patient=patient, detail=value)


def set_channel(ctx: Context, patient: Patient, place: Place | None) -> None:
    check_may_manage(ctx, patient, "patient.channel")
    patient.channel = str(place) if place else None
    ctx.session.add(patient)
    audit(ctx, "patient.channel", patient=patient, detail=patient.channel or "")

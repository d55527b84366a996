"""The demo town (`config/demo/town.yaml`) loaded into an empty database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from sqlmodel import select

from bot.runtime import Runtime
from bot.store.db import session_scope
from bot.store.models import CareTeamMember, Facility, FacilityStaff, Identity, Member, Patient, VacancyFigure
from bot.store.queries import insert_patient


def load_town(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def seed(runtime: Runtime, town: dict) -> bool:
    """Fill an empty database; returns False (and changes nothing) if it has patients."""
    now = runtime.clock()
    with session_scope(runtime.engine) as session:
        if session.exec(select(Patient.id).limit(1)).first() is not None:
            return False
        members = {}
        for m in town["members"]:
            member = Member(display_name=m["name"], profession=m.get("profession", ""),
                            organisation=m.get("organisation", ""), created_at=now)
            member.identities.append(Identity(platform="slack", external_id=m["id"]))
            session.add(member)
            members[m["id"]] = member
        session.flush()
        for f in town.get("facilities", []):
            facility = Facility(name=f["name"], kana=f.get("kana", ""), area=f.get("area", ""),
                                area_kana=f.get("area_kana", ""),
                                kind=f.get("kind", "短期入所生活介護"), capacity=f.get("capacity", 0),
                                phone=f.get("phone", ""), accepts=f.get("accepts", ""), created_at=now)
            session.add(facility)
            session.flush()
            for staff in f.get("staff", []):
                session.add(FacilityStaff(facility_id=facility.id, member_id=members[staff].id))
            _seed_vacancy(session, facility, f.get("vacancy"), now, runtime.settings.tz)
        for p in town["patients"]:
            patient = insert_patient(session, Patient(code="", name=p["name"], kana=p.get("kana", ""), area=p.get("area", ""),
                              care_level=p.get("care", ""), consent=p.get("consent", "unknown"), created_at=now))
            for user_id in p.get("team", []):
                session.add(CareTeamMember(patient_id=patient.id, member_id=members[user_id].id, added_at=now))
    return True


def _seed_vacancy(session, facility: Facility, spec: dict | None, now, tz) -> None:
    """Free beds from today for `days` nights, confirmed `age_hours` ago."""
    if not spec:
        return
    at = now - timedelta(hours=spec.get("age_hours", 1))
    today = now.astimezone(tz).date()
    for i in range(spec.get("days", 7)):
        session.add(VacancyFigure(facility_id=facility.id, night=today + timedelta(days=i), beds=spec["beds"],
                                  sex=spec.get("sex", "どちらでも"), updated_at=at, confirmed_at=at))

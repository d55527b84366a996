"""`renkei import patients FILE.csv`: the city's list of people in care.
Good rows are stored, each bad row is reported by its line number."""

from __future__ import annotations

from pathlib import Path

import jaconv
from sqlmodel import select

from bot.context import Context
from bot.csvfile import ImportResult, read_rows
from bot.lookup import normalise
from bot.patients import fields as patient_fields
from bot.people import Handle
from bot.privacy import audit
from bot.store.models import CareTeamMember, Patient
from bot.store.queries import get_or_create_member, insert_patient

PATIENT_COLUMNS = {
    "氏名": "name", "名前": "name", "ふりがな": "kana", "フリガナ": "kana", "かな": "kana",
    "地区": "area", "地域": "area", "介護度": "care", "要介護度": "care", "care_level": "care",
    "同意": "consent", "チーム": "team", "担当": "team",
}


def import_patients(ctx: Context, path: Path) -> ImportResult:
    rows, encoding = read_rows(path, PATIENT_COLUMNS)
    result = ImportResult(encoding=encoding)
    # Re-importing the city's list must not double anyone.
    known = {(normalise(p.name), normalise(p.kana)): p.code
             for p in ctx.session.exec(select(Patient).where(Patient.status == "active"))}
    for line, row in rows:
        consent = row.get("consent") or "unknown"
        problems = patient_fields.validate_new(row.get("name", ""), row.get("kana", ""), row.get("area", ""),
                                            row.get("care", ""), consent)
        if row.get("__extra__"):
            problems.append(("extra_columns", {}))
        if problems:
            result.problems.append((line, problems))
            continue
        key = (normalise(row["name"]), normalise(row.get("kana", "")))
        if key in known:
            result.already.append((line, known[key]))
            continue
        with ctx.session.begin_nested():
            patient = insert_patient(ctx.session, Patient(
                code="", name=row["name"], kana=jaconv.hira2kata(row.get("kana", "")), area=row.get("area", ""),
                care_level=patient_fields.normalise_care(row.get("care", "")) or "",
                consent=patient_fields.CONSENT[consent.lower()], created_at=ctx.now, created_by_id=ctx.member.id))
            for user_id in dict.fromkeys(row.get("team", "").split()):
                member = get_or_create_member(ctx.session, Handle.parse(user_id), ctx.now)
                ctx.session.add(CareTeamMember(patient_id=patient.id, member_id=member.id, added_at=ctx.now))
            audit(ctx, "patient.import", patient=patient, detail=f"{path.name}:{line}")
        result.stored.append(patient.code)
        known[key] = patient.code
    return result

"""`renkei import facilities FILE.csv`: the municipality's resource list
(UTF-8 or Shift_JIS/CP932). Good rows are stored (a facility already there
by name is updated); each bad row is reported by its line number."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.context import Context
from bot.csvfile import ImportResult, read_rows
from bot.privacy import audit
from bot.store.models import Facility
from bot.vacancy.facility_fields import clean_fields

FACILITY_COLUMNS = {
    "施設名": "name", "事業所名": "name", "名称": "name", "ふりがな": "kana", "フリガナ": "kana", "かな": "kana",
    "地区": "area", "地域": "area", "地区ふりがな": "area_kana", "地区かな": "area_kana", "種別": "type", "サービス種別": "type", "kind": "type",
    "定員": "capacity", "短期入所定員": "capacity", "電話": "phone", "電話番号": "phone", "tel": "phone",
    "受入": "accepts", "医療処置": "accepts", "受入可能な医療処置": "accepts", "連絡先": "contact",
}
KNOWN = ("name", "kana", "area", "area_kana", "type", "capacity", "phone", "accepts", "contact")


def import_facilities(ctx: Context, path: Path) -> ImportResult:
    rows, encoding = read_rows(path, FACILITY_COLUMNS)
    result = ImportResult(encoding=encoding)
    for line, row in rows:
        raw = {k: v for k, v in row.items() if k in KNOWN}
        clean, problems = clean_fields(ctx, raw)
        if not clean.get("name"):
            problems.append(("bad_name", {}))
        if row.get("__extra__"):
            problems.append(("extra_columns", {}))
        if problems:
            result.problems.append((line, list({code: (code, v) for code, v in problems}.values())))
            continue
        with ctx.session.begin_nested():
            facility = ctx.session.exec(select(Facility).where(Facility.name == clean["name"])).first()
            created = facility is None
            facility = facility or Facility(name=clean["name"], created_at=ctx.now)
            for key, value in clean.items():
                setattr(facility, key, value)
            ctx.session.add(facility)
            ctx.session.flush()
            audit(ctx, "facility.import", target=f"facility:{facility.id}",
                  detail=f"{path.name}:{line} {'add' if created else 'update'}")
        result.stored.append(facility.name)
    return result

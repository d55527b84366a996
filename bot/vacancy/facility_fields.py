"""Validating facility fields, shared by `/vacancy facility add|edit` and
`renkei import facilities`."""

from __future__ import annotations

import re
from typing import Any

import jaconv

from bot.context import Context
from bot.lookup import fold
from bot.numbers import row_id, whole_number
from bot.replies import Problem
from bot.store.models import Member
from bot.vacancy.words import KINDS, kind_of, parse_needs

FIELD_ALIASES = {
    "地区": "area", "地域": "area", "地区かな": "area_kana", "地区ふりがな": "area_kana", "種別": "type", "kind": "type", "種類": "type", "定員": "capacity",
    "床数": "capacity", "連絡先": "contact", "担当": "contact", "受入": "accepts", "受け入れ": "accepts",
    "医療処置": "accepts", "かな": "kana", "カナ": "kana", "ふりがな": "kana", "電話": "phone", "tel": "phone",
    "名前": "name", "施設名": "name",
}
FIELDS = ("name", "kana", "area", "area_kana", "type", "capacity", "contact", "accepts", "phone")
_PHONE = re.compile(r"[0-9()+\- ]{0,32}")



def clean_fields(ctx: Context, raw: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """Field values as stored, and the problems as (code, values) the template words."""
    clean: dict[str, Any] = {}
    problems: list[Problem] = []
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        problems.append(("unknown_option", {"options": unknown}))
    if "name" in raw:
        name = raw["name"].strip()
        if not name or len(name) > 80:
            problems.append(("bad_name", {}))
        clean["name"] = name
    if "kana" in raw:
        clean["kana"] = jaconv.hira2kata(fold(raw["kana"]).strip())[:80]
    if "area_kana" in raw:
        clean["area_kana"] = jaconv.hira2kata(fold(raw["area_kana"]).strip())[:60]
    if "area" in raw:
        if len(raw["area"].strip()) > 40:
            problems.append(("area_too_long", {}))
        clean["area"] = raw["area"].strip()
    if "type" in raw:
        kind = kind_of(raw["type"]) if raw["type"].strip() else KINDS[0]
        if kind is None:
            problems.append(("bad_type", {}))
        clean["kind"] = kind
    if "capacity" in raw:
        capacity = whole_number(fold(raw["capacity"]).strip().removesuffix("床"))
        if capacity is None or not 0 <= capacity <= 999:
            problems.append(("bad_capacity", {}))
        else:
            clean["capacity"] = capacity
    if "phone" in raw:
        phone = fold(raw["phone"]).strip()
        if not _PHONE.fullmatch(phone):
            problems.append(("bad_phone", {}))
        clean["phone"] = phone
    if "accepts" in raw:
        needs, bad = parse_needs(raw["accepts"])
        if bad:
            problems.append(("bad_accepts", {"words": bad}))
        clean["accepts"] = ",".join(needs)
    if "contact" in raw:
        # A mention arrives resolved to a member id (see `_raw_fields`).
        typed = str(raw["contact"]).strip()
        member_id = row_id(typed)
        if typed and not (member_id and ctx.session.get(Member, member_id)):
            problems.append(("bad_contact", {}))
        else:
            clean["contact_member_id"] = member_id
    return clean, problems

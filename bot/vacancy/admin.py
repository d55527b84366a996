"""Facilities and their staff: `/vacancy facilities`, `/vacancy facility
add|edit` (admins) and `/vacancy staff <facility> add|remove @member`
(admins and the facility's own staff)."""

from __future__ import annotations

import re
from typing import Any

import jaconv
from sqlalchemy.exc import IntegrityError
from sqlmodel import func, select

from bot.commands import args as argparse
from bot.context import Context
from bot.privacy import audit, is_admin
from bot.replies import Reply
from bot.store.models import Facility, FacilityStaff, Member
from bot.store.queries import change_membership, get_or_create_member
from bot.vacancy.facilities import is_staff, staff_of
from bot.vacancy.words import KINDS, kind_of, needs_list, parse_needs

FIELD_ALIASES = {
    "地区": "area", "地域": "area", "種別": "type", "kind": "type", "種類": "type", "定員": "capacity",
    "床数": "capacity", "連絡先": "contact", "担当": "contact", "受入": "accepts", "受け入れ": "accepts",
    "医療処置": "accepts", "かな": "kana", "カナ": "kana", "ふりがな": "kana", "電話": "phone", "tel": "phone",
    "名前": "name", "施設名": "name",
}
FIELDS = ("name", "kana", "area", "type", "capacity", "contact", "accepts", "phone")
LIST_LIMIT = 40
_PHONE = re.compile(r"[0-9()+\- ]{0,32}")


def all_facilities():
    return select(Facility).order_by(Facility.name)


def _refuse_admin(ctx: Context, action: str, target: str = "") -> Reply:
    audit(ctx, action, allowed=False, target=target, detail="not admin")
    return Reply("vacancy/refused", {"facility": None, "admin": True})


def list_facilities(ctx: Context, text: str) -> Reply:
    query_text = argparse.fold(text).strip()
    facilities = list(ctx.session.exec(all_facilities()))
    if query_text:
        from bot.lookup import normalise

        q = normalise(query_text)
        facilities = [f for f in facilities if q in normalise(f.name + f.kana + f.area + f.kind)]
    staff_counts = dict(ctx.session.exec(
        select(FacilityStaff.facility_id, func.count(FacilityStaff.id)).group_by(FacilityStaff.facility_id)).all())
    rows = [{"f": f, "needs": needs_list(f.accepts), "staff": staff_counts.get(f.id, 0)}
            for f in facilities[:LIST_LIMIT]]
    return Reply("vacancy/facilities", {"rows": rows, "total": len(facilities), "query": query_text,
                                        "admin": is_admin(ctx)})


def clean_fields(ctx: Context, raw: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Field values as stored, and the problems as keys the template words."""
    clean: dict[str, Any] = {}
    problems: list[str] = []
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        problems.append("unknown_option:" + ",".join(unknown))
    if "name" in raw:
        name = raw["name"].strip()
        if not name or len(name) > 80:
            problems.append("bad_name")
        clean["name"] = name
    if "kana" in raw:
        clean["kana"] = jaconv.hira2kata(argparse.fold(raw["kana"]).strip())[:80]
    if "area" in raw:
        if len(raw["area"].strip()) > 40:
            problems.append("area_too_long")
        clean["area"] = raw["area"].strip()
    if "type" in raw:
        kind = kind_of(raw["type"]) if raw["type"].strip() else KINDS[0]
        if kind is None:
            problems.append("bad_type")
        clean["kind"] = kind
    if "capacity" in raw:
        value = argparse.fold(raw["capacity"]).strip().removesuffix("床")
        if not value.isdigit() or not 0 <= int(value) <= 999:
            problems.append("bad_capacity")
        else:
            clean["capacity"] = int(value)
    if "phone" in raw:
        phone = argparse.fold(raw["phone"]).strip()
        if not _PHONE.fullmatch(phone):
            problems.append("bad_phone")
        clean["phone"] = phone
    if "accepts" in raw:
        needs, bad = parse_needs(raw["accepts"])
        if bad:
            problems.append("bad_accepts:" + ",".join(bad))
        clean["accepts"] = ",".join(needs)
    if "contact" in raw:
        user = raw["contact"].strip()
        if user and not re.fullmatch(r"[UW][A-Z0-9]{2,31}", user):
            problems.append("bad_contact")
        elif user:
            clean["contact_member_id"] = get_or_create_member(ctx.session, user, ctx.now).id
        else:
            clean["contact_member_id"] = None
    return clean, problems


def _raw_fields(args: argparse.Args) -> dict[str, str]:
    raw = dict(args.options)
    if "contact" in raw and args.mentions:  # contact=<@U123|sato> arrives as a mention
        raw["contact"] = args.mentions[0][0]
    return raw


def facility(ctx: Context, text: str) -> Reply:
    verb, rest = argparse.first_word(text)
    verb = {"追加": "add", "登録": "add", "new": "add", "編集": "edit", "変更": "edit"}.get(verb, verb)
    if verb not in ("add", "edit"):
        return Reply("vacancy/invalid", {"problem": "facility_usage"})
    if not is_admin(ctx):
        return _refuse_admin(ctx, f"facility.{verb}")
    if verb == "add":
        return add_facility(ctx, rest)
    from bot.commands.vacancy import resolve_facility

    found, after, other = resolve_facility(ctx, rest, "facility edit")
    if other:
        return other
    args = argparse.parse(after, FIELD_ALIASES)
    if not args.options:
        return Reply("vacancy/invalid", {"problem": "facility_usage"})
    return save_facility(ctx, found, _raw_fields(args), created=False)


def add_facility(ctx: Context, text: str) -> Reply:
    args = argparse.parse(text, FIELD_ALIASES)
    raw = _raw_fields(args)
    raw.setdefault("name", " ".join(args.words))
    return save_facility(ctx, Facility(name="", created_at=ctx.now), raw, created=True)


def save_facility(ctx: Context, target: Facility, raw: dict[str, str], created: bool) -> Reply:
    clean, problems = clean_fields(ctx, raw)
    if created and not clean.get("name"):
        problems.append("bad_name")
    if problems:
        return Reply("vacancy/invalid", {"problem": "fields", "problems": list(dict.fromkeys(problems))})
    for key, value in clean.items():
        setattr(target, key, value)
    try:
        with ctx.session.begin_nested():
            ctx.session.add(target)
    except IntegrityError:
        return Reply("vacancy/invalid", {"problem": "duplicate_name", "name": clean.get("name", "")})
    audit(ctx, "facility.add" if created else "facility.edit", target=f"facility:{target.id}",
          detail=",".join(sorted(clean)))
    return Reply("vacancy/facility_saved", {"f": target, "created": created, "needs": needs_list(target.accepts),
                                            "contact": ctx.session.get(Member, target.contact_member_id)
                                            if target.contact_member_id else None})


def staff(ctx: Context, text: str) -> Reply:
    from bot.commands.vacancy import resolve_facility

    found, rest, other = resolve_facility(ctx, text, "staff")
    if other:
        return other
    verb, members_text = argparse.membership_verb(rest)
    args = argparse.parse(members_text)
    if verb in ("", "list"):
        return Reply("vacancy/staff", {"facility": found, "staff": staff_of(ctx.session, found.id), "changed": [],
                                       "verb": ""})
    if verb not in ("add", "remove") or not args.mentions:
        return Reply("vacancy/invalid", {"problem": "staff_usage", "facility": found})
    if not (is_admin(ctx) or is_staff(ctx.session, found.id, ctx.member.id)):
        audit(ctx, f"facility.staff.{verb}", allowed=False, target=f"facility:{found.id}", detail="not staff")
        return Reply("vacancy/refused", {"facility": found})
    changed = change_membership(ctx.session, FacilityStaff, "facility_id", found.id, verb, args.mentions, ctx.now)
    audit(ctx, f"facility.staff.{verb}", target=f"facility:{found.id}",
          detail=",".join(m.slack_user_id for m in changed))
    return Reply("vacancy/staff", {"facility": found, "staff": staff_of(ctx.session, found.id), "changed": changed,
                                   "verb": verb})

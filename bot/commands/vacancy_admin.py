"""Facilities and their staff: `/vacancy facilities`, `/vacancy facility
add|edit` (admins) and `/vacancy staff <facility> add|remove @member`
(admins and the facility's own staff)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import func, select

from bot.commands import args
from bot.commands.common import resolve_facility
from bot.context import Context
from bot.lookup import normalise
from bot.privacy import audit, is_admin
from bot.replies import Reply
from bot.store.models import Facility, FacilityStaff, Member
from bot.store.queries import change_membership, members_by_id
from bot.vacancy.facilities import may_update, staff_of
from bot.vacancy.facility_fields import FIELD_ALIASES, clean_fields
from bot.vacancy.words import needs_list

LIST_LIMIT = 40
# Values that may hold a space (老健 さくら苑): the words after them belong to them.
SPACED_FIELDS = frozenset({"name", "kana", "area"})


def all_facilities():
    return select(Facility).order_by(Facility.name)


def _refuse_admin(ctx: Context, action: str, target: str = "") -> Reply:
    audit(ctx, action, allowed=False, target=target, detail="not admin")
    return Reply("vacancy/refused", {"facility": None, "admin": True})


def list_facilities(ctx: Context, text: str) -> Reply:
    query_text = args.fold(text).strip()
    facilities = list(ctx.session.exec(all_facilities()))
    if query_text:
        q = normalise(query_text)
        facilities = [f for f in facilities if q in normalise(f.name + f.kana + f.area + f.kind)]
    staff_counts = dict(ctx.session.exec(
        select(FacilityStaff.facility_id, func.count(FacilityStaff.id)).group_by(FacilityStaff.facility_id)).all())
    rows = [{"f": f, "needs": needs_list(f.accepts), "staff": staff_counts.get(f.id, 0)}
            for f in facilities[:LIST_LIMIT]]
    return Reply("vacancy/facilities", {"rows": rows, "total": len(facilities), "query": query_text,
                                        "admin": is_admin(ctx)})


def _raw_fields(parsed: args.Args) -> dict[str, str]:
    raw = dict(parsed.options)
    if "contact" in raw and parsed.mentions:  # contact=@伊藤 arrives as a mention
        raw["contact"] = str(parsed.mentions[0])
    return raw


def facility(ctx: Context, text: str) -> Reply:
    verb, rest = args.first_word(text)
    verb = {"追加": "add", "登録": "add", "new": "add", "編集": "edit", "変更": "edit"}.get(verb, verb)
    if verb not in ("add", "edit"):
        return Reply("vacancy/invalid", {"problem": "facility_usage"})
    if not is_admin(ctx):
        return _refuse_admin(ctx, f"facility.{verb}")
    if verb == "add":
        return add_facility(ctx, rest)
    found, after, other = resolve_facility(ctx, rest, "facility edit")
    if other:
        return other
    parsed = args.parse(after, FIELD_ALIASES, spaced=SPACED_FIELDS)
    if not parsed.options:
        return Reply("vacancy/invalid", {"problem": "facility_usage"})
    return save_facility(ctx, found, _raw_fields(parsed), created=False)


def add_facility(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, FIELD_ALIASES, spaced=SPACED_FIELDS)
    raw = _raw_fields(parsed)
    raw.setdefault("name", " ".join(parsed.words))
    return save_facility(ctx, Facility(name="", created_at=ctx.now), raw, created=True)


def save_facility(ctx: Context, target: Facility, raw: dict[str, str], created: bool) -> Reply:
    clean, problems = clean_fields(ctx, raw)
    if created and not clean.get("name"):
        problems.append(("bad_name", {}))
    if problems:
        unique = list({code: (code, values) for code, values in problems}.values())
        return Reply("vacancy/invalid", {"problem": "fields", "problems": unique})
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
    found, rest, other = resolve_facility(ctx, text, "staff")
    if other:
        return other
    verb, members_text = args.membership_verb(rest)
    mentioned = members_by_id(ctx.session, args.parse(members_text).mentions)
    if verb in ("", "list"):
        return Reply("vacancy/staff", {"facility": found, "staff": staff_of(ctx.session, found.id), "changed": [],
                                       "verb": ""})
    if verb not in ("add", "remove") or not mentioned:
        return Reply("vacancy/invalid", {"problem": "staff_usage", "facility": found})
    if not may_update(ctx, found):
        audit(ctx, f"facility.staff.{verb}", allowed=False, target=f"facility:{found.id}", detail="not staff")
        return Reply("vacancy/refused", {"facility": found})
    changed = change_membership(ctx.session, FacilityStaff, "facility_id", found.id, verb, mentioned)
    audit(ctx, f"facility.staff.{verb}", target=f"facility:{found.id}",
          detail=",".join(m.qualified_id for m in changed))
    return Reply("vacancy/staff", {"facility": found, "staff": staff_of(ctx.session, found.id), "changed": changed,
                                   "verb": verb})

"""「空き照会」: a care manager asks a facility for a bed; its staff answer
「受けられます」 or 「難しいです」 and the asker is told. The messages carry
the asker's name and at most a patient code, never a patient's name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import update

from bot.context import Context
from bot.lookup import normalise_code
from bot.numbers import row_id
from bot.privacy import audit
from bot.replies import Action, Message, Post, Reply
from bot.store.models import Facility, Member, VacancyEnquiry
from bot.store.queries import insert_once
from bot.vacancy.facilities import may_update, staff_of

ANSWERS = {"accept": "accepted", "decline": "declined"}
NEED_WIDTH = 16  # a care need's name (喀痰吸引); a longer one is no need the board wrote


@dataclass(frozen=True)
class Asked:
    """What a 空き照会 button asks for (its value, written by board.py)."""

    facility_id: int
    first: date
    last: date
    patient_code: str | None
    conditions: str  # JSON, as stored: what the board was filtered by, for the staff to read


CONDITIONS_WIDTH = VacancyEnquiry.__table__.c.conditions.type.length


def read_ask(value: Any) -> Asked | None:
    """The button's value read, None if it is not one this bot wrote (an
    old or forged button): a facility id, two ISO dates, text for the rest."""
    if not isinstance(value, dict) or not {"f", "a", "b"} <= value.keys():
        return None
    facility_id = row_id(value["f"])
    texts = {k: value.get(k) or "" for k in ("a", "b", "p", "s", "n", "c")}
    if facility_id is None or not all(isinstance(v, str) for v in texts.values()):
        return None
    try:
        first, last = date.fromisoformat(texts["a"]), date.fromisoformat(texts["b"])
    except ValueError:
        return None
    if first > last:
        return None
    conditions = {"dates_given": bool(value.get("x", 1)), "sex": texts["s"][:8],
                  "needs": [n[:NEED_WIDTH] for n in texts["n"].split(",") if n][:10], "care": texts["c"][:16]}
    stored = json.dumps(conditions, ensure_ascii=False)
    while len(stored) > CONDITIONS_WIDTH:  # a summary: what does not fit is left out (JSON escapes may double it)
        conditions["needs"].pop()
        stored = json.dumps(conditions, ensure_ascii=False)
    return Asked(facility_id, first, last, normalise_code(texts["p"], "P"), stored)


def ask(ctx: Context, asked: Asked) -> Reply:
    facility = ctx.session.get(Facility, asked.facility_id)
    if facility is None:
        return Reply("vacancy/invalid", {"problem": "facility_gone"})
    first, last = asked.first, asked.last
    if last < ctx.today:
        return Reply("vacancy/invalid", {"problem": "past_date", "value": last.isoformat(), "today": ctx.today})
    first = max(first, ctx.today)
    code = asked.patient_code
    staff = staff_of(ctx.session, facility.id)
    if not staff:
        return Reply("vacancy/enquiry_sent", {"facility": facility, "staff": [], "first": first, "last": last})
    key = ctx.request_key or f"enquiry:{ctx.member.id}:{facility.id}:{ctx.now.isoformat()}"
    enquiry = VacancyEnquiry(asker_id=ctx.member.id, facility_id=facility.id, first_night=first, last_night=last,
                             patient_code=code, created_at=ctx.now, request_key=key, conditions=asked.conditions)
    if insert_once(ctx.session, enquiry) is not None:  # the same click delivered again
        return Reply("vacancy/enquiry_sent", {"facility": facility, "staff": staff, "first": first, "last": last})
    audit(ctx, "vacancy.enquiry", target=f"facility:{facility.id}", detail=f"enquiry:{enquiry.id} {code or ''}")
    values = enquiry_values(ctx, enquiry, facility)
    posts = [_enquiry_message(values).sent(dm_to=m.id) for m in staff]
    return Reply("vacancy/enquiry_sent", {"facility": facility, "staff": staff, "first": first, "last": last},
                 posts=posts)


def _enquiry_message(values: dict) -> Message:
    """The DM to the facility's staff, with the answer buttons while open."""
    enquiry = values["enquiry"]
    actions = [Action.make("vacancy_answer_accept", enquiry.id, style="primary"),
               Action.make("vacancy_answer_decline", enquiry.id)] if enquiry.status == "open" else []
    return Message("vacancy/enquiry", values, actions)


def enquiry_values(ctx: Context, enquiry: VacancyEnquiry, facility: Facility) -> dict:
    return {"enquiry": enquiry, "facility": facility, "conditions": json.loads(enquiry.conditions or "{}"), "asker": ctx.session.get(Member, enquiry.asker_id),
            "answered_by": ctx.session.get(Member, enquiry.answered_by_id) if enquiry.answered_by_id else None}


def answer(ctx: Context, enquiry_id: int, verdict: str) -> Reply:
    enquiry = ctx.session.get(VacancyEnquiry, enquiry_id)
    if enquiry is None or verdict not in ANSWERS:
        return Reply("vacancy/invalid", {"problem": "enquiry_gone"})
    facility = ctx.session.get(Facility, enquiry.facility_id)
    if not may_update(ctx, facility):
        audit(ctx, "vacancy.answer", allowed=False, target=f"facility:{facility.id}", detail="not facility staff")
        return Reply("vacancy/refused", {"facility": facility})
    # Only the first answer counts, even when two staff tap at the same moment:
    # the update matches only while the enquiry is still open.
    answered = ctx.session.exec(update(VacancyEnquiry).where(
        VacancyEnquiry.id == enquiry.id, VacancyEnquiry.status == "open").values(
        status=ANSWERS[verdict], answered_by_id=ctx.member.id, answered_at=ctx.now)).rowcount
    ctx.session.refresh(enquiry)
    if not answered:  # a colleague answered first
        values = enquiry_values(ctx, enquiry, facility)
        return Reply("vacancy/enquiry_answered", {**values, "already": True}, update=_enquiry_message(values))
    audit(ctx, "vacancy.answer", target=f"facility:{facility.id}", detail=f"enquiry:{enquiry.id} {enquiry.status}")
    values = enquiry_values(ctx, enquiry, facility)
    asker = values["asker"]
    return Reply("vacancy/enquiry_answered", {**values, "already": False},
                 posts=[Post("vacancy/enquiry_answer", values, dm_to=asker.id)], update=_enquiry_message(values))

"""/vacancy: the short-stay vacancy board. Parses what people type and
returns Replies; queries live in `bot.vacancy.*`."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

from bot.commands import args
from bot.commands import vacancy_admin as admin
from bot.commands.common import button_id, only_shows, resolve_facility
from bot.context import Context
from bot.dates import DateError, join_ranges, parse_range
from bot.forms import Option, validate
from bot.lookup import normalise_code
from bot.patients.fields import normalise_care
from bot.privacy import audit, is_admin
from bot.replies import DM, REPLACE, Action, FormView, Reply
from bot.requests import Request, StaleButton
from bot.store.models import Facility
from bot.vacancy import board, enquiry, figures
from bot.vacancy.facilities import area_index, facilities_of, facility_index, may_update
from bot.vacancy.words import ANY_SEX, kind_of, need_of, sex_of

COMMAND = "/vacancy"
SUBMIT = "vacancy_set_submit"
DEFAULT_DAYS = 14  # `/vacancy` with no date: tonight and the next two weeks
ABSURD_BEDS = 100  # the cap when a facility's capacity is not recorded
SUBCOMMANDS = {
    "set": "set", "更新": "set", "登録": "set", "空き": "set",
    "full": "full", "満床": "full",
    "history": "history", "履歴": "history",
    "facilities": "facilities", "施設一覧": "facilities",
    "facility": "facility", "施設": "facility",
    "staff": "staff", "担当": "staff", "職員": "staff",
    "help": "help", "ヘルプ": "help", "使い方": "help",
    "list": "list", "一覧": "list", "ls": "list",
}
_BEDS = re.compile(r"(?:空き)?(-?[0-9]+)(?:床|人|名)?")  # on folded text; the number through args.whole_number


def only_reads(words: list[str]) -> bool:
    return only_shows(words, SUBCOMMANDS, {"list", "history", "facilities", "help"})


def handle(ctx: Context, text: str) -> Reply:
    word, rest = args.first_word(text)
    sub = SUBCOMMANDS.get(word)
    if sub is None:
        return show_board(ctx, text)
    return {
        "set": set_beds, "full": full, "history": show_history, "list": show_board,
        "facilities": admin.list_facilities, "facility": admin.facility, "staff": admin.staff,
        "help": lambda ctx, rest: Reply("vacancy/usage", {}),
    }[sub](ctx, rest)


def invalid(problem: str, **values: Any) -> Reply:
    return Reply("vacancy/invalid", {"problem": problem, **values})


def parse_when(word: str, ctx: Context, writing: bool = False) -> tuple[date, date] | Reply | None:
    """A date or range that is not in the past and not too long, a Reply
    saying what is wrong, or None when `word` is not a date at all.
    `writing`: the reply says nothing was stored (a search stores nothing
    anyway, so it must not say so)."""
    try:
        found = parse_range(word, ctx.today)
    except DateError as e:
        return invalid("bad_date", message=str(e))
    if found is None:
        return None
    first, last = found
    if first < ctx.today:
        return invalid("past_date", value=word, today=ctx.today, writing=writing)
    limit = ctx.settings.team.vacancy.max_range_days
    if (last - first).days + 1 > limit:
        return invalid("range_too_long", value=word, limit=limit, writing=writing)
    return first, last


# --- the board ---------------------------------------------------------------

def show_board(ctx: Context, text: str) -> Reply:
    parsed = args.parse(join_ranges(text), {"地区": "area", "地域": "area"})
    filters = board.Filters(first=ctx.today, last=ctx.today + timedelta(days=DEFAULT_DAYS - 1))
    leftover: list[str] = [parsed.options["area"]] if "area" in parsed.options else []
    for word in parsed.words:
        when = parse_when(word, ctx)
        if isinstance(when, Reply):
            return when
        if when is not None:
            filters.first, filters.last = when
            filters.explicit = True
        elif sex := sex_of(word):
            filters.sex = None if sex == ANY_SEX else sex
        elif kind := kind_of(word):
            filters.kind = kind
        elif need := need_of(word):
            filters.needs.append(need)
        elif code := normalise_code(word, "P"):
            filters.patient_code = code
        elif care := normalise_care(word):
            filters.care_level = care
        else:
            leftover.append(word)
    if leftover:
        wanted = " ".join(leftover)
        # An area only by its name (or part of it): a fuzzy match on 「地区」
        # would show other areas' beds as if they were the one asked for.
        areas = area_index(ctx.session)
        match = areas.search(wanted, fuzzy=False)
        if match.kind != "none":
            filters.areas = match.items
        else:
            named = facility_index(ctx.session).search(wanted, fuzzy=False)
            if named.kind == "none":
                return invalid("unknown_words", words=leftover, suggestions=areas.search(wanted).items)
            filters.facility_ids = [f.id for f in named.items]
            filters.facility_names = [f.name for f in named.items]
    settings = ctx.settings.team.vacancy
    result = board.query(ctx.session, filters, ctx.now, settings.freshness_hours)
    asks = [Action.make("vacancy_ask", json.dumps(r.ask), n=i, name=r.name) for i, r in enumerate(result.rows, 1)]
    return Reply("vacancy/board", {"board": result, "f": filters, "now": ctx.now,
                                   "freshness": int(settings.freshness_hours)}, asks)


# --- updates -----------------------------------------------------------------

def _refuse(ctx: Context, facility: Facility, action: str) -> Reply:
    audit(ctx, action, allowed=False, target=f"facility:{facility.id}", detail="not facility staff")
    return Reply("vacancy/refused", {"facility": facility})


def set_beds(ctx: Context, text: str) -> Reply:
    if not text.strip():
        return open_set_modal(ctx)
    facility, rest, other = resolve_facility(ctx, text, "set")
    if other:
        return other
    beds, first, last, sex = None, ctx.today, ctx.today, ANY_SEX
    for word in args.parse(join_ranges(rest)).words:
        folded = args.fold(word)
        when = parse_when(word, ctx, writing=True)
        if isinstance(when, Reply):
            return when
        if when is not None:
            first, last = when
        elif (m := _BEDS.fullmatch(folded)) and beds is None:
            beds = args.whole_number(m[1])
            if abs(beds) >= args.TOO_BIG:  # refused below in its own words, shown as typed (cut)
                return invalid("bad_beds", facility=facility, beds=m[1][:12] + "…", limit=bed_limit(facility))
        elif folded in ("満床", "なし", "0床"):
            beds = 0
        elif sex_of(word):
            sex = sex_of(word)
        else:
            return invalid("set_usage", facility=facility, word=word)
    if beds is None:
        return invalid("set_usage", facility=facility, word="")
    return update(ctx, facility, beds, first, last, sex)


def full(ctx: Context, text: str) -> Reply:
    facility, rest, other = resolve_facility(ctx, text, "full")
    if other:
        return other
    first, last = ctx.today, ctx.today
    for word in args.parse(join_ranges(rest)).words:
        when = parse_when(word, ctx, writing=True)
        if isinstance(when, Reply):
            return when
        if when is None:
            return invalid("full_usage", facility=facility, word=word)
        first, last = when
    return update(ctx, facility, 0, first, last, ANY_SEX)


def bed_limit(facility: Facility) -> int:
    return facility.capacity if facility.capacity > 0 else ABSURD_BEDS


def update(ctx: Context, facility: Facility, beds: int, first: date, last: date, sex: str) -> Reply:
    if beds < 0 or beds > bed_limit(facility):
        return invalid("bad_beds", facility=facility, beds=beds, limit=bed_limit(facility))
    if not may_update(ctx, facility):
        return _refuse(ctx, facility, "vacancy.set")
    changed = figures.set_figures(ctx.session, facility, first, last, beds, sex, ctx.member, ctx.now)
    audit(ctx, "vacancy.set", target=f"facility:{facility.id}",
          detail=f"{first.isoformat()}..{last.isoformat()} beds={beds} sex={sex}")
    return Reply("vacancy/updated", {"facility": facility, "beds": beds, "first": first, "last": last, "sex": sex,
                                     "changed": changed, "nights": (last - first).days + 1})


def show_history(ctx: Context, text: str) -> Reply:
    facility, _rest, other = resolve_facility(ctx, text, "history")
    if other:
        return other
    return Reply("vacancy/history", {"facility": facility, "rows": figures.history(ctx.session, facility.id)})


# --- the modal ---------------------------------------------------------------

def open_set_modal(ctx: Context, facility_id: int | None = None) -> Reply:
    """`/vacancy set` alone, or 「更新する」: staff of one facility get it preselected."""
    own = facilities_of(ctx.session, ctx.member.id)
    choices = own
    if is_admin(ctx) and (facility_id is not None or not own):
        choices = list(ctx.session.exec(admin.all_facilities().limit(100)))
    if facility_id is not None:
        chosen = ctx.session.get(Facility, facility_id)
        if chosen is None:
            return invalid("facility_gone")
        if not may_update(ctx, chosen):
            return _refuse(ctx, chosen, "vacancy.set")
        if chosen not in choices:
            choices = [chosen, *choices]
    elif not choices:
        return invalid("not_staff_anywhere")
    selected = facility_id if facility_id is not None else (choices[0].id if len(choices) == 1 else None)
    form = ctx.forms.builtin["vacancy_set"].with_options(
        "facility", [Option(str(f.id), f.name[:75]) for f in choices])
    initial = {"first": ctx.today.isoformat(), "sex": "どちらでも"}
    if selected is not None:
        initial["facility"] = str(selected)
    return Reply(form=FormView(form, SUBMIT, meta={"place": str(ctx.place) if ctx.place else None},
                               initial=initial))


def set_from_form(ctx: Context, request: Request) -> Reply:
    """The form's fields, checked as every form is, then against the
    facility; errors go back on the field."""
    values = request.values
    facility_id = args.row_id(values.get("facility"))
    facility = ctx.session.get(Facility, facility_id) if facility_id else None
    if facility is None:
        return Reply(field_errors={"facility": ("required", {"label": "施設"})})
    # The facility list was filled in when the form opened; check the rest
    # against the form with this one facility as its option.
    form = ctx.forms.builtin["vacancy_set"].with_options("facility", [Option(str(facility.id), facility.name)])
    clean, errors = validate(form, {**values, "beds": args.fold(values.get("beds") or "").strip()})
    if errors:
        return Reply(field_errors=errors)
    if not _BEDS.fullmatch(clean["beds"]):
        return Reply(field_errors={"beds": ("not_a_number", {"label": "空床数"})})
    beds = args.whole_number(_BEDS.fullmatch(clean["beds"])[1])
    if beds < 0 or beds > bed_limit(facility):
        return Reply(field_errors={"beds": ("out_of_range", {"label": "空床数", "min": 0, "max": bed_limit(facility)})})
    limit = ctx.settings.team.vacancy.max_range_days
    first = date.fromisoformat(clean["first"]) if clean.get("first") else ctx.today
    last = date.fromisoformat(clean["last"]) if clean.get("last") else first
    latest = ctx.today + timedelta(days=365)
    if first < ctx.today or first > latest:
        return Reply(field_errors={"first": ("out_of_range", {"label": "開始日", "min": ctx.today, "max": latest})})
    if last < first or (last - first).days + 1 > limit:
        return Reply(field_errors={"last": ("out_of_range", {
            "label": "終了日", "min": first, "max": first + timedelta(days=limit - 1)})})
    if not may_update(ctx, facility):
        refusal = _refuse(ctx, facility, "vacancy.set")
        return Reply(field_errors={"facility": ("refused", {"reason": "not_facility_staff", **refusal.values})})
    reply = update(ctx, facility, beds, first, last, clean.get("sex") or ANY_SEX)
    reply.answer = DM
    return reply


def confirm_figures(ctx: Context, request: Request) -> Reply:
    """「変わりなし」 on the morning prompt: the figures are vouched for again,
    and the prompt is replaced by the confirmation."""
    facility = ctx.session.get(Facility, button_id(request))
    if facility is None:
        return invalid("facility_gone")
    if not may_update(ctx, facility):
        return _refuse(ctx, facility, "vacancy.confirm")
    count = figures.confirm(ctx.session, facility, ctx.today, ctx.now)
    audit(ctx, "vacancy.confirm", target=f"facility:{facility.id}", detail=f"{count} nights")
    return Reply("vacancy/confirmed", {"facility": facility, "count": count, "now": ctx.now,
                                       "spans": figures.upcoming(ctx.session, facility.id, ctx.today, days=7)},
                 answer=REPLACE)


def open_update(ctx: Context, request: Request) -> Reply:
    """「更新する」 on the morning prompt."""
    return open_set_modal(ctx, button_id(request))


def ask(ctx: Context, request: Request) -> Reply:
    try:
        asked = enquiry.read_ask(json.loads(request.text))
    except ValueError:
        asked = None
    if asked is None:
        raise StaleButton(request.text)
    return enquiry.ask(ctx, asked)


def answer(verdict: str):
    def press(ctx: Context, request: Request) -> Reply:
        return enquiry.answer(ctx, button_id(request), verdict)

    return press


ACTIONS = {
    "vacancy_confirm": confirm_figures, "vacancy_update": open_update, "vacancy_ask": ask,
    "vacancy_answer_accept": answer("accept"), "vacancy_answer_decline": answer("decline"),
}
SUBMISSIONS = {SUBMIT: set_from_form}

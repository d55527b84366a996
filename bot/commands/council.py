"""/council: council and team meetings. Parses what people type and press,
and words the answers; the rules live in `bot.council`."""

from __future__ import annotations

import json
from typing import Any

from bot.commands import args
from bot.commands.common import choice_actions, only_shows
from bot.context import Context
from bot.council import groups, ical, meetings, messages
from bot.council.meetings import NotOrganiser
from bot.council.times import TimeError, combine, is_date, parse_time_range, read_when, remind_setting
from bot.dates import DateError, parse_date
from bot.forms import validate
from bot.people import Place
from bot.plan import tasks as plan_tasks
from bot.plan.periods import bounds, fiscal_year
from bot.privacy import audit
from bot.replies import DM, Action, FormView, Message, Reply
from bot.requests import Request, StaleButton
from bot.store.models import AgendaItem, Meeting, MeetingMinutes
from bot.store.queries import members_by_id

COMMAND = "/council"
MINUTES = "council_minutes_submit"
ADD = "council_add_submit"
SUBCOMMANDS = {
    "add": "add", "追加": "add", "登録": "add", "new": "add",
    "list": "list", "一覧": "list", "ls": "list",
    "show": "show", "表示": "show", "詳細": "show",
    "edit": "edit", "変更": "edit", "編集": "edit",
    "cancel": "cancel", "中止": "cancel", "取消": "cancel",
    "group": "group", "グループ": "group",
    "agenda": "agenda", "議題": "agenda",
    "minutes": "minutes", "議事録": "minutes",
    "ical": "ical", "カレンダー": "ical", "calendar": "ical",
    "decide": "decide", "決定": "decide",
    "help": "help", "ヘルプ": "help", "使い方": "help",
}
UNINVITE = {"uninvite", "外す", "招待取消", "招待を外す", "remove"}
ALIASES = {"場所": "place", "会場": "place", "種別": "kind", "種類": "kind", "招待": "invite", "チャンネル": "channel",
           "リマインド": "remind", "件名": "title", "題名": "title"}
SPACED = frozenset({"place", "title"})


def only_reads(words: list[str]) -> bool:
    return only_shows(words, SUBCOMMANDS, {"list", "show", "ical", "help"})


def handle(ctx: Context, text: str) -> Reply:
    word, rest = args.first_word(text)
    if not word:
        return list_meetings(ctx)
    sub = SUBCOMMANDS.get(word)
    if sub is None:
        return show(ctx, text)  # `/council 第3回` means show
    handler = {"add": add, "list": lambda ctx, rest: list_meetings(ctx), "show": show, "edit": edit,
               "cancel": cancel, "group": group, "agenda": agenda, "minutes": open_minutes, "ical": calendar,
               "decide": decide,
               "help": lambda ctx, rest: Reply("council/usage")}[sub]
    try:
        return handler(ctx, rest)
    except NotOrganiser:
        return Reply("council/invalid", {"problem": "not_organiser"})


def invalid(problem: str, **values: Any) -> Reply:
    return Reply("council/invalid", {"problem": problem, **values})


# --- add -----------------------------------------------------------------------

def add(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, ALIASES, spaced=SPACED)
    if not parsed.words and not parsed.options and not parsed.mentions:
        return Reply(form=FormView(ctx.forms.builtin["council_add"], ADD,
                                   meta={"place": str(ctx.place) if ctx.place else None}))
    return create(ctx, parsed)


def create(ctx: Context, parsed: args.Args) -> Reply:
    try:
        when, rest = read_when(parsed.words, ctx.today, ctx.settings.tz)
        remind = remind_setting(parsed.options["remind"]) if "remind" in parsed.options else "7d,1d,2h"
    except (DateError, TimeError) as e:
        return invalid("bad_when", message=str(e))
    if when is None:
        return invalid("no_when")
    if when.starts_at <= ctx.now:
        return invalid("past", starts_at=when.starts_at)
    title = (parsed.options.get("title") or " ".join(rest)).strip()
    if not title:
        return invalid("no_title")
    kind = parsed.options.get("kind") or next((k for k in meetings.KINDS if k in title), "その他")
    if kind not in meetings.KINDS:
        return invalid("bad_kind", kind=kind, kinds=meetings.KINDS)
    invitees = members_by_id(ctx.session, parsed.mentions)
    group_name = parsed.options.get("invite", "").strip()
    if group_name:
        found = groups.by_name(ctx.session, group_name)
        if found is None:
            return invalid("unknown_group", name=group_name, groups=[g.name for g, _ in groups.all_groups(ctx.session)])
        invitees += groups.members(ctx.session, found)
    place = parsed.channels[0] if parsed.channels else ctx.place
    meeting, duplicate = meetings.create(
        ctx, title=title[:200], kind=kind, starts_at=when.starts_at, ends_at=when.ends_at,
        place=parsed.options.get("place", "")[:200], url=parsed.options.get("url", "")[:500],
        channel=str(place) if place else None, remind=remind, invitees=invitees)
    posts = [] if duplicate else [p for p in [messages.announce(ctx.session, meeting)] if p]
    return Reply("council/added", {"m": meeting, "duplicate": duplicate,
                                   "invited": len(meetings.invites(ctx.session, meeting))}, posts=posts)


FIELD_OF = {"bad_when": "start", "no_when": "day", "past": "day", "no_title": "title", "bad_kind": "kind",
            "unknown_group": "invite"}


def add_from_form(ctx: Context, request: Request) -> Reply:
    """The form: the same checks as typed, each problem on its field."""
    clean, errors = validate(ctx.forms.builtin["council_add"], request.values)
    if errors:
        return Reply(field_errors=errors)
    local_day = clean["day"].replace("-", "/")
    hours = clean["start"] + (f"-{clean['end']}" if clean.get("end") else "")
    options = {"kind": clean["kind"], "place": clean.get("place", ""), "url": clean.get("url", ""),
               "invite": clean.get("invite", ""), "title": clean["title"]}
    reply = create(ctx, args.Args(words=[local_day, hours], options={k: v for k, v in options.items() if v}))
    if reply.template == "council/invalid":
        problem = reply.values["problem"]
        return Reply(field_errors={FIELD_OF.get(problem, "title"): ("council", reply.values)})
    reply.answer = DM
    return reply


# --- list and show -------------------------------------------------------------

def list_meetings(ctx: Context) -> Reply:
    shown = meetings.upcoming(ctx.session, ctx.now)
    tallies = meetings.counts_of(ctx.session, [m.id for m in shown])
    rows = [(m, tallies[m.id]) for m in shown]
    return Reply("council/list", {"rows": rows})


def _target(ctx: Context, text: str, sub: str) -> tuple[Meeting | None, str, Reply | None]:
    if not text.strip():
        return None, "", invalid("no_meeting", sub=sub)
    match, rest = meetings.find(ctx, text)
    if match.kind == "one":
        return match.item, rest, None
    choices = [{"label": _label(ctx, m), "text": " ".join(x for x in (sub, f"#{m.id}", rest) if x)}
               for m in match.items]
    if match.kind == "many":
        return None, "", Reply("council/choose", {"query": match.query, "choices": choices},
                               choice_actions(COMMAND, choices))
    return None, "", invalid("not_found", query=match.query, choices=choices)


def _label(ctx: Context, meeting: Meeting) -> str:
    local = meeting.starts_at.astimezone(ctx.settings.tz)
    return f"{local.month}/{local.day} {meeting.title}"[:75]


def _by_id(ctx: Context, text: str, sub: str) -> tuple[Meeting | None, str, Reply | None]:
    """`#12 …` (from a choice button) or a forgiving search."""
    word, rest = args.first_word(text)
    if (meeting_id := args.hash_id(word)) is not None:
        meeting = ctx.session.get(Meeting, meeting_id) if meeting_id else None
        return (meeting, rest, None) if meeting else (None, "", invalid("not_found", query=word, choices=[]))
    return _target(ctx, text, sub)


def show(ctx: Context, text: str) -> Reply:
    meeting, _rest, other = _by_id(ctx, text, "show")
    if other:
        return other
    minutes = meetings.minutes(ctx.session, meeting)
    decisions = json.loads(minutes.decisions_json) if minutes else []
    created = plan_tasks.from_meeting(ctx.session, meeting.id)
    made = {t.title for t in created}
    # Beside each decision not yet a task: one press makes it a plan task.
    decide_buttons = [Action.make("council_decide", f"{meeting.id}:{i}", n=i + 1)
                      for i, d in enumerate(decisions) if d not in made][:10]
    return Reply("council/show", messages.values(
        ctx.session, meeting, invites=meetings.invites(ctx.session, meeting),
        agenda=meetings.agenda(ctx.session, meeting), minutes=minutes, decisions=decisions, tasks=created),
        [*messages.rsvp_actions(meeting), *decide_buttons])


def decide(ctx: Context, text: str) -> Reply:
    """`/council decide 第3回 連携シートを改訂する F owner=@佐藤 due=9/30`: a
    decision becomes a plan task that remembers the meeting."""
    meeting, rest, other = _by_id(ctx, text, "decide")
    if other:
        return other
    parsed = args.parse(rest, {"担当": "owner", "期限": "due"})
    words = list(parsed.words)
    category = "H"
    for word in list(words):
        if len(args.fold(word)) == 1 and args.fold(word).upper() in "ABCDEFGH":
            category = args.fold(word).upper()
            words.remove(word)
            break
    title = " ".join(words).strip()
    if not title:
        return invalid("decide_usage", m=meeting)
    return _make_task(ctx, meeting, title, category, members_by_id(ctx.session, parsed.mentions),
                      parsed.options.get("due"))


def _make_task(ctx: Context, meeting: Meeting, title: str, category: str, owners: list, due_text: str | None) -> Reply:
    year = fiscal_year(ctx.today)
    due = None
    if due_text:
        try:
            due = parse_date(due_text, ctx.today)
        except DateError as e:
            return invalid("bad_when", message=str(e))
        first, last = bounds(year)
        if due is None or not first <= due <= last:
            return invalid("bad_when", message=f"期限「{due_text}」は{year}年度の外です。")
    task, duplicate = plan_tasks.add(ctx, year=year, category=category, title=title[:200], due=due, every=None,
                                     owners=owners, source="decision", meeting_id=meeting.id)
    return Reply("council/decided", {"m": meeting, "t": task, "duplicate": duplicate})


def press_decide(ctx: Context, request: Request) -> Reply:
    """The button beside a decision in `/council show`."""
    meeting_id, _, index_text = request.text.partition(":")
    meeting = _pressed_meeting(ctx, meeting_id)
    minutes = meetings.minutes(ctx.session, meeting) if meeting else None
    decisions = json.loads(minutes.decisions_json) if minutes else []
    index = args.whole_number(index_text) if index_text.isascii() else None
    if index is None or not 0 <= index < len(decisions):
        raise StaleButton(request.text)
    decision = decisions[index]
    if any(t.title == decision for t in plan_tasks.from_meeting(ctx.session, meeting.id)):
        return invalid("already_task", decision=decision)
    return _make_task(ctx, meeting, decision, "H", [], None)


# --- answers -------------------------------------------------------------------

def calendar(ctx: Context, text: str) -> Reply:
    """The member's own calendar feed: a secret URL to subscribe to, or,
    without a public address, the meetings as an .ics file by DM."""
    word, _ = args.first_word(text)
    reset = word in ("reset", "リセット", "再発行")
    token = ical.token_for(ctx.session, ctx.member.id, ctx.now, reset=reset)
    if reset:
        audit(ctx, "calendar.reset", target=f"member:{ctx.member.id}")
    base = ctx.settings.public_url.rstrip("/")
    if base:
        return Reply("council/ical", {"url": f"{base}/calendar/{token}.ics", "reset": reset})
    content = ical.feed(ical.member_meetings(ctx.session, ctx.member.id, ctx.now), ctx.now, ctx.settings.timezone)
    post = Message("council/ical_file").sent(dm_to=ctx.member.id, attachment=("renkei.ics", content))
    return Reply("council/ical", {"url": "", "reset": reset}, posts=[post])


def _pressed_meeting(ctx: Context, meeting_id: str) -> Meeting | None:
    """The meeting a button's value names (None: no such meeting, or no id)."""
    found = args.row_id(meeting_id)
    return ctx.session.get(Meeting, found) if found else None


def rsvp(ctx: Context, request: Request) -> Reply:
    meeting_id, _, choice = request.text.partition(":")
    meeting = _pressed_meeting(ctx, meeting_id)
    if meeting is None or choice not in meetings.ANSWERS:
        raise StaleButton(request.text)
    problem, changed = meetings.answer(ctx, meeting, choice)
    if problem:
        return invalid(problem, m=meeting)
    current = messages.announcement_when_sent(meeting)
    return Reply("council/answered", {"m": meeting, "choice": choice, "changed": changed}, update=current,
                 posts=messages.redraw(meeting, current) if changed else [])


# --- changes -------------------------------------------------------------------

def edit(ctx: Context, text: str) -> Reply:
    meeting, rest, other = _by_id(ctx, text, "edit")
    if other:
        return other
    parsed = args.parse(rest, ALIASES, spaced=SPACED)
    uninvite = [w for w in parsed.words if args.fold(w).lower() in UNINVITE]
    parsed.words = [w for w in parsed.words if w not in uninvite]
    new: dict[str, Any] = {}
    try:
        if parsed.words:
            base = meeting.starts_at.astimezone(ctx.settings.tz)
            when, leftover = read_when(parsed.words, base.date(), ctx.settings.tz)
            if when is None:  # only a time, or only a date: keep the other part
                when, leftover = _partial_when(ctx, meeting, parsed.words)
            if when is not None:
                if when.starts_at <= ctx.now:
                    return invalid("past", starts_at=when.starts_at)
                # A new start without an end keeps the meeting's length.
                ends_at = when.ends_at or (meeting.ends_at + (when.starts_at - meeting.starts_at)
                                           if meeting.ends_at else None)
                new.update(starts_at=when.starts_at, ends_at=ends_at)
        if "remind" in parsed.options:
            new["remind"] = remind_setting(parsed.options["remind"])
    except (DateError, TimeError) as e:
        return invalid("bad_when", message=str(e))
    for key in ("place", "url", "title"):
        if key in parsed.options:
            new[key] = parsed.options[key][:200 if key != "url" else 500]
    if parsed.mentions:
        meetings.set_invitees(ctx, meeting, members_by_id(ctx.session, parsed.mentions), remove=bool(uninvite))
    if not new and not parsed.mentions:
        return invalid("edit_usage", m=meeting)
    change = meetings.change(ctx, meeting, **new)
    current = messages.announcement(ctx.session, meeting)
    posts = []
    if change.moved:  # one message each to those whose answer was reset
        changed = messages.notice(current, "council/changed", change=change.fields)
        posts = [changed.sent(dm_to=m.id) for m in change.told]
    posts += messages.redraw(meeting, current)
    return Reply("council/edited", {"m": meeting, "change": change.fields, "moved": change.moved,
                                    "told": change.told}, posts=posts)


def _partial_when(ctx: Context, meeting: Meeting, words: list[str]):
    """`edit 第3回 19:00` keeps the day, `edit 第3回 12/16` keeps the time."""
    local = meeting.starts_at.astimezone(ctx.settings.tz)
    for word in words:
        if (clock := parse_time_range(word)) is not None:
            return combine(local.date(), clock[0], clock[1], ctx.settings.tz), [w for w in words if w != word]
        if is_date(word, ctx.today):
            when, rest = read_when([word, local.strftime("%H:%M")], ctx.today, ctx.settings.tz)
            return when, [w for w in words if w != word]
    return None, words


def cancel(ctx: Context, text: str) -> Reply:
    meeting, _rest, other = _by_id(ctx, text, "cancel")
    if other:
        return other
    if meeting.status == "cancelled":
        return invalid("cancelled", m=meeting)
    coming = meetings.cancel(ctx, meeting)
    current = messages.announcement(ctx.session, meeting)
    cancelled = messages.notice(current, "council/cancelled")
    posts = [cancelled.sent(dm_to=m.id) for m in coming if m.id != ctx.member.id]
    if meeting.channel:
        posts.append(cancelled.sent(place=Place.parse(meeting.channel)))
    posts += messages.redraw(meeting, current)
    return Reply("council/cancel_done", {"m": meeting, "told": len(coming)}, posts=posts)


# --- groups, agenda, minutes ---------------------------------------------------

def group(ctx: Context, text: str) -> Reply:
    verb, rest = args.membership_verb(text)
    if verb in ("", "list"):
        return Reply("council/groups", {"groups": groups.all_groups(ctx.session)})
    parsed = args.parse(rest)
    name = " ".join(parsed.words).strip()
    people = members_by_id(ctx.session, parsed.mentions)
    if verb not in ("add", "remove") or not name or not people:
        return invalid("group_usage")
    if verb == "add":
        found, changed = groups.add(ctx.session, name, people, ctx.now)
    else:
        found = groups.by_name(ctx.session, name)
        if found is None:
            return invalid("unknown_group", name=name, groups=[g.name for g, _ in groups.all_groups(ctx.session)])
        changed = groups.remove(ctx.session, found, people)
    return Reply("council/group_changed", {"group": found, "verb": verb, "changed": changed,
                                           "members": groups.members(ctx.session, found)})


def agenda(ctx: Context, text: str) -> Reply:
    meeting, rest, other = _by_id(ctx, text, "agenda")
    if other:
        return other
    verb, item = args.first_word(rest)
    item = args.typed_text(item)
    if verb not in ("add", "追加") or not item:
        return Reply("council/agenda", {"m": meeting, "items": meetings.agenda(ctx.session, meeting)})
    invited = {m.id for m, _ in meetings.invites(ctx.session, meeting)}
    if ctx.member.id not in invited:
        return invalid("not_invited", m=meeting)
    ctx.session.add(AgendaItem(meeting_id=meeting.id, text=item[:500], member_id=ctx.member.id, at=ctx.now))
    ctx.session.flush()
    return Reply("council/agenda", {"m": meeting, "items": meetings.agenda(ctx.session, meeting), "added": item})


def open_minutes(ctx: Context, text: str) -> Reply:
    meeting, _rest, other = _by_id(ctx, text, "minutes")
    if other:
        return other
    meetings.check_may_change(ctx, meeting, "meeting.minutes")
    earlier = meetings.minutes(ctx.session, meeting)
    initial = {"minutes": earlier.text, "decisions": "\n".join(json.loads(earlier.decisions_json))} if earlier else {}
    return Reply(form=FormView(ctx.forms.builtin["council_minutes"], MINUTES, meta={"meeting": meeting.id},
                               initial=initial))


def submit_minutes(ctx: Context, request: Request) -> Reply:
    meeting_id = args.row_id(request.meta.get("meeting"))
    meeting = ctx.session.get(Meeting, meeting_id) if meeting_id else None
    if meeting is None:
        return Reply(field_errors={"minutes": ("form_gone", {})})
    try:
        meetings.check_may_change(ctx, meeting, "meeting.minutes")
    except NotOrganiser:
        return Reply(field_errors={"minutes": ("refused", {"reason": "not_organiser", "code": ""})})
    clean, errors = validate(ctx.forms.builtin["council_minutes"], request.values)
    if errors:
        return Reply(field_errors=errors)
    decisions = [line.strip(" ・-") for line in str(clean.get("decisions") or "").splitlines() if line.strip(" ・-")]
    row = meetings.minutes(ctx.session, meeting) or MeetingMinutes(meeting_id=meeting.id, text="",
                                                                  decisions_json="[]", member_id=ctx.member.id)
    row.text, row.decisions_json = clean["minutes"], json.dumps(decisions, ensure_ascii=False)
    row.member_id, row.at = ctx.member.id, ctx.now
    ctx.session.add(row)
    return Reply("council/minutes_saved", {"m": meeting, "decisions": decisions}, answer=DM)


ACTIONS = {"council_rsvp": rsvp, "council_decide": press_decide}
SUBMISSIONS = {MINUTES: submit_minutes, ADD: add_from_form}

"""Meetings: creating, finding, changing and cancelling them, and who is
invited. Returns domain data; `bot.commands.council` words it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from bot.context import Context
from bot.lookup import FuzzyIndex, Match
from bot.privacy import audit, is_admin
from bot.store.models import AgendaItem, Meeting, MeetingInvite, MeetingMinutes, Member
from bot.store.queries import member_ids_by, members_by_id
from bot.store.versions import PerDatabase

KINDS = ("協議会", "部会", "地域ケア会議", "研修", "その他")
ANSWERS = ("出席", "欠席", "オンライン", "未定")
COMING = ("出席", "オンライン")


class NotOrganiser(Exception):
    """Only the organiser and admins may change or cancel; already audited."""


@dataclass
class Change:
    """What an edit changed, for the people who had answered."""

    fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    moved: bool = False  # date, time or place: answers reset, reminders re-planned
    told: list[Member] = field(default_factory=list)


def create(ctx: Context, *, title: str, kind: str, starts_at: datetime, ends_at: datetime | None, place: str,
           url: str, channel: str | None, remind: str, invitees: list[Member]) -> tuple[Meeting, bool]:
    """(meeting, True if this very request had already created it)."""
    if ctx.request_key:
        earlier = ctx.session.exec(select(Meeting).where(Meeting.request_key == ctx.request_key)).first()
        if earlier is not None:
            return earlier, True
    meeting = Meeting(title=title, kind=kind, starts_at=starts_at, ends_at=ends_at, place=place, url=url,
                      channel=channel, organiser_id=ctx.member.id, remind=remind, created_at=ctx.now,
                      updated_at=ctx.now, request_key=ctx.request_key)
    try:
        with ctx.session.begin_nested():
            ctx.session.add(meeting)
            ctx.session.flush()
    except IntegrityError:  # the same request, delivered twice at once
        return ctx.session.exec(select(Meeting).where(Meeting.request_key == ctx.request_key)).one(), True
    for member in {m.id: m for m in [ctx.member, *invitees]}.values():
        ctx.session.add(MeetingInvite(meeting_id=meeting.id, member_id=member.id))
    audit(ctx, "meeting.add", target=f"meeting:{meeting.id}", detail=title[:200])
    return meeting, False


@dataclass(frozen=True)
class MeetingKey:
    """What the lookup needs of a meeting: plain values, safe to share
    between requests (unlike a row bound to one session)."""

    id: int
    title: str
    kind: str
    day: str  # 12/15


def _build_index(session: Session, tz: ZoneInfo) -> FuzzyIndex[MeetingKey]:
    keys = []
    for meeting_id, title, kind, starts_at in session.exec(
            select(Meeting.id, Meeting.title, Meeting.kind, Meeting.starts_at).order_by(Meeting.starts_at)):
        local = starts_at.astimezone(tz)
        keys.append(MeetingKey(meeting_id, title, kind, f"{local.month}/{local.day}"))
    return FuzzyIndex(keys, keys=lambda k: (k.title, k.kind, k.day, k.day.replace("/", "月") + "日"))


_indexes = PerDatabase(Meeting, _build_index)


def index(session: Session, tz: ZoneInfo) -> FuzzyIndex[MeetingKey]:
    """Meetings findable by title, kind or date (`第3回`, `協議会`, `12/15`),
    soonest first. Built once and reused until a meeting is added or
    changed: normalising 2,000 titles on every request would cost more than
    the request itself."""
    return _indexes.get(session, tz)


def find(ctx: Context, text: str) -> tuple[Match[Meeting], str]:
    match, rest = index(ctx.session, ctx.settings.tz).search_leading(text)
    rows = [ctx.session.get(Meeting, key.id) for key in match.items]
    return Match(match.kind, match.query, [r for r in rows if r is not None]), rest


# Built once: `/council` and every answer's redraw run them (see store.queries).
_UPCOMING = select(Meeting).where(Meeting.starts_at >= bindparam("now"), Meeting.status == "scheduled").order_by(
    Meeting.starts_at).limit(bindparam("limit"))
_COUNTS = select(MeetingInvite.meeting_id, MeetingInvite.answer, func.count(MeetingInvite.id)).where(
    MeetingInvite.meeting_id.in_(bindparam("meetings", expanding=True))).group_by(
    MeetingInvite.meeting_id, MeetingInvite.answer)
# An answer in one statement, changed only where it differs: a second tap
# of the same button changes no row, and only then is the invitation read.
_INVITES = MeetingInvite.__table__
_INVITED = select(_INVITES.c.id).where(_INVITES.c.meeting_id == bindparam("meeting"),
                                       _INVITES.c.member_id == bindparam("member"))
_ANSWER = update(_INVITES).where(
    _INVITES.c.meeting_id == bindparam("meeting"), _INVITES.c.member_id == bindparam("member"),
    _INVITES.c.answer.is_distinct_from(bindparam("choice")),
).values(answer=bindparam("chosen"), answered_at=bindparam("at")).returning(_INVITES.c.id)


def upcoming(session: Session, now: datetime, limit: int = 10) -> list[Meeting]:
    return list(session.exec(_UPCOMING, params={"now": now, "limit": limit}))


def invites(session: Session, meeting: Meeting) -> list[tuple[Member, MeetingInvite]]:
    return list(session.exec(select(Member, MeetingInvite).join(MeetingInvite, MeetingInvite.member_id == Member.id)
                             .where(MeetingInvite.meeting_id == meeting.id).order_by(MeetingInvite.id)))


def not_answered(session: Session, meeting_ids: list[int]) -> dict[int, list[int]]:
    """The ids of each meeting's invitees who have not answered, in the
    order invited: every minute's tick asks it of the meetings whose
    reminder is due."""
    return member_ids_by(session, MeetingInvite, "meeting_id", meeting_ids, MeetingInvite.answer.is_(None))


def counts(session: Session, meeting: Meeting) -> dict[str, int]:
    return counts_of(session, [meeting.id])[meeting.id]


def counts_of(session: Session, meeting_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each meeting's answers counted by the database (one query for a
    whole list, not every invitation loaded as rows)."""
    tallies = {i: {answer: 0 for answer in (*ANSWERS, "未回答")} for i in meeting_ids}
    for meeting_id, answer, count in session.exec(_COUNTS, params={"meetings": meeting_ids}) if meeting_ids else ():
        tallies[meeting_id][answer or "未回答"] += count
    return tallies


def answer(ctx: Context, meeting: Meeting, choice: str) -> tuple[str, bool]:
    """Record this member's answer; ("", changed) or (problem, False)."""
    if meeting.status == "cancelled":
        return "cancelled", False
    if meeting.starts_at <= ctx.now:
        return "started", False
    who = {"meeting": meeting.id, "member": ctx.member.id}
    # Plain SQL on the session's connection: no invitation is held as an object in a press's transaction.
    connection = ctx.session.connection()
    if connection.execute(_ANSWER, {**who, "choice": choice, "chosen": choice, "at": ctx.now}).first():
        audit(ctx, "meeting.answer", target=f"meeting:{meeting.id}", detail=choice)
        return "", True
    if connection.execute(_INVITED, who).first() is None:
        return "not_invited", False
    return "", False  # a second tap of the same button


def check_may_change(ctx: Context, meeting: Meeting, action: str) -> None:
    if meeting.organiser_id != ctx.member.id and not is_admin(ctx):
        audit(ctx, action, allowed=False, target=f"meeting:{meeting.id}", detail="not the organiser")
        raise NotOrganiser()


def change(ctx: Context, meeting: Meeting, **new) -> Change:
    """Apply an edit. A change of date, time or place resets every answer
    (the old ones were for another meeting) and raises the sequence."""
    check_may_change(ctx, meeting, "meeting.edit")
    result = Change()
    for key, value in new.items():
        old = getattr(meeting, key)
        if value is not None and value != old:
            result.fields[key] = (old, value)
            setattr(meeting, key, value)
    result.moved = bool({"starts_at", "ends_at", "place"} & set(result.fields))
    if result.moved:
        meeting.sequence += 1
        for member, invite in invites(ctx.session, meeting):
            if invite.answer is not None:
                result.told.append(member)
                invite.answer, invite.answered_at = None, None
                ctx.session.add(invite)
    if result.fields:
        meeting.updated_at = ctx.now
        ctx.session.add(meeting)
        audit(ctx, "meeting.edit", target=f"meeting:{meeting.id}", detail=",".join(sorted(result.fields)))
    return result


def cancel(ctx: Context, meeting: Meeting) -> list[Member]:
    """Cancel; returns who had said they would come (they are told)."""
    check_may_change(ctx, meeting, "meeting.cancel")
    meeting.status, meeting.cancelled_at, meeting.updated_at = "cancelled", ctx.now, ctx.now
    meeting.sequence += 1
    ctx.session.add(meeting)
    audit(ctx, "meeting.cancel", target=f"meeting:{meeting.id}")
    return [member for member, invite in invites(ctx.session, meeting) if invite.answer in COMING]


def set_invitees(ctx: Context, meeting: Meeting, members: list[Member], remove: bool = False) -> None:
    """Invite more people, or (`remove`) take invitations back."""
    check_may_change(ctx, meeting, "meeting.edit")
    have = {member.id: invite for member, invite in invites(ctx.session, meeting)}
    for member in members:
        if remove and member.id in have and member.id != meeting.organiser_id:
            ctx.session.delete(have[member.id])
        elif not remove and member.id not in have:
            ctx.session.add(MeetingInvite(meeting_id=meeting.id, member_id=member.id))
    audit(ctx, "meeting.invitees", target=f"meeting:{meeting.id}",
          detail=("-" if remove else "+") + ",".join(m.qualified_id for m in members))


def agenda(session: Session, meeting: Meeting) -> list[AgendaItem]:
    return list(session.exec(select(AgendaItem).where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.id)))


def minutes(session: Session, meeting: Meeting) -> MeetingMinutes | None:
    return session.exec(select(MeetingMinutes).where(MeetingMinutes.meeting_id == meeting.id)).first()


def organiser(session: Session, meeting: Meeting) -> Member:
    return members_by_id(session, [meeting.organiser_id])[0]

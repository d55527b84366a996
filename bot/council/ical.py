"""Calendar feeds of council meetings (iCalendar, RFC 5545) with the
`icalendar` package: one stable UID per meeting, SEQUENCE raised on every
change of date, time or place, a VTIMEZONE for the team's zone, and a
cancelled meeting kept for 30 days as CANCELLED with 【中止】 in its title
(some calendar apps drop cancelled events from a feed, so the title says it
too). A member's feed is served at a secret URL (`/calendar/<token>.ics`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlalchemy import or_
from sqlmodel import Session, select

from bot.store.models import CalendarToken, Meeting, MeetingInvite

KEEP_CANCELLED = timedelta(days=30)
HISTORY = timedelta(days=365)
DEFAULT_LENGTH = timedelta(hours=1)


def feed(meetings: list[Meeting], now: datetime, tz_name: str, product: str = "-//Renkei//council//JA") -> bytes:
    tz = ZoneInfo(tz_name)
    cal = Calendar()
    cal.add("prodid", product)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "Renkei 会議")
    cal.add("x-wr-timezone", tz_name)
    for meeting in meetings:
        cancelled = meeting.status == "cancelled"
        if cancelled and meeting.cancelled_at and now - meeting.cancelled_at > KEEP_CANCELLED:
            continue
        event = Event()
        event.add("uid", f"meeting-{meeting.id}@renkei")
        event.add("sequence", meeting.sequence)
        event.add("dtstamp", now)
        event.add("dtstart", meeting.starts_at.astimezone(tz))
        event.add("dtend", (meeting.ends_at or meeting.starts_at + DEFAULT_LENGTH).astimezone(tz))
        event.add("summary", ("【中止】" if cancelled else "") + meeting.title)
        if meeting.place:
            event.add("location", meeting.place)
        if meeting.url:
            event.add("url", meeting.url)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("last-modified", meeting.updated_at)
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def member_meetings(session: Session, member_id: int, now: datetime) -> list[Meeting]:
    """Meetings the member is invited to or organises, from a year ago on."""
    invited = select(MeetingInvite.meeting_id).where(MeetingInvite.member_id == member_id)
    return list(session.exec(select(Meeting).where(
        or_(Meeting.id.in_(invited), Meeting.organiser_id == member_id), Meeting.starts_at >= now - HISTORY)
        .order_by(Meeting.starts_at)))


def all_meetings(session: Session, now: datetime) -> list[Meeting]:
    return list(session.exec(select(Meeting).where(Meeting.starts_at >= now - HISTORY).order_by(Meeting.starts_at)))


def token_for(session: Session, member_id: int, now: datetime, reset: bool = False) -> str:
    """The secret of the member's feed URL; `reset` issues a new one and the
    old URL stops working."""
    row = session.exec(select(CalendarToken).where(CalendarToken.member_id == member_id)).first()
    if row is None:
        row = CalendarToken(member_id=member_id, token=secrets.token_urlsafe(24), created_at=now)
    elif reset:
        row.token, row.created_at = secrets.token_urlsafe(24), now
    session.add(row)
    session.flush()
    return row.token


def member_for_token(session: Session, token: str) -> int | None:
    if not token or len(token) > 64:
        return None
    row = session.exec(select(CalendarToken).where(CalendarToken.token == token)).first()
    return row.member_id if row else None

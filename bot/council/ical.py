"""Calendar feeds of council meetings (iCalendar, RFC 5545) with the
`icalendar` package: one stable UID per meeting, SEQUENCE raised on every
change of date, time or place, a VTIMEZONE for the team's zone, and a
cancelled meeting kept for 30 days as CANCELLED with 【中止】 in its title
(some calendar apps drop cancelled events from a feed, so the title says it
too). A member's feed is served at a secret URL (`/calendar/<token>.ics`)."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone
from sqlalchemy import or_
from sqlmodel import Session, select

from bot.store.models import CalendarToken, Meeting, MeetingInvite

KEEP_CANCELLED = timedelta(days=30)
HISTORY = timedelta(days=365)
DEFAULT_LENGTH = timedelta(hours=1)


def feed(meetings: list[Meeting], now: datetime, tz_name: str, product: str = "-//Renkei//council//JA") -> bytes:
    """The calendar. Each event is serialised by icalendar once per version
    of its meeting and kept, so a feed after one change re-renders one event
    (serialising 200 events costs about 40 ms on this machine)."""
    events = [_event(*version) for version in _versions(meetings, now, tz_name)]
    head = _calendar_head(tz_name, product)
    end = b"END:VCALENDAR\r\n"
    return head[: -len(end)] + b"".join(events) + end


def _versions(meetings: list[Meeting], now: datetime, tz_name: str) -> list[tuple]:
    """Everything an event is made of, for each meeting still in the feed (a
    cancelled one goes 30 days after its cancellation). Plain values: the
    same tuple always serialises to the same bytes, so it keys both caches."""
    return [(m.id, m.sequence, m.status, m.title, m.place, m.url, m.starts_at, m.ends_at, m.updated_at, tz_name)
            for m in meetings
            if not (m.status == "cancelled" and m.cancelled_at and now - m.cancelled_at > KEEP_CANCELLED)]


@lru_cache(maxsize=8)
def _calendar_head(tz_name: str, product: str) -> bytes:
    """An empty calendar with its properties and VTIMEZONE, serialised once."""
    cal = Calendar()
    cal.add("prodid", product)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "Renkei 会議")
    cal.add("x-wr-timezone", tz_name)
    cal.add_component(_vtimezone(tz_name))
    return cal.to_ical()


@lru_cache(maxsize=20000)
def _event(meeting_id: int, sequence: int, status: str, title: str, place: str, url: str, starts_at: datetime,
           ends_at: datetime | None, updated_at: datetime, tz_name: str) -> bytes:
    tz = ZoneInfo(tz_name)
    cancelled = status == "cancelled"
    event = Event()
    event.add("uid", f"meeting-{meeting_id}@renkei")
    event.add("sequence", sequence)
    # When this version of the event was made: stable between fetches, so an
    # unchanged feed is byte-for-byte the same (and cacheable).
    event.add("dtstamp", updated_at)
    event.add("dtstart", starts_at.astimezone(tz))
    event.add("dtend", (ends_at or starts_at + DEFAULT_LENGTH).astimezone(tz))
    event.add("summary", ("【中止】" if cancelled else "") + title)
    if place:
        event.add("location", place)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("last-modified", updated_at)
    return event.to_ical()


@lru_cache(maxsize=4)
def _vtimezone(tz_name: str) -> Timezone:
    """The zone's VTIMEZONE, worked out once: deriving it from the tz
    database costs more than the rest of a 200-meeting feed."""
    return Timezone.from_tzid(tz_name)


def member_feed(session: Session, member_id: int, now: datetime, tz_name: str) -> bytes:
    """The member's feed, rendered once per version of their meetings:
    calendar apps poll every few minutes, and rendering 200 events costs
    about 40 ms on this machine."""
    meetings = member_meetings(session, member_id, now)
    # The whole content of the feed, not just ids and sequences: a title
    # corrected within the same second, or a cancelled meeting passing its
    # 30 days in the middle of a day, must not be served from the cache.
    version = tuple(_versions(meetings, now, tz_name))
    with _cache_lock:
        cached = _feeds.get(member_id)
    if cached and cached[0] == version:
        return cached[1]
    body = feed(meetings, now, tz_name)
    with _cache_lock:
        _feeds[member_id] = (version, body)
        while len(_feeds) > 500:  # a bounded cache: the oldest members' feeds go first
            _feeds.pop(next(iter(_feeds)))
    return body


_feeds: dict[int, tuple[tuple, bytes]] = {}
_cache_lock = threading.Lock()


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

"""Named groups of members (推進協議会委員, 部会メンバー) to invite at once.
A meeting copies a group's members when it is created, so a later change
to the group does not change who was invited."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.lookup import normalise
from bot.store import queries
from bot.store.models import MeetingGroup, MeetingGroupMember, Member
from bot.store.queries import change_membership

NAME_WIDTH = 80  # meetinggroup.name


def _as_stored(name: str) -> str:
    return name.strip()[:NAME_WIDTH]


def by_name(session: Session, name: str) -> MeetingGroup | None:
    """The group of this name as it would be stored (a longer one is cut
    to NAME_WIDTH), the same once folded, or the very same name when
    folding leaves nothing of it (`・・`)."""
    stored = _as_stored(name)
    key = normalise(stored)
    return next((g for g in session.exec(select(MeetingGroup))
                 if g.name == stored or (key and normalise(g.name) == key)), None) if stored else None


def members(session: Session, group: MeetingGroup) -> list[Member]:
    return queries.linked_members(session, MeetingGroupMember, "group_id", group.id)


def add(session: Session, name: str, people: list[Member], now: datetime) -> tuple[MeetingGroup, list[Member]]:
    group = by_name(session, name)
    if group is None:
        group = MeetingGroup(name=_as_stored(name), created_at=now)
        session.add(group)
        session.flush()
    return group, change_membership(session, MeetingGroupMember, "group_id", group.id, "add", people)


def remove(session: Session, group: MeetingGroup, people: list[Member]) -> list[Member]:
    return change_membership(session, MeetingGroupMember, "group_id", group.id, "remove", people)


def all_groups(session: Session) -> list[tuple[MeetingGroup, int]]:
    return [(g, len(members(session, g))) for g in session.exec(select(MeetingGroup).order_by(MeetingGroup.name))]

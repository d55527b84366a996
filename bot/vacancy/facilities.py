"""Finding facilities and areas by what people type, and who is staff."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.context import Context
from bot.lookup import FuzzyIndex
from bot.privacy import is_admin
from bot.store.models import Facility, FacilityStaff, Member
from bot.store.queries import linked_members


def facility_index(session: Session) -> FuzzyIndex[Facility]:
    return FuzzyIndex(session.exec(select(Facility).order_by(Facility.id)).all(),
                      keys=lambda f: (f.name, f.kana))


def area_index(session: Session) -> FuzzyIndex[str]:
    """The areas facilities are in (a few dozen at most), for `鶴岡 東` and,
    where a reading is recorded, `ひがしちく`."""
    readings: dict[str, set[str]] = {}
    for area, kana in session.exec(select(Facility.area, Facility.area_kana).where(Facility.area != "").distinct()):
        readings.setdefault(area, set()).add(kana)
    return FuzzyIndex(sorted(readings), keys=lambda a: (a, *readings[a]))


def is_staff(session: Session, facility_id: int, member_id: int) -> bool:
    return session.exec(select(FacilityStaff.id).where(
        FacilityStaff.facility_id == facility_id, FacilityStaff.member_id == member_id)).first() is not None


def may_update(ctx: Context, facility: Facility) -> bool:
    return is_admin(ctx) or is_staff(ctx.session, facility.id, ctx.member.id)


def staff_of(session: Session, facility_id: int) -> list[Member]:
    return linked_members(session, FacilityStaff, "facility_id", facility_id)


def facilities_of(session: Session, member_id: int) -> list[Facility]:
    return list(session.exec(
        select(Facility).join(FacilityStaff, FacilityStaff.facility_id == Facility.id)
        .where(FacilityStaff.member_id == member_id).order_by(Facility.name)))


"""Tables. One class per table; relationships are queried explicitly in
`store/queries.py` so every read of patient data goes through code we audit."""


from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from bot.store.types import UTCDateTime


def _ts(nullable: bool = False, index: bool = False):
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


# Wide enough for any platform's ids (Teams: `29:1a…`, `19:…@thread.tacv2`).
ID_LENGTH = 300


class Member(SQLModel, table=True):
    """A person, whatever platform they use; their platform ids are Identities."""

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(default="", max_length=80)
    profession: str = Field(default="", max_length=40)
    organisation: str = Field(default="", max_length=80)
    created_at: datetime = _ts()
    # Loaded with the member, so a front end can address or mention them
    # after the request's session has closed.
    identities: list["Identity"] = Relationship(back_populates="member", sa_relationship_kwargs={"lazy": "selectin"})

    def handle(self, platform: str) -> str | None:
        """This member's id on `platform`, if they have one."""
        return next((i.external_id for i in self.identities if i.platform == platform), None)

    @property
    def qualified_id(self) -> str:
        """`slack:U0123` (the first identity), for audit rows and logs."""
        first = min(self.identities, key=lambda i: i.id or 0, default=None)
        return f"{first.platform}:{first.external_id}" if first else f"member:{self.id}"


class Identity(SQLModel, table=True):
    """One platform account of a member (migration 0003)."""

    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=ID_LENGTH)
    member_id: int = Field(foreign_key="member.id", index=True)
    member: Optional[Member] = Relationship(back_populates="identities")


class Patient(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=16)
    name: str = Field(max_length=60)
    kana: str = Field(default="", max_length=60)
    area: str = Field(default="", max_length=40)
    care_level: str = Field(default="", max_length=16)
    # "yes" | "no" | "unknown": withdrawal ("no") stops new notes.
    consent: str = Field(default="unknown", max_length=8)
    # Where notes are announced: a Place as "platform:channel".
    channel: str | None = Field(default=None, max_length=ID_LENGTH)
    status: str = Field(default="active", max_length=8)
    outcome: str | None = Field(default=None, max_length=16)
    ended_on: date | None = Field(default=None, index=True)
    # A hospital stay is not the end of care: set by admit, cleared by discharge.
    admitted_on: date | None = None
    hospital: str = Field(default="", max_length=80)
    # The form submission that registered the patient: a retried or doubled
    # submission registers nobody twice.
    request_key: str | None = Field(default=None, unique=True, max_length=128)
    # Set by `/patient edit`: a corrected name or reading must reach the
    # lookup index every process keeps.
    updated_at: datetime | None = _ts(nullable=True)
    created_by_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _ts()


class PatientEvent(SQLModel, table=True):
    """Admissions, discharges and reopened care: who recorded what, and when
    it happened (migration 0004)."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    # admit | discharge | reopen
    kind: str = Field(max_length=16)
    on: date
    detail: str = Field(default="", max_length=256)
    member_id: int = Field(foreign_key="member.id")
    at: datetime = _ts()


class CareTeamMember(SQLModel, table=True):
    # A member's patients are read from the index alone (migration 0014).
    __table_args__ = (UniqueConstraint("patient_id", "member_id"),
                      Index("ix_careteammember_member_patient", "member_id", "patient_id"))
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    added_at: datetime = _ts()


class Note(SQLModel, table=True):
    # For the plan's indicators (migration 0009): a year's notes with their
    # authors read from one index; per member, any note in a period.
    __table_args__ = (Index("ix_note_created_author", "created_at", "author_id", "id"),
                      Index("ix_note_author_created", "author_id", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    form_id: str = Field(max_length=32)
    urgency: str | None = Field(default=None, max_length=16)
    # Field values as JSON, keyed by the form's field ids.
    body_json: str = Field(sa_column=Column(Text, nullable=False))
    author_id: int = Field(foreign_key="member.id")
    created_at: datetime = _ts(index=True)
    # Slack may deliver the same submission twice; the key makes the second a no-op.
    request_key: str = Field(unique=True, max_length=128)
    # Where the note's announcement went ("platform:channel") and the
    # platform's id of that message, so acks can redraw its count.
    channel: str | None = Field(default=None, max_length=ID_LENGTH)
    message_id: str | None = Field(default=None, max_length=ID_LENGTH)
    # Set when the note was corrected (訂正); the earlier text is a NoteRevision.
    corrected_at: datetime | None = _ts(nullable=True)


class NoteRevision(SQLModel, table=True):
    """A note as it read before a correction: records are corrected, never
    overwritten (the authenticity rule of the medical information guideline)."""

    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="note.id", index=True)
    body_json: str = Field(sa_column=Column(Text, nullable=False))
    urgency: str | None = Field(default=None, max_length=16)
    corrected_by_id: int = Field(foreign_key="member.id")
    corrected_at: datetime = _ts()
    reason: str = Field(max_length=500)


class NoteAck(SQLModel, table=True):
    # The indexes: a note's acknowledgements with their times, and per
    # member, any acknowledgement in a period (migration 0009).
    __table_args__ = (UniqueConstraint("note_id", "member_id"),
                      Index("ix_noteack_note_acked", "note_id", "acked_at", "member_id"),
                      Index("ix_noteack_member_acked", "member_id", "acked_at"))
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="note.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    acked_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    """Append-only (database triggers refuse UPDATE and DELETE) and chained:
    each row's hash covers the previous row's hash, so an edited or removed
    row shows up in `renkei audit verify`."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    # Platform-qualified (`slack:U0123`) from migration 0003 on; older rows
    # hold the bare Slack id they were hashed with.
    actor: str = Field(max_length=ID_LENGTH + 20)
    action: str = Field(max_length=32)
    patient_code: str | None = Field(default=None, max_length=16, index=True)
    target: str = Field(default="", max_length=1024)
    allowed: bool
    detail: str = Field(default="", max_length=256)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Facility(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    kana: str = Field(default="", max_length=80)
    area: str = Field(default="", max_length=40, index=True)
    # The area's reading, so `/vacancy ひがしちく` finds 東地区.
    area_kana: str = Field(default="", max_length=60)
    # 短期入所生活介護 | 短期入所療養介護
    kind: str = Field(default="短期入所生活介護", max_length=16)
    capacity: int = 0
    phone: str = Field(default="", max_length=32)
    contact_member_id: int | None = Field(default=None, foreign_key="member.id")
    # Comma-separated care needs the facility accepts (経管栄養,喀痰吸引,...).
    accepts: str = Field(default="", max_length=256)
    created_at: datetime = _ts()


class FacilityStaff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("facility_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    facility_id: int = Field(foreign_key="facility.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)


# --- short-stay vacancy board and timed deliveries (migration 0002) ---


class VacancyFigure(SQLModel, table=True):
    """Free short-stay beds of one facility for one night. One row per
    (facility, night): an update overwrites it (the later one wins) and the
    change is kept in VacancyHistory. `confirmed_at` is when someone last
    vouched for the figure (an update or 「変わりなし」); its age decides
    whether the board may show it as free."""

    __table_args__ = (
        UniqueConstraint("facility_id", "night"),
        # Covering index for the board: range on night, the rest read from the index.
        Index("ix_vacancyfigure_board", "night", "facility_id", "beds", "sex", "confirmed_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    facility_id: int = Field(foreign_key="facility.id")
    night: date
    beds: int
    # 男 | 女 | どちらでも
    sex: str = Field(default="どちらでも", max_length=8)
    updated_at: datetime = _ts()
    updated_by_id: int | None = Field(default=None, foreign_key="member.id")
    confirmed_at: datetime = _ts()


class VacancyHistory(SQLModel, table=True):
    __table_args__ = (Index("ix_vacancyhistory_facility_at", "facility_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    facility_id: int = Field(foreign_key="facility.id")
    night: date
    old_beds: int | None = None
    new_beds: int
    old_sex: str | None = Field(default=None, max_length=8)
    new_sex: str = Field(max_length=8)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    at: datetime = _ts()


class Delivery(SQLModel, table=True):
    """One timed message. The unique (kind, subject, slot) row is inserted
    before sending: whoever inserts it (or reclaims a failed one) sends."""

    __table_args__ = (UniqueConstraint("kind", "subject", "slot"), Index("ix_delivery_status", "status"),
                      # A slot's rows counted from the index alone (plan.jobs: every tick, each week looked back on).
                      Index("ix_delivery_kind_slot", "kind", "slot", "status", "attempts"))
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=255)
    slot: str = Field(max_length=32)
    # pending (claimed, being sent) | sent | failed (retried later) | skipped
    status: str = Field(default="pending", max_length=8)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = _ts()
    claimed_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)


class VacancyEnquiry(SQLModel, table=True):
    """「空き照会」: a care manager asks a facility for a bed. Carries the
    patient code only, never a name."""

    id: int | None = Field(default=None, primary_key=True)
    asker_id: int = Field(foreign_key="member.id", index=True)
    facility_id: int = Field(foreign_key="facility.id", index=True)
    first_night: date
    last_night: date
    patient_code: str | None = Field(default=None, max_length=16)
    # What the asker searched for, shown to the facility: dates given or not,
    # sex, care needs, care level (never a name). JSON.
    conditions: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"}, max_length=512)
    # open | accepted | declined
    status: str = Field(default="open", max_length=8)
    answered_by_id: int | None = Field(default=None, foreign_key="member.id")
    answered_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    # The same click delivered twice makes one enquiry.
    request_key: str = Field(unique=True, max_length=128)


# --- /council: meetings, invitations, groups, agenda, minutes, feeds (migration 0005) ---


class Meeting(SQLModel, table=True):
    """A council, working-group, 地域ケア会議 or training meeting. Times are
    instants (UTC); `sequence` rises on every change of date, time or place,
    as iCalendar wants."""

    __table_args__ = (Index("ix_meeting_starts_at", "starts_at"),)
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    # 協議会 | 部会 | 地域ケア会議 | 研修 | その他
    kind: str = Field(default="協議会", max_length=16)
    starts_at: datetime = _ts()
    ends_at: datetime | None = _ts(nullable=True)
    place: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=500)
    channel: str | None = Field(default=None, max_length=ID_LENGTH)
    organiser_id: int = Field(foreign_key="member.id")
    # scheduled | cancelled
    status: str = Field(default="scheduled", max_length=12)
    sequence: int = 0
    # Reminder offsets before the start, e.g. "7d,1d,2h".
    remind: str = Field(default="7d,1d,2h", max_length=64)
    # The announcement in the channel, redrawn when answers change.
    message_id: str | None = Field(default=None, max_length=ID_LENGTH)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    cancelled_at: datetime | None = _ts(nullable=True)
    request_key: str | None = Field(default=None, unique=True, max_length=128)


class MeetingInvite(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    # None (no answer yet) | 出席 | 欠席 | オンライン | 未定
    answer: str | None = Field(default=None, max_length=8)
    answered_at: datetime | None = _ts(nullable=True)


class MeetingGroup(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    created_at: datetime = _ts()


class MeetingGroupMember(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("group_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="meetinggroup.id", index=True)
    member_id: int = Field(foreign_key="member.id")


class AgendaItem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    text: str = Field(max_length=500)
    member_id: int = Field(foreign_key="member.id")
    at: datetime = _ts()


class MeetingMinutes(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # One decision per line, as JSON list.
    decisions_json: str = Field(sa_column=Column(Text, nullable=False))
    member_id: int = Field(foreign_key="member.id")
    at: datetime = _ts()


class CalendarToken(SQLModel, table=True):
    """The secret in a member's calendar feed URL; reset revokes it."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", unique=True)
    token: str = Field(unique=True, max_length=64)
    created_at: datetime = _ts()


# --- /plan: the annual business plan and its completion log (migration 0006) ---


class PlanTask(SQLModel, table=True):
    """One task of a fiscal year's plan (年度: April to March), under one of
    the handbook's items A–H."""

    __table_args__ = (Index("ix_plantask_year", "fiscal_year"),)
    id: int | None = Field(default=None, primary_key=True)
    fiscal_year: int
    category: str = Field(max_length=1)  # A..H
    title: str = Field(max_length=200)
    due: date | None = None
    # None (once) | month | quarter: a recurring task logs one completion per period
    every: str | None = Field(default=None, max_length=8)
    # imported | added | rollover | decision
    source: str = Field(default="added", max_length=12)
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    created_by_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _ts()
    request_key: str | None = Field(default=None, unique=True, max_length=128)
    # Set by /plan edit: a renamed task must be found by its new title.
    updated_at: datetime | None = _ts(nullable=True)


class PlanTaskOwner(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("task_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="plantask.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)


class TeamSetting(SQLModel, table=True):
    """A setting the team changes from chat (the plan channel), by key."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    value: str = Field(max_length=ID_LENGTH)


class PlanMute(SQLModel, table=True):
    """`/plan mute`: this member gets no overdue-task DM."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", unique=True)


class PlanCompletion(SQLModel, table=True):
    """Done, once per period: "2026" for a one-off task of FY2026, "2026-11"
    for a monthly one, "2026Q3" for a quarterly one."""

    # The index: this period's completions for the overview (migration 0009).
    __table_args__ = (UniqueConstraint("task_id", "period"), Index("ix_plancompletion_period", "period", "task_id"))
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="plantask.id", index=True)
    period: str = Field(max_length=8)
    member_id: int = Field(foreign_key="member.id")
    at: datetime = _ts(index=True)
    comment: str = Field(default="", max_length=500)


class PlanIndicator(SQLModel, table=True):
    """An indicator the council agreed on and records by hand each period
    (handbook item H: structure, process, outcome), beside the ones Renkei
    computes from its own records."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    unit: str = Field(default="", max_length=20)
    target: float | None = None
    # The target is a floor ("at least"), or a ceiling when fewer is better.
    lower_is_better: bool = False
    kind: str = Field(default="過程", max_length=4)  # 構造 | 過程 | 結果
    created_by_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _ts()


class PlanIndicatorValue(SQLModel, table=True):
    """One value per indicator and fiscal quarter ("2026Q3"); recording the
    same quarter again corrects it (the audit trail keeps both)."""

    __table_args__ = (UniqueConstraint("indicator_id", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    indicator_id: int = Field(foreign_key="planindicator.id", index=True)
    period: str = Field(max_length=8)
    value: float
    member_id: int = Field(foreign_key="member.id")
    at: datetime = _ts()


class TableVersion(SQLModel, table=True):
    """How often the looked-up fields of a table changed (`store/versions.py`;
    migration 0010): a process's cached lookup index is current while the
    number it was built at is still here."""

    name: str = Field(primary_key=True, max_length=40)
    version: int = Field(default=0)

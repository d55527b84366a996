"""The plan's queries against data built here, on SQLite and PostgreSQL:
which tasks are done for their current period (at month, quarter and
fiscal-year boundaries), and the computed indicators at their edges (an
ack by the author, an ack at exactly 24 hours, a note nobody acked, notes
on a quarter's first instant), each checked against a plain Python reading
of the definitions shown to users; and the indicators' cache, which must
never show a stale figure."""

import itertools
import random
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlmodel import select

from bot.plan import digest, indicators, tasks
from bot.plan.periods import CATEGORIES, fiscal_year, period
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Member, Note, NoteAck, Patient, PlanCompletion, PlanTask, PlanTaskOwner
from tests.conftest import JST

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=JST)
_keys = itertools.count()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def members(session, *professions: str) -> list[Member]:
    people = [Member(display_name=f"職員{i}", profession=p, created_at=NOW) for i, p in enumerate(professions)]
    session.add_all(people)
    session.flush()
    return people


def patient(session, **fields) -> Patient:
    row = Patient(code=f"P-{next(_keys):04d}", name="患者", created_at=NOW, **fields)
    session.add(row)
    session.flush()
    return row


def note(session, author: Member, at: datetime, acks: list[tuple[Member, datetime]] = ()) -> Note:
    row = Note(patient_id=patient(session).id, form_id="daily", body_json="{}", author_id=author.id, created_at=at,
               request_key=f"q{next(_keys)}")
    session.add(row)
    session.flush()
    session.add_all(NoteAck(note_id=row.id, member_id=m.id, acked_at=when) for m, when in acks)
    session.flush()
    return row


def task(session, every=None, due=None, category="A", year=2026, owners=(), done=(), by=None) -> PlanTask:
    row = PlanTask(fiscal_year=year, category=category, title=f"タスク{next(_keys)}", due=due, every=every,
                   created_at=NOW)
    session.add(row)
    session.flush()
    session.add_all(PlanTaskOwner(task_id=row.id, member_id=m.id) for m in owners)
    session.add_all(PlanCompletion(task_id=row.id, period=code, member_id=(by or owners[0]).id, at=NOW)
                    for code in done)
    session.flush()
    return row


# ---- tasks: done for the current period ----

@pytest.mark.parametrize("today, done, undone", [
    (date(2026, 11, 24), {"month": "2026-11", "quarter": "2026Q3", None: "2026"},
     {"month": "2026-10", "quarter": "2026Q2", None: "2025"}),
    (date(2026, 12, 31), {"month": "2026-12", "quarter": "2026Q3", None: "2026"},
     {"month": "2026-11", "quarter": "2026Q4", None: "2027"}),
    (date(2027, 1, 1), {"month": "2027-01", "quarter": "2026Q4", None: "2026"},
     {"month": "2026-12", "quarter": "2026Q3", None: "2027"}),
    (date(2027, 3, 31), {"month": "2027-03", "quarter": "2026Q4", None: "2026"},
     {"month": "2026-03", "quarter": "2027Q4", None: "2025"}),
])
def test_a_task_is_done_only_for_its_current_period(engine, today, done, undone):
    with session_scope(engine) as s:
        owner, = members(s, "訪問看護師")
        year = fiscal_year(today)
        done_tasks = [task(s, every, due=today, owners=[owner], done=[code]) for every, code in done.items()]
        open_tasks = [task(s, every, due=today, owners=[owner], done=[code]) for every, code in undone.items()]
        assert all(tasks.is_done(s, t, today) for t in done_tasks)
        assert not any(tasks.is_done(s, t, today) for t in open_tasks)
        assert [t.id for t in tasks.mine(s, owner, year, today)] == [t.id for t in open_tasks]
        assert [t.id for t in tasks.open_before(s, today)] == [t.id for t in open_tasks]
        o = tasks.overview(s, year, today)
        assert [t.id for t, _ in o.soon] == [t.id for t in open_tasks] and o.overdue == []
        assert o.progress[0] == ("A", 3, 6) and all(total == 0 for _c, _d, total in o.progress[1:])


def test_a_task_every_something_else_is_done_once_a_fiscal_year(engine):
    with session_scope(engine) as s:
        odd = task(s, every="week", due=NOW.date(), done=["2026"], by=members(s, "医師")[0])
        assert tasks.is_done(s, odd, NOW.date()) and tasks.open_before(s, NOW.date()) == []


def test_the_overview_lists_what_is_due_within_14_days_or_overdue_in_order(engine):
    today = NOW.date()
    with session_scope(engine) as s:
        a, b = members(s, "医師", "薬剤師")
        late = task(s, due=today - timedelta(days=1), owners=[b, a])
        due_today = task(s, due=today, category="B")
        last_day = task(s, due=today + timedelta(days=14))
        task(s, due=today + timedelta(days=15))  # not yet
        task(s)  # no due date
        task(s, due=today - timedelta(days=30), done=["2026"], by=a)  # done
        task(s, due=today - timedelta(days=30), year=2025)  # last year's plan
        earlier = task(s, due=today - timedelta(days=3), every="month", owners=[a], done=["2026-10"])
        o = tasks.overview(s, 2026, today)
        assert [(t.id, [m.id for m in people]) for t, people in o.overdue] == [(earlier.id, [a.id]),
                                                                              (late.id, [b.id, a.id])]
        assert [t.id for t, _ in o.soon] == [due_today.id, last_day.id]
        assert dict((c, (d, n)) for c, d, n in o.progress) == {**{c: (0, 0) for c in CATEGORIES},
                                                               "A": (1, 6), "B": (0, 1)}
        first = tasks.overview(s, 2026, today, shown=1)  # as a reply asks: the first of each, and counts
        assert [t.id for t, _ in first.overdue] == [earlier.id] and [t.id for t, _ in first.soon] == [due_today.id]
        assert (first.overdue_count, first.soon_count) == (o.overdue_count, o.soon_count) == (2, 2)


def test_every_owner_hears_of_all_their_overdue_tasks_however_many(engine):
    today = NOW.date()
    with session_scope(engine) as s:
        a, b = members(s, "医師", "薬剤師")
        mine_ = [task(s, due=today - timedelta(days=1 + i % 30), owners=[a]) for i in range(digest.SHOWN * 3)]
        shared = task(s, due=today - timedelta(days=40), owners=[b, a])
        task(s, due=today - timedelta(days=2), owners=[b], done=["2026"])
        by_owner = digest.overdue_by_owner(tasks.overview(s, 2026, today))
        assert {t.id for t in by_owner[a.id][1]} == {t.id for t in mine_} | {shared.id}
        assert [t.id for t in by_owner[b.id][1]] == [shared.id]


@pytest.mark.parametrize("today", [date(2026, 4, 1), date(2026, 6, 30), date(2026, 7, 1), date(2026, 11, 24),
                                   date(2026, 12, 31), date(2027, 1, 1), date(2027, 3, 31)])
def test_the_queries_agree_with_period_on_random_plans(engine, today):
    rng = random.Random(today.toordinal())
    year = fiscal_year(today)
    with session_scope(engine) as s:
        people = members(s, "医師", "薬剤師", "介護支援専門員")
        everies = ["month", "quarter", None]
        near = [period(e, d) for e in everies for d in (today, today - timedelta(days=31), today - timedelta(days=92),
                                                        today + timedelta(days=31), today - timedelta(days=366))]
        made = []
        for _ in range(120):
            made.append(task(s, rng.choice(everies), due=rng.choice([None, today + timedelta(days=rng.randint(-60, 30))]),
                             category=rng.choice("ABCDEFGHZ"), year=rng.choice([year, year, year - 1]),
                             owners=rng.sample(people, rng.randint(0, 2)), done=set(rng.sample(near, 3)),
                             by=people[0]))
        done_now = {t.id for t in made
                    if s.exec(select(PlanCompletion).where(PlanCompletion.task_id == t.id,
                                                           PlanCompletion.period == period(t.every, today))).first()}
        this_year = sorted((t for t in made if t.fiscal_year == year),
                           key=lambda t: (t.due is None, t.due or date.min, t.id))
        listed = [t for t in this_year if t.id not in done_now and t.due is not None and t.due <= today + tasks.SOON]
        o = tasks.overview(s, year, today)
        assert o.progress == [(c, sum(1 for t in this_year if t.category == c and t.id in done_now),
                               sum(1 for t in this_year if t.category == c)) for c in CATEGORIES]
        assert [t.id for t, _ in o.overdue] == [t.id for t in listed if t.due < today]
        assert [t.id for t, _ in o.soon] == [t.id for t in listed if t.due >= today]
        assert [t.id for t in tasks.open_before(s, today)] == [
            t.id for t in this_year if t.id not in done_now and t.due is not None and t.due <= today]
        for m in people:
            owned = {o_.task_id for o_ in s.exec(select(PlanTaskOwner).where(PlanTaskOwner.member_id == m.id))}
            assert {t.id for t in tasks.mine(s, m, year, today)} == {
                t.id for t in this_year if t.id in owned and t.id not in done_now}


# ---- indicators ----

def quarter_spans(year: int = 2026) -> list[tuple[datetime, datetime]]:
    return [(datetime.combine(first, datetime.min.time(), JST),
             datetime.combine(last + timedelta(days=1), datetime.min.time(), JST))
            for first, last in indicators.quarters(year)]


def reference_responsiveness(session, since: datetime, until: datetime) -> tuple[int, int]:
    """The definition read literally, in Python: a note counts when the
    earliest acknowledgement by someone other than its author came within
    24 hours of it."""
    quick = notes = 0
    for n in session.exec(select(Note)):
        if since <= n.created_at < until:
            notes += 1
            first = min((a.acked_at for a in session.exec(select(NoteAck).where(NoteAck.note_id == n.id))
                         if a.member_id != n.author_id), default=None)
            quick += first is not None and first - n.created_at <= timedelta(hours=24)
    return quick, notes


def test_an_ack_counts_when_someone_else_gives_it_within_24_hours_to_the_microsecond(engine):
    day, us = timedelta(hours=24), timedelta(microseconds=1)
    with session_scope(engine) as s:
        author, other, third = members(s, "介護支援専門員", "訪問看護師", "医師")
        base = datetime(2026, 10, 5, 9, 30, 0, 123_456, tzinfo=JST)
        cases = [  # (created, acks as (member, time after the note), quick?)
            ([(other, day)], True),  # exactly 24 hours
            ([(other, day + us)], False),
            ([(other, day - us)], True),
            ([(author, timedelta(minutes=1))], False),  # the author's own
            ([(author, timedelta(0)), (other, day + timedelta(seconds=1))], False),
            ([(other, day + timedelta(hours=1)), (third, timedelta(hours=3))], True),
            ([], False),  # nobody
            ([(other, -timedelta(hours=1))], True),  # clock skew: before the note, still within
        ]
        cases = [(base + timedelta(minutes=i), acks, quick) for i, (acks, quick) in enumerate(cases)]
        # Where julianday's milliseconds round up and dates roll over (UTC text on SQLite).
        for created in (datetime(2026, 12, 31, 23, 59, 59, 999_600, tzinfo=timezone.utc),
                        datetime(2027, 2, 27, 12, 0, 0, 999_999, tzinfo=timezone.utc),
                        datetime(2026, 11, 29, 14, 59, 59, 999_500, tzinfo=timezone.utc),
                        datetime(2026, 10, 1, 0, 0, 0, 500, tzinfo=timezone.utc)):
            cases += [(created + timedelta(days=k), [(other, gap)], gap <= day)
                      for k, gap in enumerate((day, day + us, day + timedelta(microseconds=400)))]
        rows = [(note(s, author, created, [(m, created + gap) for m, gap in acks]), quick)
                for created, acks, quick in cases]
        for row, quick in rows:
            span = (row.created_at, row.created_at + us)
            assert indicators.responsiveness(s, *span) == (int(quick), 1), (row.created_at, quick)
        year = (quarter_spans()[0][0], quarter_spans()[-1][1])
        assert indicators.responsiveness(s, *year) == reference_responsiveness(s, *year) == (
            sum(q for _, q in rows), len(rows))


def test_each_note_falls_in_the_quarter_of_its_instant_in_japan(engine):
    spans = quarter_spans()
    with session_scope(engine) as s:
        author, other = members(s, "医師", "訪問看護師")
        for start, _ in spans[1:]:
            note(s, author, start, [(other, start + timedelta(hours=1))])  # first instant: this quarter
            note(s, author, start - timedelta(microseconds=1))  # the one before: last quarter
        indicators.forget()
        counts = indicators.responsiveness_by_span(s, spans, NOW)
        assert counts == [(0, 1), (1, 2), (1, 2), (1, 1)]
        assert counts == [reference_responsiveness(s, *span) for span in spans]


def test_the_figures_match_their_definitions_on_random_notes(engine):
    rng = random.Random(7)
    spans = quarter_spans()
    with session_scope(engine) as s:
        people = members(s, "医師", "訪問看護師", "薬剤師", "", "介護支援専門員")
        for _ in range(300):
            created = spans[0][0] + timedelta(seconds=rng.randint(-86400 * 5, 86400 * 240),
                                              microseconds=rng.randint(0, 999_999))
            author = rng.choice(people[:4])  # the last one never writes
            gaps = [timedelta(hours=24) + timedelta(microseconds=rng.choice([-1, 0, 1, 500, -500])),
                    timedelta(hours=rng.uniform(0, 48))]
            acks = [(m, created + rng.choice(gaps)) for m in rng.sample(people, rng.randint(0, 3))]
            note(s, author, created, acks)
        indicators.forget()
        assert indicators.responsiveness_by_span(s, spans, NOW) == [reference_responsiveness(s, *sp) for sp in spans]
        year = (spans[0][0], spans[-1][1])
        wrote = {n.author_id for n in s.exec(select(Note)) if year[0] <= n.created_at < year[1]}
        acked = {a.member_id for a in s.exec(select(NoteAck)) if year[0] <= a.acked_at < year[1]}
        expected: dict[str, int] = {}
        for m in people:
            if m.id in wrote | acked:
                expected[m.profession or "（未登録）"] = expected.get(m.profession or "（未登録）", 0) + 1
        assert indicators.participation(s, *year) == expected


def test_home_deaths_are_counted_in_the_quarter_their_care_ended(engine):
    with session_scope(engine) as s:
        for ended_on, outcome in ((date(2026, 4, 1), "在宅看取り"), (date(2026, 6, 30), "病院死亡"),
                                  (date(2026, 7, 1), "在宅看取り"), (date(2026, 12, 31), "転居"),
                                  (date(2027, 1, 1), "病院死亡"), (date(2027, 3, 31), "在宅看取り"),
                                  (date(2026, 3, 31), "在宅看取り"), (date(2027, 4, 1), "在宅看取り")):
            patient(s, status="ended", outcome=outcome, ended_on=ended_on)
        patient(s, status="active", outcome="在宅看取り", ended_on=date(2026, 8, 1))  # reopened: not ended
        assert indicators.home_death_rates(s, 2026) == [(1, 2), (1, 1), (0, 0), (1, 2)]
        figures = {f.name: f for f in indicators.computed(s, 2026, date(2026, 11, 24), NOW, JST, 48)}
        assert figures["在宅看取り率"].value == "60%（3/5）"
        assert figures["在宅看取り率"].trend == [50.0, 100.0, None, None]  # Q4 has not begun


def test_the_cache_never_shows_a_stale_figure(engine):
    spans = quarter_spans()
    q2 = datetime(2026, 8, 10, 9, 0, tzinfo=JST)
    with session_scope(engine) as s:
        author, other = members(s, "医師", "訪問看護師")
        old = note(s, author, q2)
        recent = note(s, author, NOW - timedelta(hours=5))
        indicators.forget()

        def fresh():
            return [reference_responsiveness(s, *span) for span in spans]

        assert indicators.responsiveness_by_span(s, spans, NOW) == fresh() == [(0, 0), (0, 1), (0, 1), (0, 0)]
        s.add(NoteAck(note_id=recent.id, member_id=other.id, acked_at=NOW))  # the usual: pressed now
        s.flush()
        assert indicators.responsiveness_by_span(s, spans, NOW) == fresh() == [(0, 0), (0, 1), (1, 1), (0, 0)]
        s.add(NoteAck(note_id=old.id, member_id=other.id, acked_at=q2 + timedelta(hours=2)))  # back-dated
        s.flush()
        assert indicators.responsiveness_by_span(s, spans, NOW) == fresh() == [(0, 0), (1, 1), (1, 1), (0, 0)]
        imported = note(s, author, q2 - timedelta(days=60))  # imported into a settled quarter
        assert indicators.responsiveness_by_span(s, spans, NOW) == fresh() == [(0, 1), (1, 1), (1, 1), (0, 0)]
        s.delete(imported)  # never done by Renkei; a database restored from an older backup looks the same
        s.flush()
        assert indicators.responsiveness_by_span(s, spans, NOW) == fresh() == [(0, 0), (1, 1), (1, 1), (0, 0)]
        later = NOW + timedelta(days=3)  # the recent note has settled; nothing changes
        assert indicators.responsiveness_by_span(s, spans, later) == fresh()
        assert indicators.responsiveness_by_span(s, spans, NOW - timedelta(days=30)) == fresh()  # clock moved back

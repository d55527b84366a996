"""Calendar feeds of council meetings (bot/council/ical.py, GET /calendar/<token>.ics,
`renkei export ical`). Meetings are written straight into the tables so these tests
depend only on the feed, not on /council's commands. The demo clock is 2026-11-24 10:00 JST."""

from __future__ import annotations

import io
from datetime import datetime

import icalendar

from bot.council import ical
from bot.store.models import Meeting, MeetingInvite
from tests.conftest import JST, ROOT, member_of


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


def add_meeting(bot, title: str, starts: str, *, organiser: str = "U0DEMOCM1", invite=(), ends: str | None = None,
                place: str = "市役所3階", url: str = "") -> int:
    now = bot.clock()
    with bot.session() as s:
        meeting = Meeting(title=title, starts_at=at(starts), ends_at=at(ends) if ends else None, place=place, url=url,
                          organiser_id=member_of(s, organiser).id, created_at=now, updated_at=now)
        s.add(meeting)
        s.flush()
        for user in invite:
            s.add(MeetingInvite(meeting_id=meeting.id, member_id=member_of(s, user).id))
        return meeting.id


def change(bot, meeting_id: int, **values) -> None:
    """What /council edit and cancel do to the row (values plus a later updated_at)."""
    with bot.session() as s:
        meeting = s.get(Meeting, meeting_id)
        for name, value in values.items():
            setattr(meeting, name, value)
        meeting.updated_at = bot.clock()
        s.add(meeting)


def token(bot, user: str, reset: bool = False) -> str:
    with bot.session() as s:
        return ical.token_for(s, member_of(s, user).id, bot.clock(), reset=reset)


def fetch(bot, user_or_token: str) -> icalendar.Calendar:
    key = token(bot, user_or_token) if user_or_token.startswith("U0") else user_or_token
    r = bot.sim.get(f"/calendar/{key}.ics")
    assert r.status == 200, r
    return icalendar.Calendar.from_ical(r.body)


def events(cal: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}


def head(bot, path: str) -> tuple[int, dict, bytes]:
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=int(status.split()[0]), headers=dict(headers))

    environ = {"REQUEST_METHOD": "HEAD", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(b"")}
    body = b"".join(bot.sim.wsgi(environ, start_response))
    return captured["status"], captured["headers"], body


def test_the_feed_over_http_has_a_stable_uid_a_rising_sequence_and_tokyo_times(bot):
    meeting_id = add_meeting(bot, "第3回 推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1"],
                             url="https://meet.example.jp/x")
    key = token(bot, "U0DEMONS1")
    r = bot.sim.get(f"/calendar/{key}.ics")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert r.headers["Content-Disposition"] == "inline; filename=renkei.ics"
    cal = icalendar.Calendar.from_ical(r.body)
    assert str(cal["METHOD"]) == "PUBLISH" and str(cal["X-WR-CALNAME"]) == "Renkei 会議"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Tokyo"]
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == f"meeting-{meeting_id}@renkei" and int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "Asia/Tokyo" and event["DTEND"].params["TZID"] == "Asia/Tokyo"
    assert event.decoded("DTSTART").isoformat() == "2026-12-15T18:30:00+09:00"
    assert event.decoded("DTEND").isoformat() == "2026-12-15T19:30:00+09:00"  # no end given: one hour
    assert str(event["SUMMARY"]) == "第3回 推進協議会" and str(event["STATUS"]) == "CONFIRMED"
    assert str(event["LOCATION"]) == "市役所3階" and str(event["URL"]) == "https://meet.example.jp/x"
    assert event.decoded("LAST-MODIFIED") == at("2026-11-24T10:00")
    assert "DTSTAMP" in event
    # the same feed again: same UID; HEAD answers the same headers without a body
    (again,) = fetch(bot, key).walk("VEVENT")
    assert str(again["UID"]) == str(event["UID"])
    status, headers, body = head(bot, f"/calendar/{key}.ics")
    assert (status, body) == (200, b"") and headers["Content-Length"] == str(len(r.body))

    bot.clock.advance(minutes=5)
    change(bot, meeting_id, starts_at=at("2026-12-16T19:00"), ends_at=at("2026-12-16T20:30"), place="別館",
           sequence=1)
    (moved,) = fetch(bot, key).walk("VEVENT")
    assert str(moved["UID"]) == f"meeting-{meeting_id}@renkei" and int(moved["SEQUENCE"]) == 1
    assert moved.decoded("DTSTART").isoformat() == "2026-12-16T19:00:00+09:00"
    assert moved.decoded("DTEND").isoformat() == "2026-12-16T20:30:00+09:00"
    assert str(moved["LOCATION"]) == "別館"


def test_a_member_sees_only_the_meetings_they_are_invited_to_or_organise(bot):
    add_meeting(bot, "部会", "2026-12-01T14:00", organiser="U0DEMONS1")
    add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1", "U0DEMODR1"])
    add_meeting(bot, "研修", "2026-12-20T10:00", invite=["U0DEMOPH1"])
    add_meeting(bot, "昨年の研修", "2025-11-01T10:00", invite=["U0DEMONS1"])  # over a year ago
    assert list(events(fetch(bot, "U0DEMONS1"))) == ["部会", "推進協議会"]
    assert list(events(fetch(bot, "U0DEMODR1"))) == ["推進協議会"]
    assert list(events(fetch(bot, "U0DEMOPH1"))) == ["研修"]
    assert not fetch(bot, "U0DEMOSS1").walk("VEVENT")


def test_a_cancelled_meeting_stays_thirty_days_as_cancelled_then_goes(bot):
    meeting_id = add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1"])
    add_meeting(bot, "部会", "2027-02-01T18:30", invite=["U0DEMONS1"])
    bot.clock.set(at("2026-11-25T09:00"))
    change(bot, meeting_id, status="cancelled", cancelled_at=bot.clock(), sequence=1)
    cancelled = events(fetch(bot, "U0DEMONS1"))["【中止】推進協議会"]
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 1
    bot.clock.set(at("2026-12-25T08:59"))  # 30 days less a minute: still there
    assert "【中止】推進協議会" in events(fetch(bot, "U0DEMONS1"))
    bot.clock.set(at("2026-12-25T09:01"))  # the same day, just over 30 days: gone, the rest stays
    assert list(events(fetch(bot, "U0DEMONS1"))) == ["部会"]


def test_unknown_or_malformed_tokens_are_a_bare_404(bot):
    add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1"])
    key = token(bot, "U0DEMONS1")
    for path in ("/calendar/not-a-token.ics", f"/calendar/{key}", f"/calendar/{key}x.ics", "/calendar/.ics",
                 f"/calendar/{key}/{key}.ics", "/calendar/" + "a" * 500 + ".ics", "/calendar/%00.ics"):
        r = bot.sim.get(path)
        assert (r.status, r.body) == (404, b""), path
        assert "Content-Type" not in r.headers
    assert head(bot, "/calendar/not-a-token.ics")[0::2] == (404, b"")
    assert bot.sim.get("/healthz").status == 200


def test_reset_revokes_the_old_url_and_issues_a_new_one(bot):
    add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1"])
    old = token(bot, "U0DEMONS1")
    assert token(bot, "U0DEMONS1") == old  # asking again gives the same URL
    new = token(bot, "U0DEMONS1", reset=True)
    assert new != old and len(new) >= 32
    assert bot.sim.get(f"/calendar/{old}.ics").status == 404
    assert list(events(fetch(bot, new))) == ["推進協議会"]
    with bot.session() as s:
        assert ical.member_for_token(s, new) == member_of(s, "U0DEMONS1").id
        assert ical.member_for_token(s, old) is None and ical.member_for_token(s, "") is None


def test_a_change_without_a_new_sequence_still_reaches_the_feed(bot):
    """The served feed is cached; a title corrected within the same instant
    (same sequence, same updated_at) must not be hidden by that cache."""
    meeting_id = add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMONS1"])
    assert list(events(fetch(bot, "U0DEMONS1"))) == ["推進協議会"]
    change(bot, meeting_id, title="第3回 推進協議会")
    assert list(events(fetch(bot, "U0DEMONS1"))) == ["第3回 推進協議会"]


def test_renkei_export_ical_writes_every_meeting(bot, tmp_path, monkeypatch, capsys):
    from bot.cli import main

    add_meeting(bot, "部会", "2026-12-01T14:00", organiser="U0DEMONS1")
    add_meeting(bot, "推進協議会", "2026-12-15T18:30", invite=["U0DEMODR1"])
    cancelled = add_meeting(bot, "研修", "2026-12-20T10:00")
    change(bot, cancelled, status="cancelled", cancelled_at=bot.clock(), sequence=1)
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    monkeypatch.setattr("bot.runtime.system_clock", bot.clock)  # the CLI's "now" is the demo clock
    out = tmp_path / "会議.ics"
    assert main(["export", "ical", str(out)]) == 0
    assert "会議 3件" in capsys.readouterr().out
    cal = icalendar.Calendar.from_ical(out.read_bytes())
    assert str(cal["METHOD"]) == "PUBLISH" and cal.walk("VTIMEZONE")
    assert sorted(events(cal)) == sorted(["部会", "推進協議会", "【中止】研修"])

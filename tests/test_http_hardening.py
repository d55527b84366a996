"""The HTTP front under abuse: bodies too large or malformed, signatures
missing, wrong or replayed, request keys, control characters and echoes.
Everything goes through the real WSGI app (`bot.web`) with signed requests,
as Slack sends them."""

from __future__ import annotations

import io
import json
import logging
import time
from urllib.parse import urlencode

import pytest
from sqlmodel import func, select

from bot.store.models import AuditEvent, Identity, Member, Note
from bot.web import MAX_BODY, read_body
from tests.conftest import SECRET
from tests.slackreq import sign


class Stream:
    """A wsgi.input of `size` bytes that never exists whole: it counts what
    the app reads."""

    def __init__(self, size: int, byte: bytes = b"a"):
        self.size, self.byte, self.read_bytes = size, byte, 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        self.read_bytes += n
        return self.byte * n


def _environ(body, *, length: str | None = "auto", signed: bool = True, timestamp: int | None = None,
             content_type: str = "application/x-www-form-urlencoded", **headers) -> dict:
    raw = body if isinstance(body, bytes) else b""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    ts = int(time.time()) if timestamp is None else timestamp
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "", "SERVER_NAME": "test",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": stream, "CONTENT_TYPE": content_type, "REMOTE_ADDR": "192.0.2.1",
               "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(ts)}
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(raw))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    if signed:
        environ["HTTP_X_SLACK_SIGNATURE"] = sign(SECRET, raw, ts)
    for k, v in headers.items():
        environ["HTTP_" + k.upper()] = v
    return environ


def _command_form(bot, command: str, text: str, **fields) -> dict:
    form = {"token": "legacy", "team_id": "T1", "team_domain": "demo", "channel_id": "C0TEAM",
            "channel_name": "team", "user_id": "U0DEMOCM1", "user_name": "u0democm1", "command": command,
            "text": text, "api_app_id": "A1", "response_url": bot.fake.response_url()}
    form.update(fields)
    return {k: v for k, v in form.items() if v is not None}


def _counts(bot) -> tuple[int, int, int, int]:
    with bot.session() as s:
        return tuple(s.exec(select(func.count()).select_from(model)).one()
                     for model in (Note, AuditEvent, Member, Identity))


def _problems(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- 1. a bound on the body before anything else ----------------------------------

def test_a_declared_100_mb_body_is_refused_with_413_without_reading_it(bot, caplog):
    before = _counts(bot)
    stream = Stream(100 * 1024 * 1024)
    r = bot.sim._call(_environ(stream, length=str(stream.size), signed=False))
    assert r.status == 413 and stream.read_bytes == 0
    assert _counts(bot) == before
    warned = [r for r in caplog.records if r.name == "bot.web"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING and "413" in warned[0].getMessage()
    assert not _problems(caplog)


@pytest.mark.parametrize("length, chunked", [(None, "chunked"), (None, None), ("", None), ("abc", None),
                                             ("-1", None), ("10", "chunked")])
def test_a_body_of_unknown_length_is_read_only_to_one_byte_past_the_limit(bot, length, chunked):
    stream = Stream(100 * 1024 * 1024)
    extra = {"TRANSFER_ENCODING": chunked} if chunked else {}
    r = bot.sim._call(_environ(stream, length=length, signed=False, **extra))
    assert r.status == 413 and stream.read_bytes == MAX_BODY + 1


def test_read_body_reads_a_short_stream_to_its_end_when_the_length_is_unknown():
    class Trickle(io.BytesIO):  # a server's input may hand out a few bytes per read
        def read(self, n=-1):
            return super().read(min(n, 3) if n and n > 0 else n)

    assert read_body({"wsgi.input": Trickle(b"command=/x&text=y")}) == b"command=/x&text=y"
    assert read_body({"wsgi.input": Trickle(b"x" * 20), "CONTENT_LENGTH": "20"}, limit=20) == b"x" * 20
    assert read_body({"wsgi.input": Trickle(b"x" * 21)}, limit=20) is None
    assert read_body({}) == b""


def test_a_signed_body_just_over_the_limit_is_refused_and_one_just_under_is_answered(bot):
    form = _command_form(bot, "/liaison", "山田 ")
    base = len(urlencode(form).encode())
    under = _command_form(bot, "/liaison", "山田 " + "x" * (MAX_BODY - base - 30), trigger_id="t.under")
    body = urlencode(under).encode()
    assert MAX_BODY - 20 < len(body) <= MAX_BODY
    r = bot.sim.post(body)
    assert r.status == 200 and "文字まで" in r.text  # answered: the note is too long for a quick note
    over = urlencode(_command_form(bot, "/liaison", "山田 " + "x" * (MAX_BODY - base - 10), trigger_id="t.over")).encode()
    assert MAX_BODY < len(over) < MAX_BODY + 20
    assert bot.sim.post(over).status == 413


def test_a_signed_note_of_normal_size_is_stored_also_without_a_content_length(bot):
    body = urlencode(_command_form(bot, "/liaison", "山田 夕方に訪問、食欲あり", trigger_id="t.len")).encode()
    r = bot.sim._call(_environ(body, length=None))
    assert r.status == 200 and "登録しました" in r.text
    body = urlencode(_command_form(bot, "/liaison", "山田 " + "あ" * 1900, trigger_id="t.long")).encode()
    assert len(body) > 16_000
    assert "登録しました" in bot.sim.post(body).text
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 2


# --- 2. 400 for what cannot be a request, 401 for what is not Slack's -------------------

MALFORMED = {
    "invalid UTF-8": (b"command=%2Fliaison&user_id=U0DEMOCM1&text=\xff\xfe\xfd", "application/x-www-form-urlencoded"),
    "payload that is not JSON": (b"payload=%7Bnot+json", "application/x-www-form-urlencoded"),
    "payload that is a JSON list": (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
    "payload nested too deep": (b"payload=" + b"%5B" * 10_000 + b"%5D" * 10_000, "application/x-www-form-urlencoded"),
    "JSON body that is not JSON": (b'{"type": "event_callback", ', "application/json"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_malformed_body_gets_400_and_one_warning_line_not_a_500(bot, caplog, case, signed):
    body, content_type = MALFORMED[case]
    before = _counts(bot)
    r = bot.sim._call(_environ(body, signed=signed, content_type=content_type))
    assert r.status == 400, (case, r.body)
    assert _counts(bot) == before
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].exc_info is None and "400" in warned[0].getMessage()
    assert not _problems(caplog)


SIGNED_BUT_INCOMPLETE = {
    "slash command without user_id": {"command": "/liaison", "text": "山田 だれが書いた？", "channel_id": "C0TEAM",
                                      "trigger_id": "t.nouser"},
    "slash command with an empty user_id": {"command": "/patient", "text": "list", "user_id": "",
                                            "trigger_id": "t.empty"},
    "button press without user": {"payload": json.dumps({"type": "block_actions", "trigger_id": "t.b",
                                                         "actions": [{"action_id": "note_ack", "value": "1"}]})},
    "button press without actions": {"payload": json.dumps({"type": "block_actions", "user": {"id": "U0DEMOCM1"}})},
    "button press with a user that is a string": {"payload": json.dumps({
        "type": "block_actions", "user": "U0DEMOCM1", "actions": [{"action_id": "note_ack", "value": "1"}]})},
    "form submission without view": {"payload": json.dumps({"type": "view_submission", "user": {"id": "U0DEMOCM1"}})},
}


@pytest.mark.parametrize("case", sorted(SIGNED_BUT_INCOMPLETE))
def test_a_signed_payload_that_names_no_person_gets_400_and_changes_nothing(bot, caplog, case):
    before = _counts(bot)
    r = bot.sim.post(urlencode(SIGNED_BUT_INCOMPLETE[case]).encode())
    assert r.status == 400, (case, r.body)
    assert _counts(bot) == before  # in particular no member for an empty Slack id
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert not _problems(caplog)


@pytest.mark.parametrize("how", ["missing", "wrong", "replayed", "from the future", "other body"])
def test_a_request_without_a_valid_recent_signature_gets_401_and_changes_nothing(bot, how):
    body = urlencode(_command_form(bot, "/liaison", "山田 偽の連絡票", trigger_id=f"t.{how}")).encode()
    ts = int(time.time())
    environ = _environ(body)
    if how == "missing":
        del environ["HTTP_X_SLACK_SIGNATURE"]
        del environ["HTTP_X_SLACK_REQUEST_TIMESTAMP"]
    elif how == "wrong":
        environ["HTTP_X_SLACK_SIGNATURE"] = sign("not-the-secret", body, ts)
    elif how == "replayed":  # a real signature, captured and sent again six minutes later
        environ = _environ(body, timestamp=ts - 6 * 60)
    elif how == "from the future":
        environ = _environ(body, timestamp=ts + 6 * 60)
    else:
        other = urlencode(_command_form(bot, "/liaison", "山田 本物", trigger_id=f"t.{how}")).encode()
        environ["HTTP_X_SLACK_SIGNATURE"] = sign(SECRET, other, ts)
    before = _counts(bot)
    assert bot.sim._call(environ).status == 401
    assert _counts(bot) == before
    assert not bot.fake.of("chat.postMessage") and not bot.fake.of("views.open")
    # The same body, signed now, is Slack's own and is stored.
    assert "登録しました" in bot.sim.post(body).text


def test_other_paths_and_methods_are_not_read(bot):
    stream = Stream(10 * 1024 * 1024)
    environ = {**_environ(stream, length=str(stream.size)), "PATH_INFO": "/elsewhere"}
    assert bot.sim._call(environ).status == 404 and stream.read_bytes == 0
    environ = {**_environ(stream, length=str(stream.size)), "REQUEST_METHOD": "GET"}
    assert bot.sim._call(environ).status == 404 and stream.read_bytes == 0


# --- 3. request keys never collapse -----------------------------------------------------

def test_quick_notes_without_a_trigger_id_are_each_stored_and_a_retry_is_stored_once(bot):
    bodies = [urlencode(_command_form(bot, "/liaison", f"山田 {text}")).encode()
              for text in ("朝の訪問、血圧 128/80", "夕方に再訪、食欲あり", "夜間の連絡なし")]
    assert all(b"trigger_id" not in b for b in bodies)
    for body in bodies:
        assert "登録しました" in bot.sim.post(body).text
    retried = bot.sim.post(bodies[1], headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert "登録済み" in retried.text
    with bot.session() as s:
        notes = s.exec(select(Note).order_by(Note.id)).all()
    assert len(notes) == 3 and len({n.request_key for n in notes}) == 3


def test_form_submissions_without_a_view_id_are_each_stored_and_a_resubmission_once(bot):
    bot.sim.command("/liaison", "山田")
    view = {**bot.open_view(), "id": None}
    first = bot.sim.submit(view, {"form_type": "daily", "body": "訪問しました"})
    second = bot.sim.submit(view, {"form_type": "daily", "body": "電話で様子を確認"})
    assert first.status == second.status == 200
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 2
    payload = {"type": "view_submission", "user": {"id": "U0DEMOCM1", "username": "u0democm1"},
               "api_app_id": "A1", "team": {"id": "T1"},
               "view": {**view, "hash": "h1", "state": {"values": {
                   "form_type": {"form_type": {"type": "static_select", "selected_option": {"value": "daily"}}},
                   "body": {"value": {"type": "plain_text_input", "value": "再送される連絡票"}}}}}}
    body = urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()
    bot.sim.post(body)
    bot.sim.post(body, headers={"X-Slack-Retry-Num": "1"})
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 3


def test_request_keys_fit_their_column_and_differ_for_different_payloads():
    from bot.slack import inbound

    a = {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "x", "action_ts": "1.1"}]}
    b = {**a, "actions": [{"action_id": "x", "action_ts": "1.2"}]}
    keys = {inbound.who_of_action(p).request_key for p in (a, b)}
    assert len(keys) == 2 and inbound.who_of_action(dict(a)).request_key in keys
    assert inbound.who_of_action({**a, "trigger_id": "123.456.abc"}).request_key == "act:123.456.abc"
    long = inbound.who_of_command({"command": "/x", "user_id": "U1", "trigger_id": "t" * 5000}, [])
    assert len(long.request_key) <= 128 and long.request_key.startswith("cmd:#")
    press = inbound.press_key({"user": {"id": "U" * 300}, "container": {"message_ts": "1" * 300}}, "a", "v")
    assert len(press) <= 128


def test_a_form_that_cannot_open_without_a_trigger_id_is_told_not_a_traceback(bot, caplog):
    body = urlencode(_command_form(bot, "/liaison", "山田 " + "あ" * 2100)).encode()
    r = bot.sim.post(body)
    assert r.status == 200 and "no_trigger_id" in r.text and "何も保存していません" in r.text
    assert not _problems(caplog)
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


# --- 4. control characters never reach the core -------------------------------------------

DIRTY = "\x00\x01\x07\x08\x0b\x0c\x1b[31m\x1f\x7f"


def test_a_patient_name_with_nul_and_control_characters_is_stored_clean_on_every_database(bot):
    r = bot.sim.command("/patient", f"add 森{DIRTY}\x00 一 もり はじめ area=東\x00地区", user="U0DEMOADM")
    assert r.status == 200 and "⚠" not in r.text, r.text
    with bot.session() as s:
        from bot.store.models import Patient

        patient = s.exec(select(Patient).where(Patient.code == "P-0004")).one()
    assert "P-0004" in r.text and patient.name == "森[31m 一" and patient.area == "東地区"
    assert bot.sim.command("/patient", f"show {patient.code}\x00", user="U0DEMOADM").text.count(patient.code) >= 1


def test_a_quick_note_keeps_lines_and_tabs_and_loses_control_characters(bot):
    r = bot.sim.command("/liaison", f"山田 朝{DIRTY}の訪問\r\n血圧\t128/80\x00", channel="C0\x00TEAM")
    assert "登録しました" in r.text, r.text
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    assert json.loads(note.body_json) == {"body": "朝[31mの訪問\n血圧\t128/80"}
    assert note.channel == "slack:C0TEAM"


def test_form_values_and_button_values_lose_control_characters_and_lone_surrogates(bot):
    bot.sim.command("/liaison", "山田")
    view = {**bot.open_view(), "id": "V9"}
    state = {"form_type": {"form_type": {"type": "static_select", "selected_option": {"value": "daily\x00"}}},
             "body": {"value": {"type": "plain_text_input", "value": "電話\ud800で確認\x00\x1b"}}}
    payload = {"type": "view_submission", "user": {"id": "U0DEMOCM1\x00", "username": "u0democm1"},
               "api_app_id": "A1", "team": {"id": "T1"}, "trigger_id": "t.v9",
               "view": {**view, "hash": "h1", "state": {"values": state}}}
    # ensure_ascii: the lone surrogate travels as Slack would send it, a \ud800 escape in the JSON.
    r = bot.sim.post(urlencode({"payload": json.dumps(payload)}).encode())
    assert r.status == 200
    with bot.session() as s:
        note = s.exec(select(Note)).one()
        assert not [i for i in s.exec(select(Identity)).all() if "\x00" in i.external_id]
    assert json.loads(note.body_json) == {"body": "電話で確認"} and note.form_id == "daily"
    bot.fake.clear()
    bot.sim.click("note_show", f"{note.id}\x00")
    assert "電話で確認" in json.dumps(bot.responses()[-1], ensure_ascii=False)


def test_scrub_cleans_every_string_of_a_payload_in_place_without_recursion():
    from bot.slack.inbound import clean, scrub

    assert clean("a\r\nb\rc\x00\td\ud800\x7f") == "a\nb\nc\td"
    deep: list = []
    node = deep
    for _ in range(5000):  # deeper than Python's recursion limit
        node.append([])
        node = node[0]
    node.append("x\x00")
    body = {"k\x00": ["v\x01", {"w": "\x1bz"}], "n": 1, "deep": deep}
    inner = body["k\x00"]
    assert scrub(body) is body and body["k"] is inner
    assert body == {"k": ["v", {"w": "z"}], "n": 1, "deep": deep} and node == ["x"]


# --- 5. echoes are bounded, and escaped ------------------------------------------------

LONG = "あ" * 100_000
SHAPES = {  # a long argument where each command says back what it was given
    "/liaison": ["", "P-0001 list "],
    "/patient": ["", "show ", "add 山田 太郎 ", "end P-0001 date=", "end P-0001 ", "admit P-0001 hospital="],
    "/vacancy": ["", "facilities ", "set ", "history ", "12/10 ", "area=", "facility edit "],
    "/council": ["", "show ", "add 12/15 18:30 ", "edit ", "kind=", "group add ", "attend "],
    "/plan": ["", "done ", "add F ", "add F x due=", "add F x every=", "add F x owner=", "indicator record ",
              "indicator add x kind=", "indicator record 相談件数 35 period="],
}


def _visible(message: dict) -> str:
    return "".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


@pytest.mark.parametrize("command", sorted(SHAPES))
def test_a_100000_character_argument_comes_back_as_a_short_reply(bot, command):
    from bot.people import Handle, Place
    from bot.requests import COMMAND, Request, Who
    from bot.slack import blocks

    for i, shape in enumerate(SHAPES[command]):
        for user in ("U0DEMOCM1", "U0DEMOADM"):
            who = Who(handle=Handle("slack", user), place=Place("slack", "C0TEAM"), request_key=f"long:{i}:{user}")
            reply = bot.runtime.handle(who, Request(COMMAND, command, shape + LONG))
            assert not reply.error, (command, shape)
            if reply.form:
                continue  # a note too long for a quick note opens the form with it (not an echo)
            message = blocks.message(reply)
            text = _visible(message)
            assert len(text.encode()) < 4096 and len(message["blocks"]) <= 50, (command, shape, len(text))
            # A refusal says back at most 40 characters; a stored title is kept to its 200, and
            # a choice names a stored record in at most 75 (a button's label).
            limit = 200 if reply.template.endswith(("added", "reading", "admitted")) else \
                75 if reply.template.endswith("choose") else 40
            assert "あ" * (limit + 1) not in text + message["text"], (command, shape, reply.template)


@pytest.mark.parametrize("command", sorted(SHAPES))
def test_the_longest_argument_that_fits_a_request_is_answered_briefly_through_http(bot, command):
    for shape in SHAPES[command][:3]:
        body = urlencode(_command_form(bot, command, shape + "x" * (MAX_BODY - 2_000), user_id="U0DEMOADM",
                                       trigger_id=f"t.{command}.{shape}")).encode()
        assert MAX_BODY - 2_000 < len(body) <= MAX_BODY  # as long as a request may be
        r = bot.sim.post(body)
        assert r.status == 200, (command, shape)
        if r.body:
            data = r.json()
            assert len(_visible(data).encode()) < 4096 and len(data["blocks"]) <= 50, (command, shape)
            assert "x" * 201 not in r.text
    # 100,000 characters do not fit in a request at all.
    assert bot.sim.command(command, LONG).status == 413


def test_an_unknown_name_is_said_back_in_40_characters(bot):
    r = bot.sim.command("/patient", "show " + "山" * 5000)
    assert f"「{'山' * 39}…」は見つかりませんでした" in r.text


def test_echo_shortens_typed_text_and_keeps_the_sentence_around_a_quote():
    from bot.render import echo, echo_in

    assert echo("山田 太郎") == "山田 太郎"
    assert echo("あ" * 100) == "あ" * 39 + "…" and echo("a\nb") == "a b" and len(echo("x" * 500, 60)) == 60
    message = f"「{'9' * 5000}」という日付はありません。"
    assert echo_in(message) == f"「{'9' * 39}…」という日付はありません。"


def test_a_message_never_has_more_than_50_blocks_nor_a_section_over_3000(monkeypatch):
    from bot.replies import Action, Message
    from bot.slack import blocks, mrkdwn

    monkeypatch.setattr(mrkdwn, "render", lambda template, values: ("行" * 100 + "\n") * 2000)
    for actions in ([], [Action("note_ack", str(i)) for i in range(60)]):
        message = blocks.message(Message("common/error", {}, actions))
        assert len(message["blocks"]) == 50
        assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")
        sections = [b for b in message["blocks"] if b["type"] == "section"]
        assert sections[-1]["text"]["text"].endswith("…")
        assert sum(len(b["elements"]) for b in message["blocks"] if b["type"] == "actions") == len(actions)


@pytest.mark.parametrize("command, prefix", [("/liaison", ""), ("/patient", "show "), ("/vacancy", "history "),
                                             ("/council", "show "), ("/plan", "done ")])
@pytest.mark.parametrize("typed, escaped", [
    ("<!channel>", "&lt;!channel&gt;"),  # @channel as Slack sends it
    ("<!here|here>", "&lt;!here|here&gt;"),
    ("&lt;@U123&gt;", "&lt;@U123&gt;"),  # `<@U123>` typed as text: Slack escapes it
    ("<https://evil.example|安全>", "&lt;https://evil.example|安全&gt;"),
])
def test_slack_markup_typed_into_an_unknown_name_comes_back_escaped(bot, command, prefix, typed, escaped):
    r = bot.sim.command(command, prefix + typed + " 続き", user="U0DEMOADM")
    data = r.json()
    shown = _visible(data) + data["text"]
    assert escaped in shown, shown
    assert "<!" not in shown and "<@U123" not in shown and "<http" not in shown


def test_mentions_past_fifty_stay_text_and_make_no_members(bot):
    mentions = " ".join(f"<@U9{i:06d}|m{i}>" for i in range(300))
    before = _counts(bot)[2]
    r = bot.sim.command("/patient", "show " + mentions, user="U0DEMOADM")
    assert r.status == 200
    assert _counts(bot)[2] - before <= 50


def test_a_choice_too_long_to_carry_gets_no_button_rather_than_a_broken_one(bot):
    from bot.commands.common import BUTTON_VALUE_LIMIT, choice_actions

    long_text = "done #1 " + "あ" * 3000
    actions = choice_actions("/plan", [{"label": "短い", "text": "done #1"}, {"label": "長い", "text": long_text}])
    assert [dict(a.params)["label"] for a in actions] == ["短い"]
    assert all(len(a.value) <= BUTTON_VALUE_LIMIT for a in actions)

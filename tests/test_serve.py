"""`renkei serve` as a real process: migrations, HTTP, signatures, health,
several processes on one port."""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest

from bot.prefork import children_of
from tests.conftest import PG_URL, ROOT, _fresh_postgres
from tests.slackreq import sign


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def test_serve_applies_migrations_and_answers_signed_commands(tmp_path, fake):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({
        "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "serve-secret",
        "RENKEI_SLACK_API_URL": fake.api_url, "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "RENKEI_CONFIG": str(ROOT / "config"), "RENKEI_ADMINS": "U0SERVE01",  # registers a patient
    })
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = _request(port, "GET", "/healthz")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert status == 200
        body = urlencode({"command": "/patient", "text": "add 森 一 もり はじめ", "user_id": "U0SERVE01",
                          "user_name": "mori", "channel_id": "C1", "trigger_id": "t.1", "team_id": "T1",
                          "response_url": fake.response_url()}).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign("serve-secret", body, ts)}
        status, data = _request(port, "POST", "/slack/events", body, headers)
        assert status == 200 and "P-0001" in data.decode("unicode_escape")
        headers["X-Slack-Signature"] = sign("wrong-secret", body, ts)
        status, _ = _request(port, "POST", "/slack/events", body, headers)
        assert status == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_with_an_app_token_uses_socket_mode_and_starts_the_scheduler(tmp_path, fake, monkeypatch):
    import slack_bolt.adapter.socket_mode as socket_mode
    from sqlalchemy import inspect

    from bot import schedule
    from bot.cli import main
    from bot.store.db import make_engine

    started = {}

    class FakeSocketMode:
        def __init__(self, app, app_token):
            started["app_token"] = app_token
            started["app"] = app

        def start(self):
            started["socket"] = True

    monkeypatch.setattr(socket_mode, "SocketModeHandler", FakeSocketMode)
    monkeypatch.setattr(schedule, "start", lambda runtime, send: started.setdefault("scheduler", send))
    for key, value in {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1",
                       "RENKEI_SLACK_API_URL": fake.api_url, "RENKEI_CONFIG": str(ROOT / "config"),
                       "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path}/socket.db"}.items():
        monkeypatch.setenv(key, value)
    assert main(["serve"]) == 0
    assert started["socket"] and started["app_token"] == "xapp-1" and callable(started["scheduler"])
    assert "note" in inspect(make_engine(f"sqlite:///{tmp_path}/socket.db")).get_table_names()


def _command(port: int, fake, text: str, n: int) -> str:
    body = urlencode({"command": "/patient", "text": text, "user_id": "U0SERVE01", "user_name": "mori",
                      "channel_id": "C1", "trigger_id": f"t.{n}", "team_id": "T1",
                      "response_url": fake.response_url()}).encode()
    ts = int(time.time())
    status, data = _request(port, "POST", "/slack/events", body, {
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign("serve-secret", body, ts)})
    assert status == 200
    return data.decode("unicode_escape")


def _until(what, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="RENKEI_TEST_DATABASE_URL not set"))])
def test_two_serving_processes_share_the_port_see_each_others_writes_and_a_killed_one_is_replaced(
        tmp_path, fake, database):
    port = _free_port()
    proc = _serve_two(tmp_path, port, fake.api_url, database=database, RENKEI_ADMINS="U0SERVE01")
    try:
        first, second = _until(lambda: len(kids := children_of(proc.pid)) == 2 and kids)
        _until(lambda: _healthy(port))
        # Each process alone answers on the one port (the other stopped),
        # and each sees what the other stored: its patient index is built
        # at start and must notice the other's new patient.
        with _stopped(second):
            assert "P-0001" in _command(port, fake, "add 森 一 もり はじめ", 1)
        with _stopped(first):
            assert "森 一" in _command(port, fake, "show もり はじめ", 2)
            assert "P-0002" in _command(port, fake, "add 林 二郎 はやし じろう", 3)
        with _stopped(second):
            assert "林 二郎" in _command(port, fake, "show はやし", 4)

        os.kill(first, signal.SIGKILL)
        replaced = _until(lambda: len(kids := children_of(proc.pid)) == 2 and first not in kids and kids)
        assert second in replaced
        assert "森 一" in _command(port, fake, "show 森", 5)
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert not any(_running(pid) for pid in replaced)


def _healthy(port: int) -> bool:
    try:
        return _request(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def test_several_processes_are_refused_in_socket_mode(tmp_path, monkeypatch, capsys):
    from bot.cli import main

    for key, value in {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1",
                       "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path}/one.db"}.items():
        monkeypatch.setenv(key, value)
    assert main(["serve", "--processes", "2"]) == 2
    assert "Socket Mode" in capsys.readouterr().err
    monkeypatch.setenv("RENKEI_PROCESSES", "2")  # as `make run` would be told
    assert main(["run"]) == 2
    assert "Socket Mode" in capsys.readouterr().err
    assert not (tmp_path / "one.db").exists()  # refused before anything was migrated


def _serve_two(tmp_path, port: int, api_url: str, output=subprocess.DEVNULL, database: str = "postgresql",
               **env_extra: str) -> subprocess.Popen:
    """`renkei serve --processes 2` on a fresh database, PostgreSQL or a
    SQLite file (a pipe for `output` only if it is read: a full pipe would
    stop the server)."""
    if database == "postgresql":
        _fresh_postgres(PG_URL)
        url = PG_URL or ""
    else:
        url = f"sqlite:///{tmp_path / 'renkei.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "serve-secret", "RENKEI_SLACK_API_URL": api_url,
                "RENKEI_DATABASE_URL": url, "RENKEI_CONFIG": str(ROOT / "config"), **env_extra})
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--processes", "2"], cwd=tmp_path, env=env, text=True, stdout=output,
                            stderr=subprocess.STDOUT)


@contextmanager
def _stopped(pid: int):
    """The process paused (SIGSTOP) for the block: it accepts nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.skipif(not PG_URL, reason="several processes serve only on PostgreSQL")
def test_serving_processes_that_cannot_start_stop_the_service_with_an_error_and_leave_nothing(tmp_path):
    nobody = f"http://127.0.0.1:{_free_port()}/api/"  # Slack unreachable: auth.test fails in each process
    proc = _serve_two(tmp_path, _free_port(), nobody, output=subprocess.PIPE)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "before it was serving; stopping the others" in out
    started = re.findall(r"serving process (\d+) started", out)
    assert len(started) == 2 and not any(_running(int(pid)) for pid in started), out


@pytest.mark.skipif(not PG_URL, reason="several processes serve only on PostgreSQL")
def test_serving_processes_end_when_their_parent_is_killed(tmp_path, fake):
    port = _free_port()
    proc = _serve_two(tmp_path, port, fake.api_url)
    try:
        serving = _until(lambda: len(kids := children_of(proc.pid)) == 2 and kids)
        _until(lambda: _healthy(port))
    finally:
        proc.kill()  # no handler runs: nothing in the parent can stop them
        proc.wait(timeout=10)
    _until(lambda: not any(_running(pid) for pid in serving), timeout=15)
    assert not _healthy(port)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever inherited it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_waitress_queue_warnings_come_through_once_a_minute_with_a_count():
    import logging

    from bot.serve import OnceAMinute

    shown: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    logger = logging.getLogger("test.waitress.queue")
    logger.propagate = False
    logger.addHandler(Keep())
    sampler = OnceAMinute(every_s=0.2)
    logger.addFilter(sampler)
    for depth in range(100):
        logger.warning("Task queue depth is %d", depth)
    time.sleep(0.25)
    logger.warning("Task queue depth is %d", 3)
    assert shown == ["Task queue depth is 0", "Task queue depth is 3 (and 99 such warnings since the last one shown)"]

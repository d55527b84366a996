"""`renkei serve` as a real process: migrations, HTTP, signatures, health."""

import http.client
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

from tests.conftest import ROOT
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

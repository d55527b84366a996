"""Round trip of a slash command over real HTTP (waitress on localhost),
signed as Slack signs it, with Bolt's default and with
process_before_response=True, and with the patient lookup index cached or
rebuilt per request, in one run.

    .venv/bin/python -m bench request
"""

from __future__ import annotations

import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import waitress.server
from slack_bolt import App

from bot.app import create_app
from bot.demo import load_town, seed
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.store import queries
from bot.store.db import session_scope, upgrade
from bot.store.models import Patient
from bot.web import make_wsgi
from tests.slackfake import FakeSlack
from tests.slackreq import sign

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
N = 300


def _serve(wsgi):
    server = waitress.server.create_server(wsgi, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    return server


def _measure(port: int, command: str, text: str, n: int = N, before_each=None) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    timings = []
    for i in range(n):
        if before_each:
            before_each()
        body = urlencode({"command": command, "text": text, "user_id": "U0DEMOCM1", "user_name": "cm",
                          "channel_id": "C0TEAM", "trigger_id": f"bench.{time.time_ns()}.{i}",
                          "response_url": "http://127.0.0.1:9/r", "team_id": "T1"}).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(SECRET, body, ts)}
        start = time.perf_counter()
        conn.request("POST", "/slack/events", body, headers)
        response = conn.getresponse()
        response.read()
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status == 200, response.status
    conn.close()
    return timings


def _add_patients(runtime: Runtime, count: int) -> None:
    now = runtime.clock()
    with session_scope(runtime.engine) as session:
        for i in range(count):
            queries.insert_patient(session, Patient(code="", name=f"患者{i:04d} 花子", kana=f"カンジャ{i:04d} ハナコ",
                                                    created_at=now))


def _figures(label: str, timings: list[float]) -> str:
    timings = sorted(timings[20:])  # drop warm-up
    p99 = timings[int(len(timings) * 0.99) - 1]
    return f"{label:<58} p50 {statistics.median(timings):6.2f} ms   p99 {p99:6.2f} ms"


def main() -> None:
    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite:///{tmp}/bench.db", slack_signing_secret=SECRET,
                                 slack_bot_token="xoxb-bench", slack_api_url=fake.api_url,
                                 config_dir=ROOT / "config")
        runtime = Runtime.build(settings)
        upgrade(runtime.engine)
        seed(runtime, load_town(ROOT / "config" / "demo" / "town.yaml"))

        ours = _serve(make_wsgi(create_app(settings, runtime), runtime))
        default_app = App(client=create_app(settings, runtime).client, signing_secret=SECRET,
                          token_verification_enabled=False)
        from bot.slack import register

        register(default_app, runtime)
        default = _serve(make_wsgi(default_app, runtime))

        print(_figures("/patient list, process_before_response=True (ours)", _measure(ours.effective_port, "/patient", "list")))
        print(_figures("/patient list, Bolt defaults", _measure(default.effective_port, "/patient", "list")))
        print(_figures("/liaison 山田 <text> (stores a note), ours", _measure(ours.effective_port, "/liaison", "山田 定期訪問、変わりなし")))

        _add_patients(runtime, 2000)
        show = ("/patient", "show やまだ たろう")
        print(_figures("/patient show, 2,003 patients, cached lookup index", _measure(ours.effective_port, *show)))
        print(_figures("/patient show, 2,003 patients, index rebuilt per request",
                       _measure(ours.effective_port, *show, before_each=queries._indexes.clear)))
        runtime.wait_idle()
        ours.close()
        default.close()
    fake.stop()

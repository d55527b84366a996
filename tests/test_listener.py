"""Serving processes that share one listening socket share its
connections out evenly (`bot.listener`)."""

import http.client
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

from bot.listener import FRESH_S, Connections, SharedListener
from bot.prefork import children_of
from tests.conftest import ROOT
from tests.test_serve import _free_port, _until

# Two serving processes as `renkei serve --processes 2` runs them (prefork,
# the shared listener, the bot's waitress server), each answering with its pid.
_SERVE_TWO = textwrap.dedent("""
    import os, sys
    from bot import listener, prefork
    from bot.serve import http_server

    def pid(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]

    def serve(ready, listening):
        server = http_server(pid, listening)
        ready()
        server.run()

    sys.exit(prefork.supervise(2, listener.listen("127.0.0.1", int(sys.argv[1])), serve))
""")


def _answering_pid(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/")
    response = conn.getresponse()
    return int(response.read())


def test_a_process_holding_more_connections_lets_the_other_take_the_new_ones():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVE_TWO, str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    connections: list[http.client.HTTPConnection] = []

    def connected() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connections.append(conn)
        return _answering_pid(conn)  # kept open, as a client with keep-alive does

    try:
        first, second = _until(lambda: len(kids := children_of(proc.pid)) == 2 and kids)
        _until(lambda: _answers(port))
        # While the second is stopped the first takes every connection, and
        # keeps them: it then holds six, the second none.
        os.kill(second, signal.SIGSTOP)
        try:
            assert {connected() for _ in range(6)} == {first}
        finally:
            os.kill(second, signal.SIGCONT)
        time.sleep(0.2)
        # Left to the kernel, the new ones would go either way; the first
        # defers to the second until they hold about as many.
        new = Counter(connected() for _ in range(8))
        assert new[second] >= 7, new
    finally:
        for conn in connections:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _answers(port: int) -> bool:
    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        _answering_pid(probe)
        probe.close()
        return True
    except OSError:
        return False


def test_a_process_is_deferred_to_once_serving_and_while_its_count_is_fresh(monkeypatch):
    """Not while it starts (its bot not yet built), nor once its count is
    old: it may be stuck, and every accept of the others would wait for it."""
    import socket

    import bot.listener as listener

    now = [1000.0]
    monkeypatch.setattr(listener.time, "monotonic", lambda: now[0])
    connections = Connections(2)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        starting = SharedListener(sock, connections, 0)
        assert connections.fewest_besides(1) is None
        starting.serving(lambda: 3)
        assert connections.fewest_besides(1) == 3
        now[0] += FRESH_S + 0.1
        assert connections.fewest_besides(1) is None
        connections.say(0, 2)
        assert connections.fewest_besides(1) == 2 and connections.fewest_besides(0) is None
        connections.vacate(0)
        assert connections.fewest_besides(1) is None
        starting.close()

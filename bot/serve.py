"""`renkei serve`: a serving process and what it does at start (the bot,
its scheduler, its caches, its memory), over HTTP (one process, or
several on one port: `bot.prefork`) or Socket Mode."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable

from bot import listener, prefork
from bot.runtime import Runtime
from bot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt import App

log = logging.getLogger("renkei")
WARM_UP_DEADLINE = 120.0  # seconds per statement for the caches filled at start-up


def http(settings: Settings, host: str, port: int, processes: int) -> int:
    """Serve POST /slack/events and GET /healthz until stopped."""
    sock = listener.listen(host, port)
    log.info("POST /slack/events and GET /healthz on %s:%s, %d serving process%s", host, port,
             processes, "" if processes == 1 else "es")
    if processes == 1:
        _start_and_serve_http(settings, sock, ready=lambda: None)
        return 0
    return prefork.supervise(processes, sock, lambda ready, listening: _start_and_serve_http(settings, listening, ready))


def socket_mode(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app, _runtime = start_bot(settings)
    log.info("Socket Mode")
    SocketModeHandler(app, settings.slack_app_token).start()


def start_bot(settings: Settings) -> tuple[App, Runtime]:
    """One serving process's bot: its connections, its Slack client, its
    scheduler and caches. Opens nothing before this point, so a process
    forked by `--processes` starts it afresh."""
    from bot.app import create_app

    limit_malloc_arenas()
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    identity = app.client.auth_test()
    log.info("connected to Slack as %s in %s", identity.get("user"), identity.get("team"))
    _start_scheduler(runtime, app.client)
    warm_caches(runtime, then=settle_heap)
    return app, runtime


class OnceAMinute(logging.Filter):
    """Lets a logger's warnings through once a minute, the first one saying
    how many were held back since the last. waitress warns of its task
    queue on every request that finds its threads busy: under 16 clients,
    thousands of lines that buried anything else in the log."""

    def __init__(self, every_s: float = 60.0):
        super().__init__()
        self.every_s = every_s
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return False
            held, self._held, self._next = self._held, 0, now + self.every_s
        if held:
            record.msg = f"{record.msg} (and {held} such warnings since the last one shown)"
        return True


def _start_and_serve_http(settings: Settings, sock, ready: Callable[[], None]) -> None:
    from bot.web import make_wsgi

    logging.getLogger("waitress.queue").addFilter(OnceAMinute())
    app, runtime = start_bot(settings)
    server = http_server(make_wsgi(app, runtime), sock)
    ready()
    server.print_listen("Serving on http://{}:{}")
    server.run()


def http_server(wsgi, sock):
    """waitress serving `wsgi` on the listening socket `sock`, which it may
    share with other serving processes (`listener.SharedListener`: it is
    told how many connections this server holds open)."""
    import waitress

    from bot.web import MAX_BODY

    # waitress reads a body whole before the app sees it: its own limit
    # refuses an oversized one at the socket (413), not only in memory.
    server = waitress.create_server(wsgi, sockets=[sock], threads=8, ident="renkei", max_request_body_size=MAX_BODY)
    if isinstance(sock, listener.SharedListener):
        sock.serving(lambda: len(server.active_channels))
    return server


def migrate_in_child() -> None:
    """`renkei db upgrade` in a short-lived process of its own (same
    environment, same folder): the serving process then never loads
    Alembic, about 10 MB it would otherwise keep for its whole life."""
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"renkei db upgrade failed (exit {done.returncode}); see the lines above")


def _start_scheduler(runtime: Runtime, client) -> None:
    from bot import schedule
    from bot.slack.deliver import scheduler_sender

    schedule.start(runtime, scheduler_sender(runtime, client))
    log.info("scheduler: one tick a minute")


def warm_caches(runtime: Runtime, then: Callable[[], None] = lambda: None) -> None:
    # Off the request path: the service answers at once, the caches fill
    # behind (the patient index of 100,000 takes about a second to build).
    # Reads only: on SQLite a write transaction would wait for the first
    # tick, which may write for seconds after days down, and give up. No
    # one waits for them, so they are not held to a request's limit: a
    # year's notes counted on a loaded machine outlasted it, leaving the
    # count to the first /plan indicators, within that limit.
    # Then `then` (`renkei serve`: settle the heap, the caches with it) and
    # a line logged (the benchmark measures from it: before, its first row
    # met the warm-up).
    from bot.plan import indicators
    from bot.store.queries import patient_index

    settings = runtime.settings

    def fill() -> None:
        started = time.monotonic()
        try:
            runtime.in_session(patient_index, reads_only=True, deadline=WARM_UP_DEADLINE)
            runtime.in_session(indicators.warm, runtime.clock(), settings.tz, settings.team.vacancy.freshness_hours,
                               reads_only=True, deadline=WARM_UP_DEADLINE)
        finally:
            then()
        log.info("caches filled in %.1f s (patient index, plan indicators)", time.monotonic() - started)

    runtime.after(fill)


def settle_heap() -> None:
    """Move what start-up made (templates, forms, mappers, lookup indexes)
    out of the garbage collector's generations: a full collection during a
    request would otherwise walk all of it (half of /plan's time with a
    5,000-task plan)."""
    import gc

    gc.collect()
    gc.freeze()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Ask glibc for at most `arenas` malloc arenas. By default it makes up
    to eight per core as threads appear (waitress's eight, the scheduler's,
    the background posts'), and memory freed in one arena is not reused by
    another: under 16 clients that grew the process by about 24 MB for no
    speed we could measure (same as `MALLOC_ARENA_MAX=2`, which only works
    if set before the process starts). Must run before the threads start.
    False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    M_ARENA_MAX = -8  # glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False

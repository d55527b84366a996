"""Several serving processes on one listening socket (`renkei serve
--processes N`).

One Python process serves on one core at a time (one GIL): under 16
clients its requests queue for that core. Several processes that accept
from one socket, as gunicorn's workers do, use every core without a load
balancer in front. Each process is a whole bot (its own connections,
caches, scheduler); what they share is the database, which already keeps
them apart: idempotency keys, the scheduler's leased claims and the
tables' versions are rows, not memory (tests/test_two_processes.py).

The parent only watches: it forks before it opens any connection or
starts any thread (a fork copies only the thread that calls it, and a
pooled connection must never be used by two processes), starts a
process again when one dies, and stops them all on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import traceback
from typing import Callable

log = logging.getLogger("renkei.prefork")

_STOPS = {signal.SIGTERM, signal.SIGINT}
# Between two starts of a process that died after it was serving: a
# process that keeps dying must not turn the parent into a fork loop.
RESTART_PAUSE_S = 1.0


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket every serving process accepts from."""
    sock = socket.create_server((host, port), backlog=backlog)
    sock.set_inheritable(True)
    return sock


def _run_child(serve: Callable[[Callable[[], None]], None], ready_fd: int) -> None:
    """In the forked child: serve until stopped, never return into the
    parent's code (its loop and its signal handlers are not ours)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)

    def ready() -> None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)

    code = 0
    try:
        serve(ready)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        code = 0
    except BaseException:  # noqa: BLE001 - the child's last word, then it exits
        traceback.print_exc()
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def supervise(count: int, serve: Callable[[Callable[[], None]], None]) -> int:
    """Fork `count` processes that each call `serve(ready)`, where `ready()`
    says it has started and is about to serve; keep `count` alive until
    SIGTERM or SIGINT, then stop them and return 0. Returns 1 if a process
    ends before it was ready (a wrong token, a database it cannot reach:
    starting it again would only repeat the error, and a half-started
    service would hide it), after stopping the others."""
    children: dict[int, int] = {}  # pid -> the read end of its ready pipe
    stopping = False

    def start() -> None:
        # Held back across the fork: the child must not run the parent's
        # handler (it would signal its siblings), and the parent must know
        # the new pid before a stop looks for it.
        readable, writable = os.pipe()
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(readable)
                _run_child(serve, writable)
            os.close(writable)
            children[pid] = readable
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        log.info("serving process %d started (%d of %d)", pid, len(children), count)

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in _STOPS}
    failed = False
    try:
        for _ in range(count):
            start()
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            readable = children.pop(pid, None)
            if readable is None:
                continue
            was_ready = _was_ready(readable)
            if stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if not was_ready:
                log.error("serving process %d ended %s before it was serving; stopping the others",
                          pid, _how(code))
                failed = True
                stop(None, None)
                continue
            log.warning("serving process %d ended %s; starting another", pid, _how(code))
            time.sleep(RESTART_PAUSE_S)
            if not stopping:
                start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 1 if failed else 0


def _was_ready(readable: int) -> bool:
    """Whether the ended process said it was ready: its byte is in the pipe
    (the pipe's other end closed when the process ended, so this never
    waits)."""
    try:
        return os.read(readable, 1) == b"r"
    finally:
        os.close(readable)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _how(code: int) -> str:
    return f"with exit code {code}" if code >= 0 else f"by signal {signal.Signals(-code).name}"

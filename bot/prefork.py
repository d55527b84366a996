"""Several serving processes on one listening socket (`renkei serve
--processes N`).

One Python process serves on one core at a time (one GIL): under 16
clients its requests queue for that core. Several processes that accept
from one socket, as gunicorn's workers do, use every core without a load
balancer in front (`bot.listener` decides which accepts a connection).
Each process is a whole bot (its own connections, caches, scheduler);
what they share is the database, which already keeps them apart:
idempotency keys, the scheduler's leased claims and the tables' versions
are rows, not memory (tests/test_two_processes.py), and on SQLite the
write turn is a lock on a file (`bot.store.sqlite`).

The parent only watches: it forks before it opens any connection or
starts any thread (a fork copies only the thread that calls it, and a
pooled connection must never be used by two processes), starts a
process again when one dies, and stops them all on SIGTERM or SIGINT.
The children end with it however it ends (Linux: the parent's death
signals them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import time
import traceback
from typing import Callable

from bot.listener import Connections, SharedListener

log = logging.getLogger("renkei.prefork")

_STOPS = {signal.SIGTERM, signal.SIGINT}
# Waits before starting again a process that died after it was serving,
# doubling while its replacements keep dying before they are ready (Slack
# or the database away for a while): a service that keeps failing must
# neither give up on its first hiccup nor become a fork loop.
RESTART_PAUSES_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)

# serve(ready, listening): build the bot, call ready(), serve on `listening` until stopped
Serve = Callable[[Callable[[], None], socket.socket], None]


def children_of(pid: int) -> list[int]:
    """The processes `pid` started that are still running (Linux)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def supervise(count: int, sock: socket.socket, serve: Serve) -> int:
    """Fork `count` processes that each call `serve(ready, listening)`, the
    listening socket `sock` as that process shares it; keep `count`
    alive until SIGTERM or SIGINT, then stop them and return 0.

    A process that ends before it called `ready()` in the first start
    (a wrong token, Slack unreachable: starting it again would only repeat
    the error, and a half-started service would hide it) stops the others
    and supervise returns 1. A replacement that ends before it is ready is
    tried again after a longer pause, as is one that ends later."""
    children: dict[int, int] = {}  # pid -> the read end of its ready pipe
    slots: dict[int, int] = {}  # pid -> its slot in `connections`
    connections = Connections(count)
    stopping = False

    def start() -> None:
        slot = min(set(range(count)) - set(slots.values()))
        readable, writable = os.pipe()
        parent = os.getpid()
        # Held back across the fork: the child must not run the parent's
        # handler (it would signal its siblings); it takes them back once
        # its own handlers are in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(readable)
                for other in children.values():
                    os.close(other)
                _run_child(lambda ready: serve(ready, SharedListener(sock, connections, slot)), writable, parent)
            os.close(writable)
            children[pid] = readable
            slots[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        if stopping:  # a stop that came while this one was being forked did not see it
            _signal(pid, signal.SIGTERM)
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
            if stopping:
                break
            start()
        first_batch = set(children)
        pauses = 0  # replacements in a row that ended before they were ready
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            readable = children.pop(pid, None)
            if readable is None:
                continue
            connections.vacate(slots.pop(pid))  # a count it said is no process's to defer to
            was_ready = _was_ready(readable)
            if stopping:
                continue
            how = _how(os.waitstatus_to_exitcode(status))
            if not was_ready and pid in first_batch:
                log.error("serving process %d ended %s before it was serving; stopping the others", pid, how)
                failed = True
                stop(None, None)
                continue
            pauses = 0 if was_ready else pauses + 1
            pause = RESTART_PAUSES_S[min(pauses, len(RESTART_PAUSES_S) - 1)]
            log.warning("serving process %d ended %s%s; starting another in %.0f s", pid, how,
                        "" if was_ready else " before it was serving", pause)
            time.sleep(pause)
            if not stopping:
                start()
    except BaseException:
        # The parent's own failure: the children must not serve on unwatched.
        stop(None, None)
        _reap(children)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 1 if failed else 0


def _run_child(serve: Callable[[Callable[[], None]], None], ready_fd: int, parent: int) -> None:
    """In the forked child: serve until stopped, never return into the
    parent's code (its loop and its signal handlers are not ours)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _end_with_parent(parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)

    def ready() -> None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)

    code = 0
    try:
        serve(ready)
    except SystemExit as e:
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    except KeyboardInterrupt:
        code = 0
    except BaseException:  # noqa: BLE001 - the child's last word, then it exits
        traceback.print_exc()
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _end_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, however
    it dies (a SIGKILL runs no handler that could stop the children): an
    orphan would keep the port, its connections and its scheduler."""
    PR_SET_PDEATHSIG = 1  # linux/prctl.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _was_ready(readable: int) -> bool:
    """Whether the ended process said it was ready: its byte is in the pipe
    (the pipe's other end closed when the process ended, so this never
    waits)."""
    try:
        return os.read(readable, 1) == b"r"
    finally:
        os.close(readable)


def _reap(children: dict[int, int], wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while children and time.monotonic() < deadline:
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                os.close(children.pop(pid))
        time.sleep(0.05)
    for pid in children:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _how(code: int) -> str:
    if code >= 0:
        return f"with exit code {code}"
    try:
        return f"by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"by signal {-code}"

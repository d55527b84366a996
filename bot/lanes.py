"""Background work: what is still in flight, and jobs that must not
overtake each other.

`InFlight` keeps the futures of work given to a pool until each is done,
so a caller can wait for what it started (shutdown, tests).

Jobs given the same key (a lane) run one at a time, in the order they were
submitted; jobs of different lanes run side by side on the pool's threads.
A lane's answers to one person stay in the order of their presses, and one
slow message does not hold up everybody else's.

`latest_only` is for jobs that each redraw the whole of one thing (a
message): a newer one makes those still waiting pointless, so they are
dropped and a burst of sixteen presses on one announcement redraws it once
or twice instead of sixteen times.

`PacedLanes` are lanes that also keep a pace per key (posts to one
channel, one a second): a key's next job is handed to the pool only when
the key may take it, so no thread sleeps out the pace while other keys'
jobs wait behind it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future, wait
from typing import Callable, Hashable

log = logging.getLogger(__name__)


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: set[Future] = set()

    def add(self, future: Future) -> None:
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def wait(self, timeout: float = 10.0) -> None:
        """Until everything in flight now is done."""
        with self._lock:
            futures = list(self._futures)
        wait(futures, timeout=timeout)


class Lanes:
    def __init__(self, pool: Executor):
        self._pool = pool
        self._lock = threading.Lock()
        self._queued: dict[Hashable, deque[Callable[[], None]]] = {}  # a key is here while its lane runs
        self._runners = InFlight()

    def submit(self, key: Hashable, job: Callable[[], None], latest_only: bool = False) -> None:
        """Queue `job` behind the lane's earlier jobs, starting the lane's
        runner if none is on its way."""
        with self._lock:
            queued = self._queued.get(key)
            if queued is not None:
                if latest_only:
                    queued.clear()
                queued.append(job)
                return
            self._queued[key] = deque([job])
            self._runners.add(self._pool.submit(self._run, key))

    def _run(self, key: Hashable) -> None:
        while True:
            with self._lock:
                queued = self._queued[key]
                if not queued:
                    del self._queued[key]
                    return
                job = queued.popleft()
            try:
                job()
            except Exception:  # the lane goes on: a later job may still succeed
                log.exception("background job failed")

    def waiting(self, key: Hashable) -> bool:
        """Whether a job of this lane waits behind the one running."""
        with self._lock:
            return bool(self._queued.get(key))

    def wait(self, timeout: float = 10.0) -> None:
        """Until every lane that is running now has run dry."""
        self._runners.wait(timeout)


ReadyAt = Callable[[Hashable], float]  # when (time.monotonic) the key may start its next job


class PacedLanes:
    """Jobs per key, one at a time and in order, each started no sooner
    than `ready_at(key)`, asked when the job before it has ended (it may
    have booked the key's next turn itself). A key waiting for its turn is
    held by one timer thread, not by a pool thread: before, the posting
    threads each slept out one channel's pace, and a post to any other
    channel waited until one of them woke (a backlog of minutes behind a
    burst of notes to one channel)."""

    def __init__(self, pool: Executor):
        self._pool = pool
        self._cond = threading.Condition()
        self._queued: dict[Hashable, deque[Callable[[], None]]] = {}  # a key is here while it has work
        self._ready_at: dict[Hashable, ReadyAt] = {}
        self._timers: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._timer: threading.Thread | None = None

    def submit(self, key: Hashable, job: Callable[[], None], ready_at: ReadyAt) -> None:
        with self._cond:
            self._ready_at[key] = ready_at
            queued = self._queued.get(key)
            if queued is not None:
                queued.append(job)
                return
            self._queued[key] = deque([job])
            self._schedule_or_drop(key)

    def _schedule_or_drop(self, key: Hashable) -> None:
        """`_next_of`, or, if the key's turn cannot be told, drop its jobs:
        a key left queued with nothing scheduled would take no job again."""
        try:
            self._next_of(key)
        except Exception:
            log.exception("could not schedule %s: its jobs are dropped", key)
            del self._queued[key], self._ready_at[key]
            self._cond.notify_all()

    def _next_of(self, key: Hashable) -> None:
        """Start the key's next job now, or set a timer for its turn (holding the lock)."""
        at = self._ready_at[key](key)
        if at <= time.monotonic():
            self._hand_over(key)
            return
        heapq.heappush(self._timers, (at, next(self._order), key))
        if self._timer is None:
            self._timer = threading.Thread(target=self._wake_in_turn, name="renkei-paced", daemon=True)
            self._timer.start()
        self._cond.notify_all()

    def _hand_over(self, key: Hashable) -> None:
        """The key's next job to the pool (holding the lock)."""
        try:
            self._pool.submit(self._run_one, key)
        except RuntimeError as e:
            if "cannot schedule new futures" not in str(e):
                # A new thread could not start, but the job is queued all the
                # same: it runs when one of the pool's threads is free.
                log.warning("no new thread for %s (%s): its job waits for a running one", key, e)
                return
            dropped = self._queued.pop(key, ())  # the pool was shut down: the process is stopping
            self._ready_at.pop(key, None)
            log.warning("stopping: %d job(s) for %s not run", len(dropped), key)
            self._cond.notify_all()

    def _run_one(self, key: Hashable) -> None:
        with self._cond:
            job = self._queued[key].popleft()
        try:
            job()
        except Exception:  # the key goes on: a later job may still succeed
            log.exception("background job failed")
        finally:
            self._after_one(key)

    def _after_one(self, key: Hashable) -> None:
        with self._cond:
            if self._queued[key]:
                self._schedule_or_drop(key)
            else:
                del self._queued[key], self._ready_at[key]
                self._cond.notify_all()

    def _wake_in_turn(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _at, _n, key = heapq.heappop(self._timers)
                    self._hand_over(key)
                self._cond.wait(self._timers[0][0] - now if self._timers else None)

    def wait(self, timeout: float = 10.0) -> None:
        """Until every key with work now has run dry."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

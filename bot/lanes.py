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

A lane may also keep a pace (`ready_at`: posts to one channel, one a
second): its next job is handed to the pool only when the lane may take it.
One timer thread (`bot.timers`) holds the lanes waiting for their turn, so no pool thread
sleeps out a pace while other lanes' jobs wait behind it: before, the
posting threads each slept out one channel's pace, and a post to any other
channel waited until one of them woke (a backlog of minutes behind a burst
of notes to one channel).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future, wait
from typing import Callable, Hashable

from bot.timers import Timers

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


ReadyAt = Callable[[Hashable], float]  # when (time.monotonic) the lane may start its next job


def _now(_key: Hashable) -> float:
    return 0.0


class Lanes:
    def __init__(self, pool: Executor):
        self._pool = pool
        self._cond = threading.Condition()
        self._queued: dict[Hashable, deque[Callable[[], None]]] = {}  # a key is here while its lane has work
        self._ready_at: dict[Hashable, ReadyAt] = {}
        self._turns = Timers(self._cond, self._hand_over, "renkei-paced")

    def submit(self, key: Hashable, job: Callable[[], None], latest_only: bool = False,
               ready_at: ReadyAt | None = None) -> None:
        """Queue `job` behind the lane's earlier jobs (instead of those still
        waiting, with `latest_only`); it starts no sooner than `ready_at(key)`,
        asked when the job before it has ended (which may have booked the
        lane's next turn itself)."""
        with self._cond:
            self._ready_at[key] = ready_at or _now
            queued = self._queued.get(key)
            if queued is not None:
                if latest_only:
                    queued.clear()
                queued.append(job)
                return
            self._queued[key] = deque([job])
            self._schedule_or_drop(key)

    def _schedule_or_drop(self, key: Hashable) -> None:
        """`_next_of`, or, if the lane's turn cannot be told, drop its jobs:
        a lane left queued with nothing scheduled would take no job again."""
        try:
            self._next_of(key)
        except Exception:
            log.exception("could not schedule %s: its jobs are dropped", key)
            del self._queued[key], self._ready_at[key]
            self._cond.notify_all()

    def _next_of(self, key: Hashable) -> None:
        """Start the lane's next job now, or set a timer for its turn (holding the lock)."""
        at = self._ready_at[key](key)
        if at <= time.monotonic():
            self._hand_over(key)
        else:
            self._turns.push(at, key)

    def _hand_over(self, key: Hashable) -> None:
        """The lane's next job to the pool (holding the lock)."""
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
        except Exception:  # the lane goes on: a later job may still succeed
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

    def waiting(self, key: Hashable) -> bool:
        """Whether a job of this lane waits behind the one running."""
        with self._cond:
            return bool(self._queued.get(key))

    def wait(self, timeout: float = 10.0) -> None:
        """Until every lane with work now has run dry."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

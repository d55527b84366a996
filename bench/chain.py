"""The audit chain under concurrent writers: quick notes stored through
`Runtime.handle` (no HTTP, no Slack) by 16 threads of one process and, on
PostgreSQL, by two processes of 8 threads on one database, which is where
the chain's lock is shared. Prints notes per second, each note's p50/p99
and CPU, and checks the whole chain as `renkei audit verify` does.

    .venv/bin/python -m bench chain
    RENKEI_BENCH_DATABASE_URL=postgresql://... .venv/bin/python -m bench chain   # and PostgreSQL
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time

from bench._common import CONFIG, on_each_database
from bot.demo import load_town, seed
from bot.people import Handle
from bot.privacy import verify_chain
from bot.requests import COMMAND, Request, Who
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.store.db import make_engine, session_scope, upgrade

THREADS = 16
NOTES = 60  # per thread
WARM = 20


def _writers(url: str, threads: int, tag: str, start_at: float) -> tuple[float, float, list[float]]:
    """(wall s, CPU s, each note's ms) of `threads` threads storing NOTES each."""
    runtime = Runtime.build(load_settings(database_url=url, config_dir=CONFIG))
    timings: list[float] = []
    lock = threading.Lock()

    def write(n: int, count: int, keep: bool) -> None:
        mine = []
        for i in range(count):
            who = Who(handle=Handle("slack", "U0DEMOCM1"), request_key=f"chain.{tag}.{n}.{i}.{keep}")
            t0 = time.perf_counter()
            reply = runtime.handle(who, Request(COMMAND, "/liaison", f"山田 連鎖の計測 {tag}-{n}-{i}"))
            mine.append((time.perf_counter() - t0) * 1000)
            if reply.error:
                raise RuntimeError(f"a note was refused: {reply.template} {reply.values}")
        if keep:
            with lock:
                timings.extend(mine)

    write(-1, WARM, False)
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=write, args=(n, NOTES, True)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    runtime.background.shutdown(wait=False)
    runtime.engine.dispose()
    return wall, cpu, timings


def _in_child(url: str, threads: int, tag: str, start_at: float, out) -> None:
    out.put(_writers(url, threads, tag, start_at))


def _line(label: str, processes: int, results: list[tuple[float, float, list[float]]]) -> str:
    every = sorted(ms for _w, _c, timings in results for ms in timings)
    notes = len(every)
    wall = max(w for w, _c, _t in results)
    cpu = sum(c for _w, c, _t in results)
    p99 = every[max(0, int(notes * 0.99) - 1)]
    return (f"{label:<11} {processes} x {THREADS // processes:>2} threads: {notes / wall:6.0f} notes/s, "
            f"p50 {statistics.median(every):6.1f} ms, p99 {p99:6.1f} ms, CPU {cpu * 1000 / notes:.2f} ms a note")


def run(url: str, label: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    seed(Runtime.build(load_settings(database_url=url, config_dir=CONFIG)), load_town(CONFIG / "demo" / "town.yaml"))
    print(_line(label, 1, [_writers(url, THREADS, "one", 0.0)]), flush=True)
    if label != "SQLite":  # SQLite serves from one process
        fork = multiprocessing.get_context("fork")
        out = fork.Queue()
        start_at = time.time() + 8  # both warmed up by then
        children = [fork.Process(target=_in_child, args=(url, THREADS // 2, f"two{p}", start_at, out))
                    for p in range(2)]
        for child in children:
            child.start()
        results = [out.get() for _ in children]
        for child in children:
            child.join()
        print(_line(label, 2, results), flush=True)
    with session_scope(make_engine(url)) as session:
        count, broken = verify_chain(session)
    print(f"{label:<11} audit chain: {count:,} rows, {'whole' if broken is None else f'BROKEN at row {broken}'}")


def main() -> None:
    on_each_database(run)


if __name__ == "__main__":
    main()

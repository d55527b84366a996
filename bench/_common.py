"""What every benchmark shares: run on a temporary SQLite file and, when
RENKEI_BENCH_DATABASE_URL is set, on that PostgreSQL database (its public
schema is dropped!); and p50/p99 of a timed function."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlalchemy import text

from bot.runtime import Runtime
from bot.settings import load_settings
from bot.store.db import make_engine, upgrade

CONFIG = Path(__file__).resolve().parent.parent / "config"


def on_each_database(run: Callable[[str, str], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite")
    url = os.environ.get("RENKEI_BENCH_DATABASE_URL")
    if url:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        run(url, "PostgreSQL")


def timed(fn: Callable[[int], object], runs: int) -> tuple[float, float]:
    """(p50, p99) in milliseconds of `fn(i)` for i in range(runs)."""
    timings = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return statistics.median(timings), timings[max(0, int(len(timings) * 0.99) - 1)]


def bench_runtime(url: str, now: datetime) -> Runtime:
    """A migrated database and a runtime whose clock stands still at `now`;
    `runtime.engine` is what the benchmark fills."""
    engine = make_engine(url)
    upgrade(engine)
    return Runtime.build(load_settings(database_url=url, config_dir=CONFIG), clock=lambda: now, engine=engine)


def stop(runtime: Runtime) -> None:
    runtime.background.shutdown()
    runtime.engine.dispose()

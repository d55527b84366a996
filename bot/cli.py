"""The `renkei` command: serve, console, run, demo, db, import, audit, jobs."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from datetime import datetime, time
from pathlib import Path

from bot.people import Handle
from bot.render import render_text
from bot.replies import Reply
from bot.requests import Who
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.store import db

log = logging.getLogger("renkei")
DEMO_DATABASE = "sqlite:///renkei-demo.db"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="renkei", description="在宅医療・介護連携 Slack bot")
    sub = parser.add_subparsers(dest="cmd", required=True)

    for name, help_ in (("run", "serve Slack if credentials are set, else the demo console"),
                        ("serve", "apply migrations and serve Slack (HTTP or Socket Mode)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--host", default="0.0.0.0")
        p.add_argument("--port", type=int, default=3000)
        p.add_argument("--processes", type=int, default=None,
                       help="serving processes on the one port (about one per core; "
                            "default RENKEI_PROCESSES or 1)")
    p = sub.add_parser("console", help="type commands as in Slack, read replies as text")
    p.add_argument("--user", default=None, help="Slack user id to act as")
    p.add_argument("--demo", action="store_true", help="use the demo town database")
    p = sub.add_parser("demo", help="fill the database with the demo town (if empty)")
    p.add_argument("--reset", action="store_true",
                   help="start the console's demo database (renkei-demo.db) afresh; never touches renkei.db")
    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p = sub.add_parser("export", help="export records (ical: every meeting; plan: the plan and its log)")
    p.add_argument("kind", choices=["ical", "plan"])
    p.add_argument("file", type=Path)
    p.add_argument("--year", type=int, default=None, help="fiscal year of the plan (default: this one)")
    p = sub.add_parser("import", help="import a CSV file (UTF-8 or Shift_JIS), or a plan YAML file")
    p.add_argument("kind", choices=["patients", "facilities", "plan"])
    p.add_argument("file", type=Path)
    p.add_argument("--year", type=int, default=None, help="fiscal year of a plan (default: this one)")
    p.add_argument("--as-user", default="CLI", help="actor recorded in the audit log")
    p = sub.add_parser("plan", help="the annual plan (rollover YEAR: start it from last year's)")
    p.add_argument("action", choices=["rollover"])
    p.add_argument("year", type=int)
    p = sub.add_parser("jobs", help="timed messages (the scheduler tick)")
    p.add_argument("action", choices=["run-due"])
    p.add_argument("--at", default=None, help="ISO instant, e.g. 2026-12-08T08:30+09:00 (default: now)")
    p = sub.add_parser("audit", help="the audit trail")
    p.add_argument("action", choices=["export", "verify"])
    p.add_argument("--since", default=None, help="YYYY-MM-DD (export)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")

    args = parser.parse_args(argv)
    settings = load_settings()
    # The console and one-shot commands print their own results; only the
    # server logs its progress.
    verbose = args.cmd == "serve" or (args.cmd == "run" and settings.has_slack_credentials)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)
    return {
        "run": cmd_run, "serve": cmd_serve, "console": cmd_console, "demo": cmd_demo, "db": cmd_db,
        "import": cmd_import, "export": cmd_export, "plan": cmd_plan, "audit": cmd_audit, "jobs": cmd_jobs,
    }[args.cmd](settings, args)


def _runtime(settings: Settings) -> Runtime:
    """For a one-shot command: unlike the bot's (`Runtime.build`'s own
    engine, every database wait bounded to answer within Slack's 3 s), an
    export or `audit verify` over millions of rows may take the time it needs."""
    runtime = Runtime.build(settings, engine=db.make_engine(settings.database_url))
    db.upgrade(runtime.engine)
    return runtime


def cmd_run(settings: Settings, args) -> int:
    if settings.has_slack_credentials:
        return cmd_serve(settings, args)
    args.user, args.demo = None, True
    return cmd_console(settings, args)


def cmd_serve(settings: Settings, args) -> int:
    from bot import serve

    if not settings.has_slack_credentials:
        print("SLACK_BOT_TOKEN と SLACK_SIGNING_SECRET を設定してください（README「Slack の設定」）。", file=sys.stderr)
        return 2
    processes = args.processes if args.processes is not None else settings.processes
    if processes > 1 and settings.slack_app_token:
        print("Socket Mode は 1 プロセスで動かします（--processes は HTTP で受けるときだけ）。", file=sys.stderr)
        return 2
    if processes < 1:
        print("--processes は 1 以上にしてください。", file=sys.stderr)
        return 2
    serve.migrate_in_child()
    if settings.slack_app_token:
        serve.socket_mode(settings)
        return 0
    if processes > 1:
        settings = settings.model_copy(update={"processes": processes})  # each knows it shares the database
        for handler in logging.getLogger().handlers:  # whose line is whose
            handler.setFormatter(logging.Formatter(LOG_FORMAT.replace("%(name)s", "%(name)s[%(process)d]")))
    return serve.http(settings, args.host, args.port, processes)


def cmd_plan(settings: Settings, args) -> int:
    """`renkei plan rollover 2027`: next year's plan from this year's
    recurring and unfinished tasks."""
    from bot.plan import tasks

    runtime = _runtime(settings)
    outcome = {}

    def action(ctx):
        outcome["copied"], outcome["skipped"] = tasks.rollover(ctx, args.year)
        return Reply()

    if not _run_as_cli(runtime, action, "CLI"):
        return 1
    print(f"{args.year}年度の計画に {outcome['copied']}件を引き継ぎました（完了済み・登録済みの {outcome['skipped']}件は除外）。")
    return 0


def cmd_export(settings: Settings, args) -> int:
    """`renkei export ical FILE`: every meeting of the last year and ahead;
    `renkei export plan --year 2026 FILE.csv|FILE.xlsx`: the plan and its log."""
    from bot.council import ical

    runtime = _runtime(settings)
    now = runtime.clock()
    if args.kind == "plan":
        from bot.plan import export
        from bot.plan.periods import fiscal_year

        year = args.year or fiscal_year(now.astimezone(settings.tz).date())
        with db.session_scope(runtime.engine) as session:
            task_rows, log_rows = export.rows(session, settings, year)
            trends = export.series(session, settings, year, now.astimezone(settings.tz).date(), now) \
                if args.file.suffix.lower() == ".xlsx" else []
        export.write(args.file, task_rows, log_rows, trends)
        print(f"{args.file} に{year}年度の計画 {len(task_rows)}件と完了の記録 {len(log_rows)}件を書き出しました。")
        return 0
    with db.session_scope(runtime.engine) as session:
        meetings = ical.all_meetings(session, now)
        args.file.write_bytes(ical.feed(meetings, now, settings.timezone))
    print(f"{args.file} に会議 {len(meetings)}件を書き出しました（iCalendar）。")
    return 0


def cmd_jobs(settings: Settings, args) -> int:
    """`renkei jobs run-due [--at T]`: exactly one scheduler tick at instant T."""
    from bot import schedule
    from bot.app import web_client
    from bot.slack.deliver import scheduler_sender

    if not settings.slack_bot_token:
        print("SLACK_BOT_TOKEN を設定してください（DM を送るため）。", file=sys.stderr)
        return 2
    try:
        at = datetime.fromisoformat(args.at) if args.at else None
    except ValueError:
        print(f"--at は ISO 形式で指定してください（例 2026-12-08T08:30+09:00）: {args.at}", file=sys.stderr)
        return 2
    runtime = _runtime(settings)
    if at is None:
        at = runtime.clock()
    elif at.tzinfo is None:
        at = at.replace(tzinfo=settings.tz)
    report = schedule.tick(runtime, at, scheduler_sender(runtime, web_client(settings)))
    runtime.background.shutdown(wait=True)
    print(f"run-due at {at.isoformat()}: {len(report.sent)} sent, {len(report.failed)} failed, "
          f"{len(report.skipped)} skipped (too late), {len(report.deferred)} deferred (quiet hours), "
          f"{len(report.taken)} already taken")
    for label, names in (("sent", report.sent), ("failed", report.failed), ("skipped", report.skipped)):
        for name in names:
            print(f"  {label}: {name}")
    return 1 if report.failed else 0


def _demo_settings(settings: Settings) -> tuple[Settings, dict]:
    from bot.demo import load_town

    town = load_town(settings.config_dir / "demo" / "town.yaml")
    admins = ",".join(filter(None, [settings.admins_csv, *town.get("admins", [])]))
    return settings.model_copy(update={"database_url": DEMO_DATABASE, "admins_csv": admins}), town


def cmd_console(settings: Settings, args) -> int:
    from bot.console import Console
    from bot.demo import seed

    user = args.user
    if args.demo:
        settings, town = _demo_settings(settings)
        runtime = _runtime(settings)
        seed(runtime, town)
        user = user or town.get("console_user")
    else:
        runtime = _runtime(settings)
    Console(runtime, user or "CONSOLE").loop()
    return 0


def cmd_demo(settings: Settings, args) -> int:
    from bot.demo import load_town, seed

    if args.reset:
        # Only ever the console's own demo database: never RENKEI_DATABASE_URL.
        settings, _town = _demo_settings(settings)
        demo_file = Path(DEMO_DATABASE[len("sqlite:///"):])
        for path in (demo_file, Path(f"{demo_file}-wal"), Path(f"{demo_file}-shm")):
            path.unlink(missing_ok=True)
    runtime = _runtime(settings)
    seeded = seed(runtime, load_town(settings.config_dir / "demo" / "town.yaml"))
    where = "the console's demo database (renkei-demo.db)" if args.reset else "the database"
    print(f"demo town loaded into {where}" if seeded else "database already has patients; nothing loaded")
    return 0


def cmd_db(settings: Settings, args) -> int:
    _runtime(settings)
    print("database is at the latest revision")
    return 0


def cmd_import(settings: Settings, args) -> int:
    from bot.csvfile import CsvError
    from bot.patients.importer import import_patients
    from bot.vacancy.importer import import_facilities

    runtime = _runtime(settings)
    if not args.file.exists():
        print(f"{args.file}: ファイルがありません", file=sys.stderr)
        return 2
    if args.kind == "plan":
        return _import_plan(runtime, args)
    outcome = {}

    def action(ctx):
        importer = import_facilities if args.kind == "facilities" else import_patients
        # A file that cannot be read is the user's answer, not a crash: it
        # must not reach Runtime.run's catch-all.
        try:
            outcome["result"] = importer(ctx, args.file)
        except CsvError as e:
            outcome["unreadable"] = str(e)
        return Reply()

    if not _run_as_cli(runtime, action, args.as_user):
        return 1
    if "unreadable" in outcome:
        print(f"{args.file}: {outcome['unreadable']}", file=sys.stderr)
        return 2
    print(render_text("cli/import_result", {"file": args.file, "result": outcome["result"]}))
    return 1 if outcome["result"].problems else 0


def _run_as_cli(runtime: Runtime, action, user: str) -> bool:
    """Run `action` in one transaction as the CLI (the audit actor is
    `cli:<user>`); False, with the reason printed, if it did not complete."""
    reply = runtime.run(Who(handle=Handle("cli", user, "cli")), action)
    if reply.error:
        print(render_text(reply.template, reply.values), file=sys.stderr)
    return not reply.error


def _import_plan(runtime: Runtime, args) -> int:
    """All or nothing: a plan file with any wrong line stores no task."""
    from bot.plan import tasks
    from bot.plan.periods import fiscal_year
    from bot.plan.template import PlanFileError, read
    from bot.store.queries import get_or_create_member

    outcome: dict = {}

    def action(ctx):
        year = args.year or fiscal_year(ctx.today)
        try:
            planned = read(args.file, year)
        except PlanFileError as e:
            outcome["problems"] = e.problems
            return Reply()
        for p in planned:
            owners = [get_or_create_member(ctx.session, Handle.parse(o), ctx.now) for o in p.owners]
            tasks.add(ctx, year=year, category=p.category, title=p.title, due=p.due, every=p.every, owners=owners,
                      source="imported")
        outcome["stored"], outcome["year"] = len(planned), year
        return Reply()

    if not _run_as_cli(runtime, action, args.as_user):
        return 1
    if "problems" in outcome:
        print(f"{args.file}: 読み取れない行があるため、何も登録していません。", file=sys.stderr)
        for line, message in outcome["problems"]:
            print(f"  {line}行目: {message}", file=sys.stderr)
        return 1
    print(f"{args.file}: {outcome['year']}年度の計画に {outcome['stored']}件のタスクを登録しました。")
    return 0


def cmd_audit(settings: Settings, args) -> int:
    from sqlmodel import select

    from bot.privacy import verify_chain
    from bot.store.models import AuditEvent

    runtime = _runtime(settings)
    with db.session_scope(runtime.engine) as session:
        if args.action == "verify":
            count, broken = verify_chain(session)
            if broken is None:
                print(f"audit chain intact: {count} rows")
                return 0
            print(f"audit chain BROKEN at row id {broken} (checked {count} rows)", file=sys.stderr)
            return 1
        query = select(AuditEvent).order_by(AuditEvent.id)
        if args.since:
            try:
                since = datetime.combine(datetime.fromisoformat(args.since).date(), time(0), tzinfo=settings.tz)
            except ValueError:
                print(f"--since は YYYY-MM-DD で指定してください: {args.since}", file=sys.stderr)
                return 2
            query = query.where(AuditEvent.at >= since)
        out = args.out.open("w", newline="", encoding="utf-8") if args.out else sys.stdout
        writer = csv.writer(out)
        writer.writerow(["id", "at", "actor", "action", "patient_code", "target", "allowed", "detail", "hash"])
        for e in session.exec(query):
            writer.writerow([e.id, e.at.astimezone(settings.tz).isoformat(), e.actor, e.action,
                             e.patient_code or "", e.target, "yes" if e.allowed else "no", e.detail, e.hash])
        if args.out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""/plan: this fiscal year's business plan. Parses what people type and
press, and words the answers; the rules live in `bot.plan`."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlmodel import select

from bot.commands import args, plan_indicators
from bot.commands.common import button_id, choice_actions, only_shows
from bot.commands.plan_indicators import invalid  # one wording of bad input for all of /plan
from bot.context import Context
from bot.dates import DateError, parse_date
from bot.forms import validate
from bot.plan import digest, tasks
from bot.plan.periods import CATEGORIES, EVERY, bounds, fiscal_year, period, period_label
from bot.plan.template import categories
from bot.privacy import audit, is_admin
from bot.replies import DM, Action, FormView, Reply
from bot.requests import Request
from bot.store.models import Meeting, PlanMute, PlanTask
from bot.store.queries import members_by_id

COMMAND = "/plan"
ADD = "plan_add_submit"
EDIT = "plan_edit_submit"
SUBCOMMANDS = {
    "add": "add", "追加": "add", "登録": "add",
    "done": "done", "完了": "done", "済": "done", "済み": "done",
    "undo": "undo", "取消": "undo", "取り消し": "undo", "戻す": "undo",
    "show": "show", "表示": "show", "詳細": "show",
    "edit": "edit", "変更": "edit", "修正": "edit", "編集": "edit",
    "mine": "mine", "自分": "mine", "担当": "mine",
    "channel": "channel", "チャンネル": "channel",
    "mute": "mute", "unmute": "unmute", "digest": "digest", "まとめ": "digest",
    "indicators": "indicators", "indicator": "indicators", "指標": "indicators", "評価指標": "indicators",
    "help": "help", "ヘルプ": "help", "使い方": "help",
}
ALIASES = {"担当": "owner", "担当者": "owner", "期限": "due", "締切": "due", "繰り返し": "every", "頻度": "every",
           "タスク名": "title", "名前": "title", "件名": "title", "項目": "category"}
# `every=once` (or `期限=なし`) takes the repetition (or due date) away in /plan edit.
NONE = {"once", "none", "no", "なし", "無し", "1回", "一回", "-", "ー"}


def only_reads(words: list[str]) -> bool:
    """`/plan indicators` alone shows them; `indicator add|record` stores."""
    if words and SUBCOMMANDS.get(words[0]) == "indicators":
        return len(words) == 1
    return only_shows(words, SUBCOMMANDS, {"show", "mine", "digest", "help"})


def handle(ctx: Context, text: str) -> Reply:
    if ctx.place is not None and not ctx.settings.team.plan.channel:
        # Until one is chosen, the plan channel is where /plan was first used.
        digest.set_channel(ctx.session, str(ctx.place), only_if_unset=True)
    word, rest = args.first_word(text)
    if not word:
        return overview(ctx)
    sub = SUBCOMMANDS.get(word)
    if sub is None:
        return show(ctx, text)  # `/plan 連携シート` means show
    return {"add": add, "done": done, "undo": undo, "show": show, "edit": edit, "mine": lambda ctx, rest: mine(ctx),
            "channel": set_channel, "mute": lambda ctx, rest: mute(ctx, True),
            "unmute": lambda ctx, rest: mute(ctx, False), "digest": lambda ctx, rest: preview(ctx),
            "indicators": plan_indicators.handle,
            "help": lambda ctx, rest: Reply("plan/usage")}[sub](ctx, rest)


def set_channel(ctx: Context, text: str) -> Reply:
    if not is_admin(ctx):
        audit(ctx, "plan.channel", allowed=False, detail="not admin")
        return Reply("common/refused", {"reason": "not_admin", "code": ""})
    channels = args.parse(text).channels
    place = channels[0] if channels else ctx.place
    if place is None:
        return invalid("no_channel")
    digest.set_channel(ctx.session, str(place))
    audit(ctx, "plan.channel", detail=str(place))
    return Reply("plan/settings", {"what": "channel", "place": str(place)})


def mute(ctx: Context, on: bool) -> Reply:
    row = ctx.session.exec(select(PlanMute).where(PlanMute.member_id == ctx.member.id)).first()
    if on and row is None:
        ctx.session.add(PlanMute(member_id=ctx.member.id))
    elif not on and row is not None:
        ctx.session.delete(row)
    return Reply("plan/settings", {"what": "mute" if on else "unmute"})


def preview(ctx: Context) -> Reply:
    """`/plan digest`: this week's digest, now, only to the asker."""
    values = digest.values(ctx.session, ctx.settings, ctx.today, ctx.now)
    return Reply("plan/digest_preview", values)


def overview(ctx: Context) -> Reply:
    year = fiscal_year(ctx.today)
    return Reply("plan/overview", {"o": tasks.overview(ctx.session, year, ctx.today, shown=10), "today": ctx.today,
                                   "names": categories(ctx.settings.config_dir)})


def add(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, ALIASES)
    if not parsed.words and not parsed.options:
        return Reply(form=FormView(ctx.forms.builtin["plan_add"], ADD))
    if not parsed.words:
        return Reply("plan/usage")
    category, problem = _category(ctx, parsed.words[0])
    title = " ".join(parsed.words[1:]).strip()
    if not problem and not title:
        problem = invalid("no_title")
    due, problem = _due(ctx, parsed.options["due"]) if "due" in parsed.options and not problem else (None, problem)
    every, problem = _every(parsed.options["every"]) if "every" in parsed.options and not problem else (
        None, problem)
    owners, problem = _owners(ctx, parsed) if not problem else ([], problem)
    if problem:
        return problem
    task, duplicate = tasks.add(ctx, year=fiscal_year(ctx.today), category=category, title=title[:200], due=due,
                                every=every, owners=owners)
    return Reply("plan/added", {"t": task, "owners": owners, "duplicate": duplicate,
                                "name": categories(ctx.settings.config_dir)[category]})


def _category(ctx: Context, typed: str) -> tuple[str | None, Reply | None]:
    category = args.fold(typed).strip().upper()
    if category not in CATEGORIES or not category:
        return None, invalid("bad_category", value=typed, names=categories(ctx.settings.config_dir))
    return category, None


def _due(ctx: Context, typed: str) -> tuple[date | None, Reply | None]:
    """A due date inside this fiscal year."""
    try:
        due = parse_date(typed, ctx.today)
    except DateError as e:
        return None, invalid("bad_date", message=str(e))
    year = fiscal_year(ctx.today)
    first, last = bounds(year)
    if due is None or not first <= due <= last:
        return None, invalid("due_outside", value=typed, year=year, first=first, last=last)
    return due, None


def _owners(ctx: Context, parsed: args.Args) -> tuple[list, Reply | None]:
    """Owners are chosen with @ (a mention); a name typed as plain text is
    someone the chat could not resolve, so it is refused, not dropped."""
    typed = parsed.options.get("owner", "").strip()
    if typed and args.fold(typed).lower() not in NONE:
        return [], invalid("not_member", value=typed)
    return members_by_id(ctx.session, parsed.mentions), None


def _every(typed: str) -> tuple[str | None, Reply | None]:
    every = EVERY.get(args.fold(typed).strip().lower())
    return (every, None) if every else (None, invalid("bad_every", value=typed))


def edit(ctx: Context, text: str) -> Reply:
    """`/plan edit 連携シート due=12/20 owner=@佐藤` changes what is given;
    with nothing to change, the form opens filled in."""
    task, rest, other = _target(ctx, text, "edit")
    if other:
        return other
    if not _may_edit(ctx, task):
        audit(ctx, "plan.edit", target=f"task:{task.id}", allowed=False, detail="not owner")
        return invalid("not_yours", t=task)
    parsed = args.parse(rest, ALIASES, spaced=frozenset({"title"}))
    changes, problem = _changes(ctx, parsed.options)
    if problem:
        return problem
    if parsed.mentions or "owner" in parsed.options:
        changes["owners"], problem = _owners(ctx, parsed)
        if problem:
            return problem
    if not changes:
        form = ctx.forms.builtin["plan_add"]
        return Reply(form=FormView(dataclasses.replace(form, title="タスクの変更"), EDIT, meta={"task": task.id},
                                   initial={"category": task.category, "title": task.title,
                                            "due": task.due.isoformat() if task.due else "",
                                            "every": task.every or "once"}))
    return _edited(ctx, task, changes)


def _may_edit(ctx: Context, task: PlanTask) -> bool:
    return (is_admin(ctx) or task.created_by_id == ctx.member.id
            or ctx.member.id in {m.id for m in tasks.owners(ctx.session, task)})


def _changes(ctx: Context, options: dict[str, str]) -> tuple[dict, Reply | None]:
    """What `key=value` options ask to change, each checked as `add` checks it."""
    changes: dict = {}
    for key, typed in options.items():
        none = args.fold(typed).strip().lower() in NONE
        problem = None
        if key == "title":
            if not typed.strip():
                problem = invalid("no_title")
            changes["title"] = args.typed_text(typed)[:200]
        elif key == "category":
            changes["category"], problem = _category(ctx, typed)
        elif key == "due":
            changes["due"], problem = (None, None) if none else _due(ctx, typed)
        elif key == "every":
            changes["every"], problem = (None, None) if none else _every(typed)
        elif key != "owner":  # owners come as mentions
            problem = invalid("bad_option", key=key)
        if problem:
            return {}, problem
    return changes, None


def _edited(ctx: Context, task: PlanTask, changes: dict) -> Reply:
    changed = tasks.edit(ctx, task, **changes)
    return Reply("plan/edited", {"t": task, "changed": changed, "owners": tasks.owners(ctx.session, task),
                                 "name": categories(ctx.settings.config_dir)[task.category]})


def edit_from_form(ctx: Context, request: Request) -> Reply:
    task_id = args.row_id(request.meta.get("task"))
    task = ctx.session.get(PlanTask, task_id) if task_id else None
    if task is None:
        return Reply(field_errors={"title": ("plan", {"problem": "task_gone"})})
    if not _may_edit(ctx, task):
        return Reply(field_errors={"title": ("plan", invalid("not_yours", t=task).values)})
    clean, errors = validate(ctx.forms.builtin["plan_add"], request.values)
    if errors:
        return Reply(field_errors=errors)
    changes = {"category": clean["category"], "title": clean["title"][:200], "due": None,
               "every": None if clean.get("every") in (None, "", "once") else clean["every"]}
    if clean.get("due"):  # an emptied date takes the due date away
        changes["due"], problem = _due(ctx, str(clean["due"]))
        if problem:
            return Reply(field_errors={"due": ("plan", problem.values)})
    reply = _edited(ctx, task, changes)
    reply.answer = DM
    return reply


def _target(ctx: Context, text: str, sub: str) -> tuple[PlanTask | None, str, Reply | None]:
    if not text.strip():
        return None, "", invalid("no_task", sub=sub)
    word, rest = args.first_word(text)
    if (task_id := args.hash_id(word)) is not None:
        task = ctx.session.get(PlanTask, task_id) if task_id else None
        return (task, rest, None) if task else (None, "", invalid("not_found", query=word, choices=[]))
    match, rest = tasks.find(ctx, text)
    if match.kind == "one":
        return match.item, rest, None
    choices = [{"label": f"{t.category} {t.title}"[:75], "text": " ".join(x for x in (sub, f"#{t.id}", rest) if x)}
               for t in match.items]
    if match.kind == "many":
        return None, "", Reply("plan/choose", {"query": match.query, "choices": choices},
                               choice_actions(COMMAND, choices))
    return None, "", invalid("not_found", query=match.query, choices=choices)


def done(ctx: Context, text: str) -> Reply:
    task, rest, other = _target(ctx, text, "done")
    if other:
        return other
    return _complete(ctx, task, args.typed_text(rest))


def _complete(ctx: Context, task: PlanTask, comment: str) -> Reply:
    row, already = tasks.complete(ctx, task, comment)
    values = {"t": task, "row": row, "already": already, "by": members_by_id(ctx.session, [row.member_id])[0],
              "period": period_label(task.every, row.period)}
    return Reply("plan/done", values)


def press_done(ctx: Context, request: Request) -> Reply:
    """「完了」 beside a task in `/plan mine` or the owners' DM."""
    task = ctx.session.get(PlanTask, button_id(request))
    if task is None:
        return invalid("not_found", query=request.text, choices=[])
    return _complete(ctx, task, "")


def undo(ctx: Context, text: str) -> Reply:
    task, _rest, other = _target(ctx, text, "undo")
    if other:
        return other
    row = tasks.undo(ctx, task)
    return Reply("plan/undone", {"t": task, "row": row,
                                 "period": period_label(task.every, period(task.every, ctx.today))})


def show(ctx: Context, text: str) -> Reply:
    task, _rest, other = _target(ctx, text, "show")
    if other:
        return other
    return Reply("plan/show", {
        "t": task, "owners": tasks.owners(ctx.session, task), "history": tasks.history(ctx.session, task),
        "done_now": tasks.is_done(ctx.session, task, ctx.today), "name": categories(ctx.settings.config_dir)[
            task.category], "period": period_label(task.every, period(task.every, ctx.today)),
        "meeting": ctx.session.get(Meeting, task.meeting_id) if task.meeting_id else None},
        [] if tasks.is_done(ctx.session, task, ctx.today) else [Action.make("plan_done", task.id, style="primary")])


def mine(ctx: Context) -> Reply:
    open_tasks = tasks.mine(ctx.session, ctx.member, fiscal_year(ctx.today), ctx.today)
    return Reply("plan/mine", {"tasks": open_tasks, "today": ctx.today},
                 [Action.make("plan_done", t.id, title=t.title) for t in open_tasks[:25]])


def add_from_form(ctx: Context, request: Request) -> Reply:
    """The form: the same checks as typed, each problem on its field."""
    clean, errors = validate(ctx.forms.builtin["plan_add"], request.values)
    if errors:
        return Reply(field_errors=errors)
    options = {k: v for k, v in (("due", clean.get("due")), ("every", clean.get("every"))) if v and v != "once"}
    reply = add(ctx, " ".join([clean["category"], clean["title"], *(f"{k}={v}" for k, v in options.items())]))
    if reply.template == "plan/invalid":
        field = {"due_outside": "due", "bad_date": "due", "bad_every": "every"}.get(reply.values["problem"], "title")
        return Reply(field_errors={field: ("plan", reply.values)})
    reply.answer = DM
    return reply


ACTIONS = {"plan_done": press_done}
SUBMISSIONS = {ADD: add_from_form, EDIT: edit_from_form}

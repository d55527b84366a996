"""`/plan indicators` and `/plan indicator add|record`: the computed
indicators and the ones the council records by hand, with targets and
trends. Parses and words; the rules live in `bot.plan.recorded`."""

from __future__ import annotations

from bot.commands import args
from bot.commands.common import choice_actions
from bot.context import Context
from bot.plan import indicators, recorded
from bot.plan.periods import fiscal_year, parse_quarter, period, quarter_label, quarter_start
from bot.replies import Reply
from bot.store.models import PlanIndicator

COMMAND = "/plan"
VERBS = {"add": "add", "追加": "add", "登録": "add", "新規": "add",
         "record": "record", "記録": "record", "入力": "record", "set": "record"}
ALIASES = {"単位": "unit", "目標": "target", "目標値": "target", "種類": "kind", "区分": "kind",
           "期間": "period", "四半期": "period", "時期": "period"}


def handle(ctx: Context, text: str) -> Reply:
    verb, rest = args.first_word(text)
    if not verb:
        return listing(ctx)
    if verb not in VERBS:
        return invalid("indicator_usage")
    return add(ctx, rest) if VERBS[verb] == "add" else record(ctx, rest)


def invalid(problem: str, **values) -> Reply:
    """Bad input to any part of /plan (plan.py uses it too)."""
    return Reply("plan/invalid", {"problem": problem, **values})


def listing(ctx: Context) -> Reply:
    year = fiscal_year(ctx.today)
    computed = indicators.computed(ctx.session, year, ctx.today, ctx.now, ctx.settings.tz,
                                   ctx.settings.team.vacancy.freshness_hours)
    return Reply("plan/indicators", {"year": year, "figures": computed,
                                     "recorded": recorded.figures(ctx.session, year)})


def add(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, ALIASES)
    name = " ".join(parsed.words).strip()[:80]
    if not name:
        return invalid("no_indicator", sub="add")
    unit = parsed.options.get("unit", "").strip()[:20]
    goal = None
    if parsed.options.get("target"):
        goal = recorded.target(parsed.options["target"], unit)
        if goal is None:
            return invalid("bad_number", what="目標", value=parsed.options["target"])
    kind = "過程"
    if "kind" in parsed.options:
        kind = recorded.KINDS.get(args.fold(parsed.options["kind"]).lower())
        if kind is None:
            return invalid("bad_kind", value=parsed.options["kind"])
    indicator, existed = recorded.add(ctx, name=name, unit=unit, goal=goal, kind=kind)
    return Reply("plan/indicator_added", {"i": indicator, "existed": existed, "goal": recorded.goal_text(indicator)})


def record(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, ALIASES)
    if len(parsed.words) < 2:
        return invalid("no_indicator", sub="record")
    *name_words, typed_value = parsed.words
    indicator, other = _indicator(ctx, " ".join(name_words), typed_value, parsed.options)
    if other:
        return other
    value = recorded.number(typed_value, indicator.unit)
    if value is None:
        return invalid("bad_number", what=indicator.name, value=typed_value)
    code = period("quarter", ctx.today)
    if "period" in parsed.options:
        code = parse_quarter(parsed.options["period"], ctx.today)
        if code is None:
            return invalid("bad_period", value=parsed.options["period"])
        if quarter_start(code) > ctx.today:
            return invalid("future_period", value=parsed.options["period"], label=quarter_label(code))
    before = recorded.record(ctx, indicator, code, value)
    return Reply("plan/indicator_recorded", {
        "i": indicator, "label": quarter_label(code), "value": recorded.shown(value, indicator.unit),
        "before": None if before is None else recorded.shown(before, indicator.unit), "same": before == value,
        "goal": recorded.goal_text(indicator), "behind": recorded.is_behind(indicator, value)})


def _indicator(ctx: Context, name: str, typed_value: str,
               options: dict[str, str]) -> tuple[PlanIndicator | None, Reply | None]:
    if (indicator_id := args.hash_id(name)) is not None:
        found = ctx.session.get(PlanIndicator, indicator_id) if indicator_id else None
        return (found, None) if found else (None, invalid("indicator_not_found", query=name, choices=[]))
    match, _rest = recorded.find(ctx.session, name)
    if match.kind == "one":
        return match.item, None
    tail = " ".join([typed_value, *(f"{k}={v}" for k, v in options.items() if k == "period")])
    choices = [{"label": i.name[:75], "text": f"indicator record #{i.id} {tail}"} for i in match.items]
    if match.kind == "many":
        return None, Reply("plan/choose", {"query": name, "choices": choices}, choice_actions(COMMAND, choices))
    return None, invalid("indicator_not_found", query=name, choices=choices)

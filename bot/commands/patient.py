"""/patient: the people the team cares for (対象者) and their care teams.
Parses what people type and words the answers; the rules live in
`bot.patients`."""

from __future__ import annotations

from datetime import date
from typing import Any

import jaconv

from bot.commands import args
from bot.commands.common import choice_actions, only_shows, resolve_patient
from bot.context import Context
from bot.dates import DateError, parse_date
from bot.forms import validate
from bot.liaison import notes as liaison_notes
from bot.patients import records
from bot.patients.fields import ADMISSION_WORDS, CONSENT, DEATH_WORDS, OUTCOMES, normalise_care, validate_new
from bot.patients.names import NO_READING, reading_of, splits
from bot.patients.records import NotInTeam
from bot.privacy import audit, initials, is_admin, may_access_notes
from bot.replies import DM, FormView, Reply
from bot.requests import Request
from bot.store.models import Patient
from bot.store.queries import care_team, members_by_id

COMMAND = "/patient"
SUBMIT = "patient_add_submit"
SUBCOMMANDS = {
    "add": "add", "追加": "add", "登録": "add", "new": "add",
    "list": "list", "一覧": "list", "ls": "list",
    "show": "show", "表示": "show", "詳細": "show",
    "team": "team", "チーム": "team",
    "end": "end", "終了": "end",
    "admit": "admit", "入院": "admit",
    "discharge": "discharge", "退院": "discharge",
    "reopen": "reopen", "再開": "reopen",
    "consent": "consent", "同意": "consent",
    "edit": "edit", "編集": "edit", "修正": "edit", "訂正": "edit",
    "channel": "channel", "チャンネル": "channel",
    "help": "help", "ヘルプ": "help", "使い方": "help",
}
OPTION_ALIASES = {
    "地区": "area", "地域": "area", "介護度": "care", "要介護度": "care", "同意": "consent",
    "転帰": "outcome", "日付": "date", "日": "date", "かな": "kana", "カナ": "kana",
    "病院": "hospital", "入院先": "hospital", "理由": "reason",
}


def only_reads(words: list[str]) -> bool:
    """`/patient team 山田` shows the team; add or remove changes it."""
    if words and SUBCOMMANDS.get(words[0]) == "team":
        return not any(args.MEMBERSHIP_VERBS.get(w, w) in ("add", "remove") for w in words[1:])
    return only_shows(words, SUBCOMMANDS, {"list", "show", "help"})


def handle(ctx: Context, text: str) -> Reply:
    word, rest = args.first_word(text)
    sub = SUBCOMMANDS.get(word)
    if sub is None and word:  # `/patient 山田` means show
        sub, rest = "show", text
    if sub is None:
        return usage()
    handler = {
        "add": add, "list": list_patients, "show": show, "team": team, "end": end,
        "admit": admit, "discharge": discharge, "reopen": reopen, "edit": edit,
        "consent": consent, "channel": channel, "help": lambda ctx, rest: usage(),
    }[sub]
    try:
        return handler(ctx, rest)
    except NotInTeam as refused:
        return Reply("common/refused", {"reason": "not_team", "code": refused.patient.code})
    except records.NotRegistrar:
        return Reply("common/refused", {"reason": "not_registrar", "code": ""})


def usage(unknown: str = "") -> Reply:
    return Reply("patient/usage", {"unknown": unknown})


def add(ctx: Context, text: str) -> Reply:
    parsed = args.parse(text, OPTION_ALIASES)
    if not parsed.words and not parsed.options:
        records.check_may_register(ctx)  # no form for someone who could not submit it
        return Reply(form=FormView(ctx.forms.builtin["patient_add"], SUBMIT,
                                   meta={"place": str(ctx.place) if ctx.place else None}))
    if not parsed.words:
        return Reply("patient/invalid", {"problem": "no_name"})
    if "kana" in parsed.options:  # said outright: every word is the name
        typed_kana = parsed.options["kana"]
        name, kana = " ".join(parsed.words), "" if typed_kana == NO_READING else reading_of(typed_kana)
    else:
        found = splits(parsed.words)
        if len(found) > 1:
            return _which_reading(found, parsed)
        name, kana = found[0]
    return create(ctx, name=name, kana=kana, area=parsed.options.get("area", ""),
                  care=parsed.options.get("care", ""), consent=parsed.options.get("consent", "unknown"),
                  unknown_options=sorted(set(parsed.options) - {"area", "care", "consent", "kana"}))


def _which_reading(found: list[tuple[str, str]], parsed: args.Args) -> Reply:
    """Ask whether a trailing kana word is part of the name or its reading."""
    options = " ".join(f"{k}={v}" for k, v in parsed.options.items())
    choices = [{"label": f"{name}（{kana or 'ふりがななし'}）",
                "text": f"add {name} kana={kana.replace(' ', '_') or NO_READING} {options}".strip()}
               for name, kana in found]
    return Reply("patient/which_reading", {"choices": choices}, choice_actions(COMMAND, choices))


def create(ctx: Context, *, name: str, kana: str, area: str, care: str, consent: str,
           unknown_options: list[str] = (), answer: str | None = None) -> Reply:
    problems = validate_new(name, kana, area, care, consent, unknown_options)
    if problems:
        return Reply("patient/invalid", {"problem": "fields", "problems": problems})
    patient, same, duplicate = records.create(ctx, name=name, kana=kana, area=area, care=care, consent=consent)
    reply = Reply("patient/added", {"patient": patient, "same": same, "duplicate": duplicate})
    if answer:
        reply.answer = answer
    return reply


def list_patients(ctx: Context, text: str) -> Reply:
    words = {args.fold(w).lower() for w in args.parse(text).words}
    asked_all = bool(words & {"all", "全員", "すべて", "全部"})
    # Only admins see everyone: an outsider learns nothing of others' patients.
    rows = records.listed(ctx, show_ended=bool(words & {"ended", "終了"}))
    return Reply("patient/list", {"rows": rows, "show_all": is_admin(ctx),
                                  "refused_all": asked_all and not is_admin(ctx)})


def _target(ctx: Context, text: str, sub: str) -> tuple[Patient | None, str, Reply | None]:
    """The patient a subcommand is about, or the reply asking for one."""
    if not text.strip():
        return None, "", Reply("patient/invalid", {"problem": "no_patient", "sub": sub})
    return resolve_patient(ctx, COMMAND, text, before=sub)


def show(ctx: Context, text: str) -> Reply:
    patient, _rest, other = _target(ctx, text, "show")
    if other:
        return other
    visible = may_access_notes(ctx, patient)
    audit(ctx, "patient.show", patient=patient, detail="full" if visible else "limited")
    notes = liaison_notes.count(ctx.session, patient)
    return Reply("patient/show", {
        "patient": patient, "visible": visible, "initials": initials(patient),
        "team": care_team(ctx.session, patient), "note_count": notes,
    })


def team(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "team")
    if other:
        return other
    verb, members_text = args.membership_verb(rest)
    mentioned = members_by_id(ctx.session, args.parse(members_text).mentions)
    if verb in ("", "list"):
        return show(ctx, patient.code)
    if verb not in {"add", "remove"} or not mentioned:
        return Reply("patient/invalid", {"problem": "team_usage", "code": patient.code})
    try:
        changed = records.change_team(ctx, patient, verb, mentioned)
    except records.LastMember:
        return Reply("patient/invalid", {"problem": "last_member", "code": patient.code})
    return Reply("patient/team_changed", {
        "patient": patient, "verb": verb, "changed": changed, "team": care_team(ctx.session, patient),
    })


def _event_date(ctx: Context, parsed: args.Args) -> date | Reply:
    """`date=11/20` or a leading date word; today if none. Never the future."""
    typed = parsed.options.get("date") or next((w for w in parsed.words if _looks_like_date(w, ctx)), "")
    if not typed:
        return ctx.today
    try:
        on = parse_date(typed, ctx.today, "past")
    except DateError as e:
        return Reply("patient/invalid", {"problem": "bad_date", "message": str(e)})
    if on is None or on > ctx.today:
        return Reply("patient/invalid", {"problem": "bad_end_date", "value": typed})
    return on


def _looks_like_date(word: str, ctx: Context) -> bool:
    try:
        return parse_date(word, ctx.today, "past") is not None
    except DateError:
        return True  # a date, just a wrong one: let _event_date say so


def end(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "end")
    if other:
        return other
    parsed = args.parse(rest, OPTION_ALIASES)
    typed = parsed.options.get("outcome") or next((w for w in parsed.words if not _looks_like_date(w, ctx)), "")
    outcome = _match_outcome(typed)
    if outcome is None:
        return _which_outcome(patient, typed, parsed)
    on = _event_date(ctx, parsed)
    if isinstance(on, Reply):
        return on
    records.check_may_manage(ctx, patient, "patient.end")
    if patient.status == "ended":
        return Reply("patient/invalid", {"problem": "already_ended", "patient": patient})
    records.end_care(ctx, patient, outcome, on)
    return Reply("patient/ended", {"patient": patient})


def _match_outcome(value: str) -> str | None:
    """The outcome named in full, or by a part only one outcome has (看取り)."""
    value = args.fold(value).strip()
    if not value:
        return None
    if value in OUTCOMES:
        return value
    hits = [o for o in OUTCOMES if value in o]
    return hits[0] if len(hits) == 1 else None


def _which_outcome(patient: Patient, typed: str, parsed: args.Args) -> Reply:
    """An outcome that only resembles one (死亡, 入院) gets a choice, never a guess."""
    folded = args.fold(typed).strip()
    date_option = f" date={parsed.options['date']}" if "date" in parsed.options else ""
    if folded and any(w in folded or folded in w for w in ADMISSION_WORDS):
        return Reply("patient/invalid", {"problem": "admission_not_end", "code": patient.code})
    candidates = ("在宅看取り", "病院死亡") if folded and any(w in folded or folded in w for w in DEATH_WORDS) \
        else OUTCOMES
    choices = [{"label": o, "text": f"end {patient.code} outcome={o}{date_option}"} for o in candidates]
    return Reply("patient/which_outcome", {"code": patient.code, "typed": typed, "choices": choices},
                 choice_actions(COMMAND, choices))


EDITABLE = ("name", "kana", "area", "care")


def edit(ctx: Context, text: str) -> Reply:
    """`/patient edit 山田 name=山田 太郎 kana=やまだ たろう area=西地区 care=要介護3`"""
    patient, rest, other = _target(ctx, text, "edit")
    if other:
        return other
    parsed = args.parse(rest, OPTION_ALIASES, spaced=frozenset({"name", "kana", "area"}))
    changes = {k: v.strip() for k, v in parsed.options.items() if k in EDITABLE}
    unknown = sorted(set(parsed.options) - set(EDITABLE))
    if not changes and not unknown:
        return Reply("patient/invalid", {"problem": "edit_usage", "code": patient.code})
    if "kana" in changes:
        changes["kana"] = reading_of(changes["kana"])
    problems = validate_new(changes.get("name", patient.name), changes.get("kana", patient.kana),
                            changes.get("area", patient.area), changes.get("care", patient.care_level),
                            patient.consent, unknown)
    if problems:
        return Reply("patient/invalid", {"problem": "fields", "problems": problems})
    if "care" in changes:
        changes["care"] = normalise_care(changes["care"]) or ""
    changed = records.correct(ctx, patient, changes)
    return Reply("patient/edited", {"patient": patient, "changed": changed})


def admit(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "admit")
    if other:
        return other
    parsed = args.parse(rest, OPTION_ALIASES, spaced=frozenset({"hospital"}))
    on = _event_date(ctx, parsed)
    if isinstance(on, Reply):
        return on
    if patient.status == "ended":
        return Reply("patient/invalid", {"problem": "already_ended", "patient": patient})
    hospital = parsed.options.get("hospital") or " ".join(w for w in parsed.words if not _looks_like_date(w, ctx))
    records.admit(ctx, patient, on, hospital)
    return Reply("patient/admitted", {"patient": patient})


def discharge(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "discharge")
    if other:
        return other
    on = _event_date(ctx, args.parse(rest, OPTION_ALIASES))
    if isinstance(on, Reply):
        return on
    if patient.admitted_on is None:
        return Reply("patient/invalid", {"problem": "not_admitted", "code": patient.code})
    hospital = patient.hospital
    records.discharge(ctx, patient, on)
    return Reply("patient/discharged", {"patient": patient, "on": on, "hospital": hospital})


def reopen(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "reopen")
    if other:
        return other
    parsed = args.parse(rest, OPTION_ALIASES, spaced=frozenset({"reason"}))
    reason = parsed.options.get("reason") or " ".join(parsed.words)
    if patient.status != "ended":
        return Reply("patient/invalid", {"problem": "not_ended", "code": patient.code})
    if not reason.strip():
        return Reply("patient/invalid", {"problem": "reopen_reason", "code": patient.code})
    try:
        records.reopen(ctx, patient, reason)
    except records.NotAllowed:
        return Reply("common/refused", {"reason": "not_admin", "code": patient.code})
    return Reply("patient/reopened", {"patient": patient, "reason": reason})


def consent(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "consent")
    if other:
        return other
    value = CONSENT.get(args.fold(rest).strip().lower())
    if value is None:
        return Reply("patient/invalid", {"problem": "bad_consent_value", "code": patient.code})
    records.set_consent(ctx, patient, value)
    return Reply("patient/consent_changed", {"patient": patient})


def channel(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "channel")
    if other:
        return other
    channels = args.parse(rest).channels
    records.set_channel(ctx, patient, channels[0] if channels else ctx.place)
    return Reply("patient/channel_set", {"patient": patient})


def add_from_form(ctx: Context, request: Request) -> Reply:
    """The `/patient add` form: errors come back per field."""
    try:
        records.check_may_register(ctx)
    except records.NotRegistrar:
        return Reply(field_errors={"name": ("refused", {"reason": "not_registrar", "code": ""})})
    clean, errors = validate(ctx.forms.builtin["patient_add"], request.values)
    if errors:
        return Reply(field_errors=errors)
    fields = {k: str(clean.get(k) or "") for k in ("name", "kana", "area", "care", "consent")}
    problems = validate_new(fields["name"], fields["kana"], fields["area"], fields["care"],
                            fields["consent"] or "unknown")
    if problems:
        return Reply(field_errors={FIELD_OF_PROBLEM.get(code, "name"): (code, v) for code, v in problems})
    return create(ctx, name=fields["name"], kana=jaconv.hira2kata(fields["kana"]), area=fields["area"],
                  care=fields["care"], consent=fields["consent"] or "unknown", answer=DM)


FIELD_OF_PROBLEM = {"no_name": "name", "name_too_long": "name", "area_too_long": "area",
                    "bad_care": "care", "bad_consent": "consent"}
ACTIONS: dict[str, Any] = {}
SUBMISSIONS = {SUBMIT: add_from_form}

"""/patient: the people the team cares for (対象者) and their care teams."""

from __future__ import annotations

import re
from typing import Any

import jaconv
from sqlmodel import func, select

from bot.commands import args as argparse
from bot.commands.common import resolve_patient
from bot.context import Context
from bot.dates import DateError, parse_date
from bot.patient_fields import CONSENT, OUTCOMES, normalise_care, validate_new
from bot.privacy import audit, in_care_team, initials, is_admin, may_access_notes
from bot.replies import Modal, Reply
from bot.store.models import CareTeamMember, Note, Patient
from bot.store.queries import active_patients_named, care_team, change_membership, insert_patient

COMMAND = "/patient"
SUBCOMMANDS = {
    "add": "add", "追加": "add", "登録": "add", "new": "add",
    "list": "list", "一覧": "list", "ls": "list",
    "show": "show", "表示": "show", "詳細": "show",
    "team": "team", "チーム": "team",
    "end": "end", "終了": "end",
    "consent": "consent", "同意": "consent",
    "channel": "channel", "チャンネル": "channel",
    "help": "help", "ヘルプ": "help", "使い方": "help",
}
OPTION_ALIASES = {
    "地区": "area", "地域": "area", "介護度": "care", "要介護度": "care", "同意": "consent",
    "転帰": "outcome", "日付": "date", "日": "date", "かな": "kana", "カナ": "kana",
}
_KANA_WORD = re.compile(r"[\u3041-\u309f\u30a0-\u30ffー・]+")


def handle(ctx: Context, text: str) -> Reply:
    word, rest = argparse.first_word(text)
    sub = SUBCOMMANDS.get(word)
    if sub is None:
        return usage(unknown=word)
    return {
        "add": add, "list": list_patients, "show": show, "team": team, "end": end,
        "consent": consent, "channel": channel, "help": lambda ctx, rest: usage(),
    }[sub](ctx, rest)


def usage(unknown: str = "") -> Reply:
    return Reply("patient/usage", {"unknown": unknown})


def _split_name(words: list[str]) -> tuple[str, str]:
    """`山田 太郎 やまだ たろう` -> (`山田 太郎`, `ヤマダ タロウ`): trailing kana words are the reading."""
    kana_from = len(words)
    while kana_from > 0 and _KANA_WORD.fullmatch(argparse.fold(words[kana_from - 1])):
        kana_from -= 1
    name_words, kana_words = words[:kana_from], words[kana_from:]
    if not name_words:  # a name written in kana is its own reading
        name_words = kana_words
    kana = " ".join(jaconv.hira2kata(argparse.fold(w)) for w in kana_words)
    return " ".join(name_words), kana


def add(ctx: Context, text: str) -> Reply:
    args = argparse.parse(text, OPTION_ALIASES)
    if not args.words and not args.options:
        return Reply(modal=Modal("patient_add", {"channel_id": ctx.channel_id}))
    if not args.words:
        return Reply("patient/invalid", {"problem": "no_name"})
    name, kana = _split_name(args.words)
    if "kana" in args.options:
        kana = jaconv.hira2kata(argparse.fold(args.options["kana"]))
    return create(ctx, name=name, kana=kana, area=args.options.get("area", ""),
                  care=args.options.get("care", ""), consent=args.options.get("consent", "unknown"),
                  unknown_options=sorted(set(args.options) - {"area", "care", "consent", "kana"}))


def create(ctx: Context, *, name: str, kana: str, area: str, care: str, consent: str,
           unknown_options: list[str] = ()) -> Reply:
    problems = validate_new(name, kana, area, care, consent, unknown_options)
    if problems:
        return Reply("patient/invalid", {"problem": "fields", "problems": problems})
    same = active_patients_named(ctx.session, name, kana)
    patient = Patient(code="", name=name.strip(), kana=kana.strip(),
                      area=area.strip(), care_level=normalise_care(care) or "",
                      consent=CONSENT[consent.strip().lower()], created_by_id=ctx.member.id,
                      created_at=ctx.now, channel_id=None)
    insert_patient(ctx.session, patient)
    ctx.session.add(CareTeamMember(patient_id=patient.id, member_id=ctx.member.id, added_at=ctx.now))
    audit(ctx, "patient.add", patient=patient)
    return Reply("patient/added", {"patient": patient, "same": same})


def list_patients(ctx: Context, text: str) -> Reply:
    args = argparse.parse(text)
    show_all = any(argparse.fold(w).lower() in {"all", "全員", "すべて", "全部"} for w in args.words)
    show_ended = any(argparse.fold(w).lower() in {"ended", "終了"} for w in args.words)
    query = select(Patient).order_by(Patient.id)
    if not show_ended:
        query = query.where(Patient.status == "active")
    if not (show_all or is_admin(ctx)):
        query = query.join(CareTeamMember, CareTeamMember.patient_id == Patient.id).where(
            CareTeamMember.member_id == ctx.member.id)
    rows = []
    for patient in ctx.session.exec(query).all():
        visible = may_access_notes(ctx, patient)
        rows.append({"patient": patient, "visible": visible, "initials": initials(patient)})
    audit(ctx, "patient.list", target="all" if show_all else "mine", detail=f"{len(rows)} rows")
    return Reply("patient/list", {"rows": rows, "show_all": show_all or is_admin(ctx)})


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
    notes = ctx.session.exec(select(func.count(Note.id)).where(Note.patient_id == patient.id)).one()
    return Reply("patient/show", {
        "patient": patient, "visible": visible, "initials": initials(patient),
        "team": care_team(ctx.session, patient), "note_count": notes,
    })


def _may_manage(ctx: Context, patient: Patient) -> bool:
    return is_admin(ctx) or in_care_team(ctx.session, patient, ctx.member.id)


def _refuse(ctx: Context, patient: Patient, action: str) -> Reply:
    audit(ctx, action, patient=patient, allowed=False, detail="not in care team")
    return Reply("common/refused", {"reason": "not_team", "code": patient.code})


def team(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "team")
    if other:
        return other
    verb, members_text = argparse.membership_verb(rest)
    args = argparse.parse(members_text)
    if verb in ("", "list"):
        return show(ctx, patient.code)
    if verb not in {"add", "remove"} or not args.mentions:
        return Reply("patient/invalid", {"problem": "team_usage", "code": patient.code})
    if not _may_manage(ctx, patient):
        return _refuse(ctx, patient, f"team.{verb}")
    changed = change_membership(ctx.session, CareTeamMember, "patient_id", patient.id, verb, args.mentions,
                                ctx.now, **({"added_at": ctx.now} if verb == "add" else {}))
    audit(ctx, f"team.{verb}", patient=patient, target=",".join(m.slack_user_id for m in changed))
    return Reply("patient/team_changed", {
        "patient": patient, "verb": verb, "changed": changed, "team": care_team(ctx.session, patient),
    })


def end(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "end")
    if other:
        return other
    args = argparse.parse(rest, OPTION_ALIASES)
    outcome = _match_outcome(args.options.get("outcome") or (args.words[0] if args.words else ""))
    if outcome is None:
        return Reply("patient/invalid", {"problem": "bad_outcome", "code": patient.code, "outcomes": OUTCOMES})
    try:
        ended_on = parse_date(args.options["date"], ctx.today, "past") if "date" in args.options else ctx.today
    except DateError as e:
        return Reply("patient/invalid", {"problem": "bad_date", "message": str(e)})
    if ended_on is None or ended_on > ctx.today:
        return Reply("patient/invalid", {"problem": "bad_end_date", "value": args.options.get("date", "")})
    if not _may_manage(ctx, patient):
        return _refuse(ctx, patient, "patient.end")
    if patient.status == "ended":
        return Reply("patient/invalid", {"problem": "already_ended", "patient": patient})
    patient.status, patient.outcome, patient.ended_on = "ended", outcome, ended_on
    ctx.session.add(patient)
    audit(ctx, "patient.end", patient=patient, detail=f"{outcome} {ended_on.isoformat()}")
    return Reply("patient/ended", {"patient": patient})


def _match_outcome(value: str) -> str | None:
    value = argparse.fold(value).strip()
    if not value:
        return None
    if value in OUTCOMES:
        return value
    hits = [o for o in OUTCOMES if value in o]
    return hits[0] if len(hits) == 1 else None


def consent(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "consent")
    if other:
        return other
    value = CONSENT.get(argparse.fold(rest).strip().lower())
    if value is None:
        return Reply("patient/invalid", {"problem": "bad_consent_value", "code": patient.code})
    if not _may_manage(ctx, patient):
        return _refuse(ctx, patient, "patient.consent")
    patient.consent = value
    ctx.session.add(patient)
    audit(ctx, "patient.consent", patient=patient, detail=value)
    return Reply("patient/consent_changed", {"patient": patient})


def channel(ctx: Context, text: str) -> Reply:
    patient, rest, other = _target(ctx, text, "channel")
    if other:
        return other
    if not _may_manage(ctx, patient):
        return _refuse(ctx, patient, "patient.channel")
    args = argparse.parse(rest)
    patient.channel_id = args.channels[0] if args.channels else ctx.channel_id
    ctx.session.add(patient)
    audit(ctx, "patient.channel", patient=patient, detail=patient.channel_id or "")
    return Reply("patient/channel_set", {"patient": patient})


def add_from_form(ctx: Context, values: dict[str, Any]) -> Reply:
    """The `/patient add` modal: errors come back per field."""
    fields = {k: (values.get(k) or "").strip() for k in ("name", "kana", "area", "care", "consent")}
    problems = validate_new(fields["name"], fields["kana"], fields["area"], fields["care"],
                            fields["consent"] or "unknown")
    if problems:
        return Reply(field_errors={FIELD_OF_PROBLEM.get(p, "name"): (p, {}) for p in problems})
    return create(ctx, name=fields["name"], kana=jaconv.hira2kata(fields["kana"]), area=fields["area"],
                  care=fields["care"], consent=fields["consent"] or "unknown")


FIELD_OF_PROBLEM = {"no_name": "name", "name_too_long": "name", "area_too_long": "area",
                    "bad_care": "care", "bad_consent": "consent"}

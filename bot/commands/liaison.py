"""/liaison: structured liaison notes on the team's unified forms. Parses
what people type and presses, and words the answers; the rules live in
`bot.liaison`."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import wraps
from typing import Any, Callable

from sqlmodel import select

from bot.commands import args
from bot.commands.common import button_id, resolve_patient
from bot.context import Context
from bot.forms import Form, FormField, Option, initial_values, validate
from bot.liaison import notes
from bot.liaison.notes import Refused
from bot.liaison.posts import announcement, announcement_when_sent, channel_post
from bot.lookup import normalise
from bot.people import Place
from bot.privacy import audit, initials, is_admin
from bot.replies import DM, Action, FormView, Message, Reply
from bot.requests import Request
from bot.store.models import Member, Note, Patient
from bot.store.queries import members_keyed

COMMAND = "/liaison"
LIST_WORDS = {"list", "一覧", "履歴", "ls"}
HELP_WORDS = {"help", "ヘルプ", "使い方", "?", "？", "usage"}
# Words that look like a subcommand: never stored as a note's whole body.
COMMAND_WORDS = {"edit", "編集", "修正", "訂正", "delete", "del", "削除", "消す", "remove", "rm", "add", "追加",
                 "show", "表示", "new", "新規", "form", "フォーム", "様式"}
DEFAULT_LIST, MAX_LIST = 5, 20
SUBMIT = "liaison_submit"
CORRECT = "liaison_correct_submit"
SWITCH = "liaison_form_type"
SWITCH_FIELD = "form_type"


class NoteGone(Exception):
    """The note a button names no longer exists."""


def refusal(refused: Refused) -> Reply:
    return Reply("common/refused", {"reason": refused.reason, "code": refused.patient.code})


def refusals(handler: Callable[..., Reply]) -> Callable[..., Reply]:
    """A refusal (already audited) becomes the polite reply saying why."""

    @wraps(handler)
    def guarded(ctx: Context, *args: Any) -> Reply:
        try:
            return handler(ctx, *args)
        except Refused as refused:
            return refusal(refused)
        except NoteGone:
            return Reply("liaison/invalid", {"problem": "note_gone"})

    return guarded


def only_reads(words: list[str]) -> bool:
    """`/liaison <patient, one or more words> [list [n]]` and help show;
    a patient alone opens the form, which stores nothing until sent."""
    listing = words[-1:] if not words[-1:] or not words[-1].isdigit() else words[-2:-1]
    return len(words) <= 1 or words[0] in HELP_WORDS or bool(set(listing) & LIST_WORDS)


@refusals
def handle(ctx: Context, text: str) -> Reply:
    word, _ = args.first_word(text)
    if not word or word in HELP_WORDS:
        return Reply("liaison/usage", {"forms": ctx.forms.ordered})
    patient, rest, other = resolve_patient(ctx, COMMAND, text)
    if other:
        return other
    word, after = args.first_word(rest)
    if word in LIST_WORDS:
        return list_notes(ctx, patient, after)
    if not rest.strip():
        return open_form(ctx, patient)
    if word in HELP_WORDS or (word in COMMAND_WORDS and not after.strip()):
        return Reply("liaison/usage", {"forms": ctx.forms.ordered, "unknown": "" if word in HELP_WORDS else word,
                                       "code": patient.code})
    named = _form_named(ctx, word)
    if named is not None:  # `/liaison 山田 状態変化 発熱`: that form, with the text in it
        return open_form(ctx, patient, named.id, text=args.typed_text(after))
    return quick_note(ctx, patient, rest)


def _form_named(ctx: Context, word: str) -> Form | None:
    """A form named by its id or (a unique start of) its title: 状態変化, 退院, condition."""
    key = normalise(word)
    if len(key) < 2:
        return None
    hits = [f for f in ctx.forms.ordered if key == normalise(f.id) or normalise(f.title).startswith(key)]
    return hits[0] if len(hits) == 1 else None


def open_form(ctx: Context, patient: Patient, form_id: str | None = None, text: str = "",
              typed: dict[str, Any] | None = None) -> Reply:
    """The form for this patient. `typed`: what was already in the form
    before its type was switched, kept in the fields both forms share."""
    notes.check_may_write(ctx, patient)
    form = ctx.forms.get(form_id or "") or ctx.forms.default
    shared = {f.id for f in form.fields}
    initial: dict[str, Any] = {**initial_values(form, ctx.today),
                               **{k: v for k, v in (typed or {}).items() if k in shared and v not in (None, "", [])},
                               SWITCH_FIELD: form.id}
    first_text = _main_field(form)
    if text and first_text:
        initial[first_text.id] = text[:first_text.max_length or len(text)]
    switch = FormField(id=SWITCH_FIELD, label="様式", type="choice", required=True, on_change=SWITCH,
                       aliases=("種類", "様式の種類"), options=tuple(Option(f.id, f.title) for f in ctx.forms.ordered))
    return Reply(form=FormView(
        form=form.with_first(switch), submit=SUBMIT, initial=initial,
        meta={"patient": patient.code, "form": form.id, "place": str(ctx.place) if ctx.place else None},
        intro=Message("liaison/form_intro", {"patient": patient, "initials": initials(patient)}),
    ))


_URGENT_MARK = re.compile(r"^(?:[!！]+|緊急[:：]?)\s*")
_REPLY_MARK = re.compile(r"\s*返信要[:：]?\s*")


def quick_note(ctx: Context, patient: Patient, text: str) -> Reply:
    """`/liaison 山田 本文`; `!` or 緊急 first marks it urgent, 返信要 asks for
    an answer."""
    notes.check_may_write(ctx, patient)
    form = ctx.forms.quick()
    typed = args.typed_text(text)
    urgent = bool(_URGENT_MARK.match(typed))
    typed = _URGENT_MARK.sub("", typed, count=1)
    wants_reply = bool(_REPLY_MARK.search(typed)) and "reply_needed" in {f.id for f in form.fields}
    typed = _REPLY_MARK.sub(" ", typed).strip() if wants_reply else typed
    raw = {form.quick_field: typed, **({"reply_needed": "yes"} if wants_reply else {})}
    clean, errors = validate(form, raw)
    if errors:
        code, params = errors[form.quick_field]
        reply = Reply("liaison/invalid", {"problem": "field", **params, "field_problem": code})
        if code == "too_long":  # not lost: the form opens with the text in it, to shorten there
            reply.form = open_form(ctx, patient, form.id).form
            reply.form.initial[form.quick_field] = typed
            reply.values["opened_form"] = True
        return reply
    return stored(ctx, patient, form, clean, urgency=notes.URGENT if urgent else None)


def stored(ctx: Context, patient: Patient, form: Form, clean: dict[str, Any], urgency: str | None = None) -> Reply:
    note, duplicate = notes.store(ctx, patient, form, clean, urgency)
    values = {"note": note, "patient": patient, "form": form, "duplicate": duplicate}
    if duplicate or not note.channel:
        return Reply("liaison/stored", values)
    # Stored in this transaction: no one can have acknowledged it yet.
    return Reply("liaison/stored", values, posts=[channel_post(ctx, note, acks=0)])


def _patient_of(ctx: Context, code: Any) -> Patient | None:
    return ctx.session.exec(select(Patient).where(Patient.code == str(code or ""))).first()


def submit_form(ctx: Context, request: Request) -> Reply:
    raw = dict(request.values)
    form = _form_filled_in(ctx, request.meta.get("form"), raw.pop(SWITCH_FIELD, None), set(raw))
    patient = _patient_of(ctx, request.meta.get("patient"))
    if patient is None or form is None:
        return Reply(field_errors={SWITCH_FIELD: ("form_gone", {})})
    try:
        notes.check_may_write(ctx, patient)
    except Refused as refused:
        return Reply(field_errors={SWITCH_FIELD: ("refused", {"reason": refused.reason, "code": patient.code})})
    clean, errors = validate(form, raw, today=ctx.today)
    if errors:
        return Reply(field_errors=errors)
    reply = stored(ctx, patient, form, clean)
    reply.answer = DM  # the form has closed: confirm by DM
    return reply


def _form_filled_in(ctx: Context, shown: Any, chosen: Any, fields: set[str]) -> Form | None:
    """The form whose fields were filled in. The type menu may name another
    when its switch had not landed yet (or failed): errors on fields the
    modal does not have would show nothing at all, so what was filled in is
    checked and stored, whole, as the form it was filled in. A modal
    submits every field it has: the form with exactly those fields, the
    one the metadata names first (open_form writes it with the fields);
    failing that (the console sends only what was filled), the one it names."""
    named = [f for f in (ctx.forms.get(shown), ctx.forms.get(chosen)) if f is not None]
    for form in [*named, *ctx.forms.ordered]:
        if {f.id for f in form.fields} == fields:
            return form
    return named[0] if named else None


@refusals
def change_form(ctx: Context, request: Request) -> Reply:
    """The form's first field picked another form: the same checks, that form."""
    patient = _patient_of(ctx, request.meta.get("patient"))
    if patient is None:
        return Reply("liaison/invalid", {"problem": "note_gone"})
    return open_form(ctx, patient, request.text, typed=_carried(ctx, request))


def _carried(ctx: Context, request: Request) -> dict[str, Any]:
    """What stays when the form type changes: fields both forms have, and
    the main text (the first long text field) moved to the new form's."""
    typed = dict(request.values)
    old, new = ctx.forms.get(str(request.meta.get("form") or "")), ctx.forms.get(request.text)
    old_main, new_main = (_main_field(f) for f in (old, new))
    if old_main and new_main and typed.get(old_main.id) and not typed.get(new_main.id):
        typed[new_main.id] = typed[old_main.id]
    return typed


def _main_field(form: Form | None) -> FormField | None:
    return next((f for f in form.fields if f.type == "long_text"), None) if form else None


def _pressed_note(ctx: Context, request: Request, action: str) -> tuple[Note, Patient]:
    """The note a button names and its patient (NoteGone, or Refused for an
    outsider, are answered by `refusals`)."""
    found = notes.readable_note(ctx, button_id(request), action)
    if found is None:
        raise NoteGone()
    return found


@refusals
def show_note(ctx: Context, request: Request) -> Reply:
    note, patient = _pressed_note(ctx, request, "note.read")
    audit(ctx, "note.read", patient=patient, target=f"note:{note.id}")
    form = ctx.forms.get(note.form_id)
    revisions = [{"at": r.corrected_at, "by": ctx.session.get(Member, r.corrected_by_id), "reason": r.reason,
                  "fields": notes.note_fields(form, r)} for r in notes.revisions(ctx.session, note)]
    may_correct = note.author_id == ctx.member.id or is_admin(ctx)
    return Reply("liaison/note", {
        "note": note, "patient": patient, "form_title": notes.form_title(ctx.forms, note),
        "fields": notes.note_fields(form, note), "revisions": revisions,
        "author": ctx.session.get(Member, note.author_id), "acks": notes.acked_by(ctx.session, note),
    }, [Action.make("note_correct", note.id)] if may_correct and form else [])


REASON = FormField(id="correction_reason", label="訂正の理由", type="long_text", required=True, max_length=500,
                   placeholder="例: 体温を書き間違えたため")


def _with_reason(form: Form) -> Form:
    return replace(form, fields=(*form.fields, REASON))


@refusals
def open_correction(ctx: Context, request: Request) -> Reply:
    """「訂正する」: the note in its own form, as it reads now, and a reason."""
    note, patient = _pressed_note(ctx, request, "note.read")
    notes.check_may_correct(ctx, note, patient)
    form = ctx.forms.get(note.form_id)
    if form is None:
        return Reply("liaison/invalid", {"problem": "note_gone"})
    return Reply(form=FormView(
        form=_with_reason(form), submit=CORRECT,
        initial=json.loads(note.body_json), meta={"note": note.id},
        intro=Message("liaison/form_intro", {"patient": patient, "initials": initials(patient)})))


@refusals
def submit_correction(ctx: Context, request: Request) -> Reply:
    note_id = args.row_id(request.meta.get("note"))
    note = ctx.session.get(Note, note_id) if note_id else None
    if note is None or ctx.forms.get(note.form_id) is None:
        return Reply(field_errors={REASON.id: ("form_gone", {})})
    patient = ctx.session.get(Patient, note.patient_id)
    try:
        notes.check_may_correct(ctx, note, patient)
    except Refused as refused:
        return Reply(field_errors={REASON.id: ("refused", {"reason": refused.reason, "code": patient.code})})
    form = ctx.forms.get(note.form_id)
    clean, errors = validate(_with_reason(form), request.values, today=ctx.today)
    if errors:
        return Reply(field_errors=errors)
    reason = clean.pop(REASON.id)
    notes.correct(ctx, note, patient, form, clean, reason)
    posts = []
    if note.channel and note.message_id:  # the announcement shows 訂正あり
        posts.append(announcement(ctx, note).sent(place=Place.parse(note.channel), edit_of=note.message_id))
    return Reply("liaison/corrected", {"note": note, "patient": patient, "reason": reason}, answer=DM,
                 posts=posts)


@refusals
def acknowledge(ctx: Context, request: Request) -> Reply:
    note, patient = _pressed_note(ctx, request, "note.ack")
    already = notes.acknowledge(ctx, note, patient)
    return Reply("liaison/acked", {"already": already, "code": patient.code}, update=announcement_when_sent(ctx, note))


def list_notes(ctx: Context, patient: Patient, text: str) -> Reply:
    notes.check_may_read(ctx, patient, "note.list")
    count = args.whole_number(text) if text.strip() else DEFAULT_LIST
    if count is None or count < 0:
        return Reply("liaison/invalid", {"problem": "bad_count", "max": MAX_LIST})
    limit = min(count, MAX_LIST) or DEFAULT_LIST
    found = notes.latest(ctx.session, patient, limit)
    audit(ctx, "note.list", patient=patient, detail=f"{len(found)} notes")
    authors = members_keyed(ctx.session, [note.author_id for note in found])
    acks = notes.ack_counts(ctx.session, [note.id for note in found])
    rows = []
    for note in found:
        fields = notes.note_fields(ctx.forms.get(note.form_id), note)
        rows.append({
            "note": note, "form_title": notes.form_title(ctx.forms, note),
            "summary": " / ".join(v for _, v in fields)[:80], "author": authors.get(note.author_id),
            "ack_count": acks.get(note.id, 0),
        })
    return Reply("liaison/list", {"patient": patient, "rows": rows, "limit": limit})


ACTIONS = {"note_show": show_note, "note_ack": acknowledge, "note_correct": open_correction, SWITCH: change_form}
SUBMISSIONS = {SUBMIT: submit_form, CORRECT: submit_correction}

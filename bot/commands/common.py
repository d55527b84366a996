"""Resolving a `<patient>` or `<facility>` argument into one record, or into
the reply that asks which one / says none was found."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.context import Context
from bot.numbers import row_id
from bot.privacy import audit, care_teams, initials, is_admin, may_access_notes
from bot.replies import Action, Reply
from bot.requests import Request, StaleButton
from bot.store.models import Facility, Patient
from bot.store.queries import load_patients, patient_index
from bot.vacancy.facilities import facility_index

# A button's value may hold 2000 characters; longer text is not carried along.
CARRY_LIMIT = 1500
CHOOSE = "choose"  # the action that runs a command again with the chosen one


BUTTON_VALUE_LIMIT = 2000  # the smallest a front end carries (Slack); a value cut short would fail when pressed


def choice_actions(command: str, choices: list) -> list[Action]:
    """One button per choice; pressing it runs `command` with the choice's
    text. A choice whose text is too long to carry gets no button: the
    reply still names it, and it can be typed."""
    actions = []
    for c in choices:
        text, label = (c["text"], c["label"]) if isinstance(c, dict) else (c.text, c.label)
        value = json.dumps({"command": command, "text": text}, ensure_ascii=False)
        if len(value) <= BUTTON_VALUE_LIMIT:
            actions.append(Action.make(CHOOSE, value, label=label))
    return actions


def button_id(request: Request) -> int:
    """A button value that names a row by id; anything else is a stale button."""
    found = row_id(request.text)
    if found is None:
        raise StaleButton(request.text)
    return found


@dataclass
class PatientChoice:
    code: str
    label: str
    text: str  # the command text to run if this one is chosen


def patient_label(ctx: Context, patient: Patient) -> str:
    """The name only for those who may see it; code, initials and area otherwise."""
    if may_access_notes(ctx, patient):
        return f"{patient.code} {patient.name}"
    area = f"（{patient.area}）" if patient.area else ""
    return f"{patient.code} {initials(patient)}{area}"


def visible_patients(ctx: Context) -> set[int] | None:
    """Who this member may find at all: everyone for admins (None), else
    their own care teams' patients (outsiders learn nothing, not even that
    a name exists)."""
    if is_admin(ctx):
        return None
    return care_teams(ctx.session, ctx.member.id)


def _audit_hidden(ctx: Context, unfiltered) -> None:
    """An outsider named a patient they may not see: they are told "not
    found", and the attempt is recorded for whoever checks the audit trail."""
    if unfiltered.kind == "one":
        patient = load_patients(ctx.session, unfiltered.items)[0]
        audit(ctx, "patient.lookup", patient=patient, allowed=False, detail="not in care team")


def resolve_patient(ctx: Context, command: str, text: str, before: str = "") -> tuple[Patient | None, str, Reply | None]:
    """(patient, rest of text, None) or (None, "", reply to send instead).

    `before` is put back in front of the code when a choice is re-run
    (e.g. `team` for `/patient team <patient> add ...`)."""
    everyone, visible = patient_index(ctx.session), visible_patients(ctx)
    match, rest = (everyone if visible is None else everyone.only(visible)).search_leading(text)
    if match.kind == "none" and visible is not None:
        _audit_hidden(ctx, everyone.search_leading(text)[0])
    found = load_patients(ctx.session, match.items)
    if match.kind == "one":
        return found[0], rest, None
    carry = rest if len(rest) <= CARRY_LIMIT else ""
    choices = [
        PatientChoice(p.code, patient_label(ctx, p), " ".join(x for x in (before, p.code, carry) if x))
        for p in found
    ]
    template = "common/choose" if match.kind == "many" else "common/not_found"
    return None, "", Reply(template, {
        "command": command, "query": match.query, "choices": choices,
        "dropped_text": bool(rest) and not carry,
    }, choice_actions(command, choices))


def resolve_facility(ctx: Context, text: str, before: str) -> tuple[Facility | None, str, Reply | None]:
    """(facility, rest of text, None) or (None, "", the reply asking which / saying none)."""
    if not text.strip():
        return None, "", Reply("vacancy/invalid", {"problem": "no_facility", "sub": before})
    match, rest = facility_index(ctx.session).search_leading(text)
    if match.kind == "one":
        return match.item, rest, None
    carry = rest if len(rest) <= CARRY_LIMIT else ""
    choices = [{"label": f.name, "text": " ".join(x for x in (before, f.name, carry) if x)} for f in match.items]
    return None, "", Reply("vacancy/choose", {"command": "/vacancy", "query": match.query, "choices": choices,
                                              "found": match.kind == "many"}, choice_actions("/vacancy", choices))


def only_shows(words: list[str], subcommands: dict[str, str], showing: set[str]) -> bool:
    """Whether typed words (folded) only ask to see something: no words, a
    bare name (`/patient 山田` shows it), or a subcommand in `showing`. For
    the database-down reply, decided before the command could run."""
    sub = subcommands.get(words[0]) if words else None
    return sub is None or sub in showing

"""Block Kit for Replies: pure functions from data to Slack JSON, tested
without Slack. Text comes from the mrkdwn templates, buttons from a
Reply's actions, modals from a form definition: one builder per field type
serves every form."""

from __future__ import annotations

import json
from typing import Any

from bot.forms import FormField, Option
from bot.render import button_label, confirm_text
from bot.replies import Action, FormView, Message
from bot.slack import mrkdwn

ACTIONS_PER_BLOCK = 25  # Slack's limit of elements in one actions block
MAX_BLOCKS = 50  # Slack's limit of blocks in one message
SUFFIX = "~"  # action_id must be unique in a block: `choose~2` is the 2nd `choose`


def registered_id(action_id: str) -> str:
    """The registry id behind a drawn action_id."""
    return action_id.split(SUFFIX, 1)[0]


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit] or " "}


def button(action: Action, action_id: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "action_id": action_id, "text": plain(button_label(action)),
                               "value": action.value[:2000]}
    if action.style:
        element["style"] = action.style
    if action.confirm:
        element["confirm"] = {"title": plain("確認"), "text": plain(confirm_text(action), 300),
                              "confirm": plain("はい"), "deny": plain("いいえ")}
    return element


def action_blocks(actions: list[Action]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    elements = []
    for action in actions:
        seen[action.id] = seen.get(action.id, 0) + 1
        n = seen[action.id]
        elements.append(button(action, action.id if n == 1 else f"{action.id}{SUFFIX}{n}"))
    return [{"type": "actions", "elements": elements[i:i + ACTIONS_PER_BLOCK]}
            for i in range(0, len(elements), ACTIONS_PER_BLOCK)]


def message(msg: Message) -> dict[str, Any]:
    """A Slack message: `{"text": fallback, "blocks": [...]}`, within Slack's
    50 blocks: a text too long for them ends in "…" before the buttons."""
    body = mrkdwn.render(msg.template, msg.values)
    actions = action_blocks(msg.actions)[:MAX_BLOCKS - 1]
    sections = mrkdwn.sections(body)
    room = MAX_BLOCKS - len(actions)
    if len(sections) > room:
        sections = sections[:room]
        last = sections[-1]["text"]
        last["text"] = last["text"][:mrkdwn.SECTION_LIMIT - 1] + "…"
    return {"text": body[:mrkdwn.SECTION_LIMIT], "blocks": sections + actions}


# --- forms ---------------------------------------------------------------------

def option(o: Option) -> dict[str, Any]:
    return {"text": plain(o.label), "value": o.value[:150]}


def _element(f: FormField, initial: Any) -> dict[str, Any]:
    action_id = f.on_change or "value"
    if f.type in ("text", "long_text"):
        # A longer text already in it (a quick note that was too long) must
        # still fit, so the person can shorten it in place.
        element = {"type": "plain_text_input", "action_id": action_id, "multiline": f.type == "long_text",
                   "max_length": min(max(f.max_length or 0, len(str(initial or ""))), 3000) or None}
        if f.placeholder:
            element["placeholder"] = plain(f.placeholder, 150)
        if initial:
            element["initial_value"] = str(initial)[:3000]
        if element["max_length"] is None:
            del element["max_length"]
    elif f.type in ("choice", "yes_no"):
        element = {"type": "radio_buttons" if f.radio else "static_select", "action_id": action_id,
                   "options": [option(o) for o in f.options[:100]]}
        chosen = next((o for o in f.options if o.value == initial), None)
        if chosen:
            element["initial_option"] = option(chosen)
    elif f.type == "multi_choice":
        element = {"type": "multi_static_select", "action_id": action_id,
                   "options": [option(o) for o in f.options[:100]]}
        chosen = [option(o) for o in f.options if o.value in (initial or [])]
        if chosen:
            element["initial_options"] = chosen
    elif f.type == "date":
        element = {"type": "datepicker", "action_id": action_id}
        if initial:
            element["initial_date"] = str(initial)
    elif f.type == "number":
        element = {"type": "number_input", "action_id": action_id, "is_decimal_allowed": True}
        if f.min is not None:
            element["min_value"] = str(f.min)
        if f.max is not None:
            element["max_value"] = str(f.max)
        if initial is not None and initial != "":
            element["initial_value"] = str(initial)
    else:
        raise ValueError(f"unknown field type {f.type}")
    return element


def field_block(f: FormField, initial: Any = None) -> dict[str, Any]:
    block = {"type": "input", "block_id": f.id, "optional": not f.required, "label": plain(f.label, 2000),
             "element": _element(f, initial)}
    if f.hint:
        block["hint"] = plain(f.hint, 2000)
    if f.on_change:
        block["dispatch_action"] = True
    return block


def view(form_view: FormView) -> dict[str, Any]:
    form = form_view.form
    blocks = []
    if form_view.intro:
        text = mrkdwn.render(form_view.intro.template, form_view.intro.values)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]})
    blocks += [field_block(f, form_view.initial.get(f.id)) for f in form.fields]
    return {
        "type": "modal", "callback_id": form_view.submit,
        "private_metadata": json.dumps(form_view.meta, ensure_ascii=False),
        "title": plain(form.title, 24), "submit": plain(button_label(Action("form_submit"))),
        "close": plain(button_label(Action("form_close"))), "blocks": blocks,
    }


def notice(msg: Message) -> dict[str, Any]:
    """A small modal that only says something (over an open form)."""
    body = mrkdwn.render(msg.template, msg.values)
    return {"type": "modal", "title": plain("お知らせ", 24), "close": plain("閉じる"),
            "blocks": mrkdwn.sections(body)}


def submitted_values(view_state: dict) -> dict[str, Any]:
    """{block_id: value} from a submitted view, whatever the element type."""
    values: dict[str, Any] = {}
    for block_id, actions in view_state.get("state", {}).get("values", {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind in ("static_select", "radio_buttons"):
                values[block_id] = (element.get("selected_option") or {}).get("value")
            elif kind in ("multi_static_select", "checkboxes"):
                values[block_id] = [o["value"] for o in element.get("selected_options") or []]
            elif kind == "datepicker":
                values[block_id] = element.get("selected_date")
            else:
                values[block_id] = element.get("value")
    return values

"""Modal submissions."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.commands import liaison, patient
from bot.render import render_text
from bot.replies import Reply
from bot.runtime import Runtime, Who
from bot.slack import deliver


def state_values(view: dict) -> dict[str, Any]:
    """{block_id: value} from a submitted view, whatever the element type."""
    values: dict[str, Any] = {}
    for block_id, actions in view.get("state", {}).get("values", {}).items():
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


def who_from_view(body: dict, view: dict, channel: str | None) -> Who:
    user = body.get("user", {})
    return Who(user_id=user.get("id", ""), name=user.get("username") or user.get("name", ""),
               channel_id=channel, request_key=f"view:{view['id']}")


def answer_submission(ack: Ack, reply: Reply, first_block: str) -> None:
    """Errors go on their fields and the modal stays open (nothing typed is
    lost); otherwise the modal closes."""
    if reply.field_errors:
        ack(response_action="errors", errors=deliver.field_errors(reply))
    elif reply.error:
        ack(response_action="errors", errors={first_block: render_text(reply.template, reply.values)[:150]})
    else:
        ack()


def register(app: App, runtime: Runtime) -> None:
    @app.view("liaison_submit")
    def submit_liaison(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta = json.loads(view["private_metadata"])
        raw = state_values(view)
        form_id = raw.pop("form_type", None) or meta["form"]
        reply = runtime.run(who_from_view(body, view, meta.get("channel")),
                            lambda ctx: liaison.submit_form(ctx, meta["patient"], form_id, raw))
        answer_submission(ack, reply, "form_type")
        deliver.follow_up(runtime, client, reply)

    @app.view("patient_add_submit")
    def submit_patient(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta = json.loads(view["private_metadata"])
        reply = runtime.run(who_from_view(body, view, meta.get("channel")),
                            lambda ctx: patient.add_from_form(ctx, state_values(view)))
        answer_submission(ack, reply, "name")
        deliver.follow_up(runtime, client, reply, dm_to=body["user"]["id"])

"""Forms as data: the unified liaison forms (連絡様式の統一) a team defines in
`config/forms/*.yaml`, and the built-in forms (`templates/forms/*.yaml`:
registering a patient, entering vacancy figures).

A form is an id, a Japanese title and typed fields. This module loads and
checks the definitions (a broken one stops the bot at start) and validates
submitted values, the same way for every form; each front end draws a form
its own way (`bot/slack/blocks.py`, `bot/console.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = {"text", "long_text", "choice", "multi_choice", "date", "number", "yes_no"}
YES_NO = {"yes": "はい", "no": "いいえ"}
# The smallest text limit of any front end (Slack's text input: 3000 characters).
TEXT_LIMIT = 3000


class FormError(ValueError):
    """A form definition is broken; raised at load time, never at submit time."""


class FieldInvalid(ValueError):
    """A submitted value is wrong; `code` and `params` are worded by the
    `common/field_error` template, so the wording stays out of Python."""

    def __init__(self, code: str, **params: Any):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def problem(self) -> tuple[str, dict[str, Any]]:
        return self.code, self.params


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    id: str
    label: str
    type: str
    required: bool = False
    max_length: int | None = None
    options: tuple[Option, ...] = ()
    min: float | None = None
    max: float | None = None
    hint: str = ""
    placeholder: str = ""
    # Draw a choice as radio buttons (few options) rather than a menu.
    radio: bool = False
    # Pressing a new value runs this registered action at once (the liaison
    # form's first field switches the form).
    on_change: str | None = None
    # Other names a person may use for the field (the console's `:fill`).
    aliases: tuple[str, ...] = ()
    # A date of something that happened (observed on): never in the future.
    not_future: bool = False
    # A date field starts as today unless the form says otherwise.
    default_today: bool = True

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)

    def option_label(self, value: Any) -> str:
        return next((o.label for o in self.options if o.value == value), str(value))


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    fields: tuple[FormField, ...]
    order: int = 100
    # The field that `/liaison <patient> <free text>` fills.
    quick_field: str | None = None
    # The field whose value becomes the note's urgency (shown on channel posts).
    urgency_field: str | None = None

    def field(self, field_id: str) -> FormField:
        return next(f for f in self.fields if f.id == field_id)

    def with_options(self, field_id: str, options: list[Option]) -> "Form":
        """The same form with one choice field's options filled in at run time."""
        return replace(self, fields=tuple(replace(f, options=tuple(options)) if f.id == field_id else f
                                          for f in self.fields))

    def with_first(self, first: FormField) -> "Form":
        return replace(self, fields=(first, *self.fields))


@dataclass
class FormRegistry:
    # The team's liaison forms, by id.
    forms: dict[str, Form] = field(default_factory=dict)
    # Forms the commands themselves need (patient_add, vacancy_set).
    builtin: dict[str, Form] = field(default_factory=dict)

    @property
    def ordered(self) -> list[Form]:
        return sorted(self.forms.values(), key=lambda f: (f.order, f.id))

    @property
    def default(self) -> Form:
        return self.ordered[0]

    def get(self, form_id: object) -> Form | None:
        """The form by id; None for any other id (form metadata may hold anything)."""
        return self.forms.get(form_id) if isinstance(form_id, str) else None

    def quick(self) -> Form:
        return next(f for f in self.ordered if f.quick_field)


def _parse_field(form_id: str, raw: dict[str, Any]) -> FormField:
    where = f"form {form_id!r} field {raw.get('id')!r}"
    if raw.get("type") not in FIELD_TYPES:
        raise FormError(f"{where}: type must be one of {sorted(FIELD_TYPES)}")
    if not raw.get("id") or not raw.get("label"):
        raise FormError(f"{where}: id and label are required")
    options = tuple(_parse_option(o) for o in raw.get("options", ()))
    if raw["type"] == "yes_no":
        options = tuple(Option(v, label) for v, label in YES_NO.items())
    if raw["type"] in {"choice", "multi_choice"} and not options:
        raise FormError(f"{where}: choice fields need options")
    max_length = raw.get("max_length")
    if raw["type"] in {"text", "long_text"}:
        max_length = min(int(max_length or (200 if raw["type"] == "text" else 2000)), TEXT_LIMIT)
    return FormField(
        id=str(raw["id"]), label=str(raw["label"]), type=raw["type"],
        required=bool(raw.get("required", False)), max_length=max_length, options=options,
        min=raw.get("min"), max=raw.get("max"), hint=str(raw.get("hint", "")),
        placeholder=str(raw.get("placeholder", "")), radio=bool(raw.get("radio", raw["type"] == "yes_no")),
        aliases=tuple(str(a) for a in raw.get("aliases", ())), not_future=bool(raw.get("not_future", False)),
        default_today=bool(raw.get("default_today", raw["type"] == "date")),
    )


def _parse_option(raw: Any) -> Option:
    """`- 至急` (value and label alike) or `- {value: yes, label: あり}`."""
    if isinstance(raw, dict):
        return Option(str(raw["value"]), str(raw.get("label", raw["value"])))
    return Option(str(raw), str(raw))


def parse_form(raw: dict[str, Any]) -> Form:
    if not raw.get("id") or not raw.get("title") or not raw.get("fields"):
        raise FormError(f"form {raw.get('id')!r}: id, title and fields are required")
    form_id = str(raw["id"])
    fields = tuple(_parse_field(form_id, f) for f in raw["fields"])
    ids = [f.id for f in fields]
    if len(ids) != len(set(ids)) or "form_type" in ids:
        raise FormError(f"form {form_id!r}: field ids must be unique and not 'form_type'")
    for ref in ("quick_field", "urgency_field"):
        if raw.get(ref) and raw[ref] not in ids:
            raise FormError(f"form {form_id!r}: {ref} {raw[ref]!r} is not a field")
    return Form(id=form_id, title=str(raw["title"]), fields=fields, order=int(raw.get("order", 100)),
                quick_field=raw.get("quick_field"), urgency_field=raw.get("urgency_field"))


BUILTIN_FORMS = Path(__file__).resolve().parent.parent / "templates" / "forms"


def _load_dir(directory: Path) -> dict[str, Form]:
    forms: dict[str, Form] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            form = parse_form(yaml.safe_load(path.read_text(encoding="utf-8")))
        except FormError as e:
            raise FormError(f"{path}: {e}") from None
        if form.id in forms:
            raise FormError(f"{path}: duplicate form id {form.id!r}")
        forms[form.id] = form
    return forms


def load_forms(directory: Path, builtin_directory: Path = BUILTIN_FORMS) -> FormRegistry:
    registry = FormRegistry(forms=_load_dir(directory), builtin=_load_dir(builtin_directory))
    if not registry.forms:
        raise FormError(f"no forms in {directory}")
    if not any(f.quick_field for f in registry.forms.values()):
        raise FormError("one form needs a quick_field for `/liaison <patient> <text>`")
    return registry


Problem = tuple[str, dict[str, Any]]


def validate(form: Form, raw: dict[str, Any], today: date | None = None) -> tuple[dict[str, Any], dict[str, Problem]]:
    """Clean values, and per-field problems to show on the field. `today`
    lets a `not_future` date refuse tomorrow."""
    clean: dict[str, Any] = {}
    errors: dict[str, Problem] = {}
    for f in form.fields:
        value = raw.get(f.id)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, "", [], ()):
            if f.required:
                errors[f.id] = ("required", {"label": f.label})
            continue
        try:
            clean[f.id] = _clean_value(f, value)
            if f.not_future and today is not None and clean[f.id] > today.isoformat():
                raise FieldInvalid("future_date", label=f.label, today=today)
        except FieldInvalid as e:
            errors[f.id] = e.problem
    return clean, errors


def initial_values(form: Form, today: date) -> dict[str, Any]:
    """What a fresh form shows: today in date fields that start as today."""
    return {f.id: today.isoformat() for f in form.fields if f.type == "date" and f.default_today}


def _clean_value(f: FormField, value: Any) -> Any:
    if f.type in {"text", "long_text"}:
        text = str(value)
        if f.max_length and len(text) > f.max_length:
            raise FieldInvalid("too_long", label=f.label, limit=f.max_length, length=len(text))
        return text
    if f.type in ("choice", "yes_no"):
        if value not in f.option_values:
            raise FieldInvalid("not_an_option", label=f.label, options=[o.label for o in f.options])
        return value
    if f.type == "multi_choice":
        values = [value] if isinstance(value, str) else list(value)
        bad = [v for v in values if v not in f.option_values]
        if bad:
            raise FieldInvalid("not_an_option", label=f.label, options=[o.label for o in f.options])
        return values
    if f.type == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise FieldInvalid("bad_date", label=f.label) from None
    if f.type == "number":
        try:
            number = float(str(value))
        except ValueError:
            raise FieldInvalid("not_a_number", label=f.label) from None
        if not math.isfinite(number):  # `nan`, `inf`, `1e999`: float() takes them, JSON cannot hold them
            raise FieldInvalid("not_a_number", label=f.label)
        if (f.min is not None and number < f.min) or (f.max is not None and number > f.max):
            raise FieldInvalid("out_of_range", label=f.label, min=_fmt(f.min), max=_fmt(f.max))
        return int(number) if number.is_integer() else number
    raise ValueError(f"unknown field type {f.type}")


def _fmt(n: float | None) -> str:
    if n is None:
        return ""
    return str(int(n)) if float(n).is_integer() else str(n)


def display_value(f: FormField, value: Any) -> str:
    """How a stored value reads in a note."""
    if f.type == "multi_choice":
        return "、".join(value)
    if f.type == "yes_no":
        return YES_NO.get(value, str(value))
    if f.type == "date":
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return f"{day.month}/{day.day}({'月火水木金土日'[day.weekday()]})"  # as people write it: 11/25(水)
    if f.type == "choice":
        return f.option_label(value)
    return str(value)

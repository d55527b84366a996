"""Form definitions come from YAML and are validated per field."""

import pytest

from bot.forms import FormError, load_forms, parse_form, validate
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def forms():
    return load_forms(ROOT / "config" / "forms")


def test_shipped_forms(forms):
    assert [f.title for f in forms.ordered] == ["日常連絡", "状態変化報告", "退院時連携", "服薬・処方連絡"]
    discharge = forms.get("discharge")
    for item in ("key_person", "adl_eating", "adl_toilet", "procedures", "medications", "services",
                 "wish_person", "wish_family"):
        discharge.field(item)


def test_validation_problems(forms):
    clean, errors = validate(forms.get("condition"), {
        "urgency": "たぶん", "observed_on": "2026-13-01", "change": "ok", "temperature": "abc"})
    assert errors["urgency"][0] == "not_an_option"
    assert errors["observed_on"][0] == "bad_date"
    assert errors["temperature"][0] == "not_a_number"
    assert clean == {"change": "ok"}


def test_multi_choice_and_yes_no(forms):
    clean, errors = validate(forms.get("discharge"), {
        "discharge_on": "2026-12-01", "hospital": "市立病院 3階", "key_person": "長男",
        "adl_eating": "自立", "adl_toilet": "見守り", "adl_bathing": "全介助", "adl_transfer": "一部介助",
        "procedures": ["経管栄養", "空を飛ぶ"]})
    assert errors == {"procedures": ("not_an_option", errors["procedures"][1])}


def test_broken_definition_is_refused_at_load():
    with pytest.raises(FormError):
        parse_form({"id": "x", "title": "X", "fields": [{"id": "a", "label": "A", "type": "colour"}]})
    with pytest.raises(FormError):
        parse_form({"id": "x", "title": "X", "fields": [{"id": "a", "label": "A", "type": "choice"}]})

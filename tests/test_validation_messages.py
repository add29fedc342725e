"""One table of wordings for pydantic's errors: each kind reads as one plain sentence about its
field, and the same mistake reads the same in a segment definition and in a campaign spec."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from core.campaigns.spec import parse_campaign_spec
from core.errors import UserError
from core.segments.definition import parse_definition
from core.validation_messages import MAX_MESSAGE, field_problem, shortened


class _Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", min_length=1, max_length=2_000)
    count: int = Field(default=1, ge=1, le=10)
    ratio: float = Field(default=0.5, gt=0, lt=1)
    flag: StrictBool = False
    colour: Literal["red", "blue"] = "red"
    tags: tuple[str, ...] = Field(default=(), min_length=1, max_length=2)
    offers: dict[Literal["High", "Low"], str] = Field(default_factory=dict)
    checked: str = ""

    @field_validator("checked")
    @classmethod
    def _no_x(cls, value: str) -> str:
        if "x" in value:
            raise ValueError(f"'checked' may not hold an x, not {value!r}")
        return value


def _problem(document: dict) -> str:
    try:
        _Sample.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        return field_problem(first, first["loc"])
    raise AssertionError("the document parsed")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": 5}, "'name' must be text, not 5"),
        ({"name": ""}, "'name' must be text that is not empty, not ''"),
        ({"name": "x" * 2_001}, "'name' has at most 2,000 characters"),
        ({"count": 1.5}, "'count' must be a whole number, not 1.5"),
        ({"count": "lots"}, "'count' must be a whole number, not 'lots'"),
        ({"count": 0}, "'count' must be at least 1, not 0"),
        ({"count": 11}, "'count' must be at most 10, not 11"),
        ({"ratio": 0}, "'ratio' must be more than 0, not 0"),
        ({"ratio": 1}, "'ratio' must be less than 1, not 1"),
        ({"ratio": "half"}, "'ratio' must be a number, not 'half'"),
        ({"flag": "yes"}, "'flag' must be true or false, not 'yes'"),
        ({"colour": "green"}, "'colour' must be red or blue, not 'green'"),
        ({"tags": "a"}, "'tags' must be a list"),
        ({"tags": []}, "'tags' holds at least 1 items (this one has 0)"),
        ({"tags": ["a", "b", "c"]}, "'tags' holds at most 2 items (this one has 3)"),
        ({"tags": [5]}, "'tags' must be text, not 5"),  # the position in a list is not a place for people
        ({"offers": {"Mid": "x"}}, "offers for 'Mid': use High or Low"),
        ({"size": 1}, "unknown field 'size'"),
        ({"we'ird\nkey": 1}, 'unknown field "we\'ird\\nkey"'),  # escaped, on one line
        ({"checked": "xx"}, "'checked' may not hold an x, not 'xx'"),  # a validator's own sentence, as it is
    ],
)
def test_each_kind_of_error_is_one_sentence_about_its_field(document, message):
    assert _problem(document) == message


def test_a_missing_field_is_named():
    class Required(BaseModel):
        when: str

    with pytest.raises(ValidationError) as error:
        Required.model_validate({})
    first = error.value.errors(include_url=False)[0]
    assert field_problem(first, first["loc"]) == "'when' is missing"


@pytest.mark.parametrize(
    ("parse", "document", "message"),
    [
        (parse_definition, {"colour": "red"}, "segment definition: unknown field 'colour'"),
        (parse_campaign_spec, {"colour": "red"}, "campaign: unknown field 'colour'"),
        (parse_definition, {"match": 5}, "segment definition: 'match' must be all or any, not 5"),
        (parse_campaign_spec, {"channel": 5}, "campaign: 'channel' must be push, email or in_app, not 5"),
        (parse_definition, {"groups": "x"}, "segment definition: 'groups' must be a list"),
        (parse_campaign_spec, {"platforms": "iOS"}, "campaign: 'platforms' must be a list"),
    ],
)
def test_the_same_mistake_reads_the_same_in_a_definition_and_a_campaign(parse, document, message):
    with pytest.raises(UserError) as error:
        parse(document)
    assert str(error.value) == message


def test_a_long_message_is_cut_with_an_ellipsis():
    assert shortened("short") == "short"
    cut = shortened("x" * 1_000)
    assert len(cut) == MAX_MESSAGE and cut.endswith("…")

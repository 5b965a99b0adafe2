"""Request fields: a value is read as what the OpenAPI document says it is, and nothing more."""

import marshmallow as ma
import pytest

from project.api.fields import WholeNumber


class Query(ma.Schema):
    number = WholeNumber()


@pytest.mark.parametrize(("given", "read"), [("0", 0), ("42", 42), ("-7", -7), ("007", 7), (12, 12), (2**70, 2**70)])
def test_ascii_digits_and_json_integers_are_read(given, read):
    assert Query().load({"number": given}) == {"number": read}


@pytest.mark.parametrize(
    "given",
    [
        "١",  # Arabic-Indic one: int() reads every script's decimal digits
        "𑃴",  # Chakma four
        "２",  # fullwidth two
        "1_0",  # int() skips underscores between digits
        " 3",  # and whitespace around them
        "3\n",
        "+3",
        "",
        "-",
        "3.0",
        "0x10",
        2.5,  # a JSON float, which int() would cut to 2
        2.0,
        True,  # bool is an int in Python, never in JSON
    ],
)
def test_anything_else_int_would_read_is_not_a_valid_integer(given):
    with pytest.raises(ma.ValidationError) as info:
        Query().load({"number": given})
    assert info.value.messages == {"number": ["Not a valid integer."]}

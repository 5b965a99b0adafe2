"""Request fields that accept what the OpenAPI document says and nothing more."""

from __future__ import annotations

import numbers
import re

import marshmallow as ma

ASCII_INTEGER = re.compile(r"-?[0-9]+")


class WholeNumber(ma.fields.Integer):
    """An integer, as JSON Schema's ``integer`` means it: a JSON integer, or in a query string ASCII digits.

    marshmallow's Integer reads a value with ``int()``, which also takes other scripts' digits ("١" is 1),
    surrounding whitespace, underscores ("1_0" is 10) and, from JSON, a float cut to an integer (2.5 is 2).
    """

    def _validated(self, value):
        whole = ASCII_INTEGER.fullmatch(value) if isinstance(value, str) else isinstance(value, numbers.Integral)
        if not whole:
            raise self.make_error("invalid")
        return super()._validated(value)

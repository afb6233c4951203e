"""What the CRM checks on every request before its views run, and adds to every response.

The CRM has no nginx in front of it (the public ALB forwards straight to Gunicorn), so the app itself
bounds what a client may send: a body size (MAX_BODY_BYTES, refused with 413 before it is read) and a
JSON nesting depth (MAX_JSON_DEPTH, refused with 400 before the JSON is parsed; Python's parser would
otherwise recurse until it fails with a RecursionError), and JSON integers longer than Python converts
(sys.get_int_max_str_digits(), 4300 digits: the parser would fail with a ValueError that webargs does not
catch, a 500), refused with 422 naming the field. Responses carry headers that keep the UI from being
framed, sniffed or made to run scripts from anywhere but the CRM itself.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from flask import Flask, Response, request

from .exceptions import InvalidField

MAX_BODY_BYTES = 64 * 1024  # a customer, deal or activity is at most a few KB, even \u-escaped
MAX_JSON_DEPTH = 32  # the CRM's documents nest two levels deep

# The UI loads its own stylesheet and script and nothing else; no page may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
# The longest integer text int() converts (0: no limit). The look-behind makes a search start only at the
# first digit of a run, so it scans a body once however many digits it holds.
INT_DIGITS = sys.get_int_max_str_digits()
_LONG_DIGITS = re.compile(rb"(?<![0-9])[0-9]{%d}" % (INT_DIGITS + 1)) if INT_DIGITS else None
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes, stop_at: int = MAX_JSON_DEPTH) -> int:
    """Return how deeply arrays and objects nest in a JSON text, without parsing it (stops past `stop_at`)."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET):
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_at:
                break
    return deepest


def refuse_deep_json():
    """Answer 400 for a JSON body nested deeper than MAX_JSON_DEPTH (the body is read within its limit)."""
    if request.is_json and json_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        return {"error": "bad_request", "message": f"JSON body nested deeper than {MAX_JSON_DEPTH} levels"}, 400
    return None


class LongNumber(str):
    """A JSON integer too long for int(), kept as its text."""


def parse_int(text: str) -> int | LongNumber:
    """Convert a JSON integer, keeping one too long for int() as a LongNumber."""
    return LongNumber(text) if len(text.lstrip("-")) > INT_DIGITS else int(text)


def long_number_at(value: Any, path: str = "") -> str | None:
    """Return where the first LongNumber is in a parsed JSON value ("amount", "a.b[2]"; "body" for the
    whole), or None."""
    if isinstance(value, LongNumber):
        return path or "body"
    if isinstance(value, dict):
        members = ((f"{path}.{key}" if path else key, item) for key, item in value.items())
    elif isinstance(value, list):
        members = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for name, item in members if (found := long_number_at(item, name))), None)


def refuse_long_numbers():
    """Refuse a JSON body with an integer too long for Python (422 naming the field; 400 if not JSON)."""
    body = request.get_data(cache=True) if request.is_json and _LONG_DIGITS else b""
    if not body or not _LONG_DIGITS.search(body):
        return None
    try:
        value = json.loads(body.decode(), parse_int=parse_int)
    except UnicodeDecodeError:
        return None  # webargs refuses text that is not UTF-8 before it parses a number
    except ValueError:
        return {"error": "bad_request", "message": "the body is not valid JSON"}, 400
    field = long_number_at(value)
    if field is not None:
        raise InvalidField(field, f"a number of more than {INT_DIGITS} digits")
    return None


def add_security_headers(response: Response) -> Response:
    """Add the security headers to a response that does not set them itself."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Bound request bodies and their JSON, and add the security headers to every response of `app`."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.before_request(refuse_deep_json)
    app.before_request(refuse_long_numbers)
    app.after_request(add_security_headers)

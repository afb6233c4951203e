"""What the CRM checks on every request before its views run, and adds to every response.

The CRM has no nginx in front of it (the public ALB forwards straight to Gunicorn), so the app itself
bounds what a client may send: a body size (MAX_BODY_BYTES, refused with 413 before it is read) and a
JSON nesting depth (MAX_JSON_DEPTH, refused with 400 before the JSON is parsed; Python's parser would
otherwise recurse until it fails with a RecursionError). Responses carry headers that keep the UI from
being framed, sniffed or made to run scripts from anywhere but the CRM itself.
"""

from __future__ import annotations

import re

from flask import Flask, Response, request

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


def add_security_headers(response: Response) -> Response:
    """Add the security headers to a response that does not set them itself."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Bound request bodies and add the security headers to every response of `app`."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.before_request(refuse_deep_json)
    app.after_request(add_security_headers)

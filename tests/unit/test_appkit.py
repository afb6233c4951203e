"""The apps' shared request log: every access line is one valid JSON object, whatever the request."""

from __future__ import annotations

import json

from appkit.jsonlog import AccessLog
from appkit.requestlog import RequestLog


def app(environ, start_response):
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_access_lines_are_valid_json_for_hostile_paths(tmp_path):
    log = tmp_path / "access.log"
    observed = []
    wrapped = RequestLog(app, AccessLog(str(log)), "test.access", lambda *a: observed.append(a))
    headers = []
    paths = ['/"quoted"', "/new\nline", "/caf\u00e9", "/back\\slash", "/tab\t</script>"]
    for path in paths:
        wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1",
                 "HTTP_X_REQUEST_ID": 'id-"1"'}, lambda status, h, *exc: headers.append(h))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["path"] for e in entries] == paths
    assert {e["status"] for e in entries} == {201} and {e["request_id"] for e in entries} == {'id-"1"'}
    assert set(entries[0]) >= {"time", "pid", "level", "logger", "message", "duration_ms", "dynamodb_calls"}
    assert all(("X-Request-ID", 'id-"1"') in h for h in headers)
    assert observed[0][:3] == ("GET", "unmatched", 201)


def test_access_log_reopens_after_rotation(tmp_path):
    log = tmp_path / "access.log"
    writer = AccessLog(str(log))
    writer.write_fields('"n":1')
    log.rename(tmp_path / "access.log.1")
    writer._checked = 0  # as if a second had passed
    writer.write_fields('"n":2')
    assert json.loads(log.read_text())["n"] == 2
    assert json.loads((tmp_path / "access.log.1").read_text())["n"] == 1

"""The apps' shared pieces: the request log (every access line one valid JSON object, whatever the request),
the DynamoDB call's retry budget and the admission of requests under overload."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from appkit import aws
from appkit.admission import Admission, buffer_body
from appkit.aws import RetryBudget
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
    # A request id with quotes is not echoed: each request gets a fresh one, in its answer and its line.
    assert {e["status"] for e in entries} == {201}
    assert [e["request_id"] for e in entries] == [dict(h)["X-Request-ID"] for h in headers]
    assert all(re.fullmatch("[0-9a-f]{32}", e["request_id"]) for e in entries)
    assert set(entries[0]) >= {"time", "pid", "level", "logger", "message", "duration_ms", "dynamodb_calls"}
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


# --- the DynamoDB call's retry budget ------------------------------------------------------------------

class FakeClient:
    """A stand-in DynamoDB client whose get_item raises the given errors in turn, then answers."""

    def __init__(self, *errors: Exception, delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delay = delay

    def get_item(self, **kwargs):
        self.calls += 1
        time.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return {"Item": {}}


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetItem")


@pytest.fixture
def fresh_budget(monkeypatch) -> RetryBudget:
    budget = RetryBudget()
    monkeypatch.setattr(aws, "budget", budget)
    return budget


@pytest.mark.parametrize("error", [EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
                                   client_error("ThrottlingException", 400),
                                   client_error("InternalServerError", 500), client_error("Anything", 503)])
def test_a_retryable_error_is_retried_once(fresh_budget, error):
    client = FakeClient(error)
    assert aws.call(client, "get_item") == {"Item": {}} and client.calls == 2


@pytest.mark.parametrize("error", [client_error("ValidationException", 400),
                                   client_error("ResourceNotFoundException", 400),
                                   client_error("ConditionalCheckFailedException", 400)])
def test_a_client_error_is_not_retried(fresh_budget, error):
    client = FakeClient(error)
    with pytest.raises(ClientError):
        aws.call(client, "get_item")
    assert client.calls == 1


def test_never_more_than_one_retry(fresh_budget):
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    client = FakeClient(down, down, down)
    with pytest.raises(EndpointConnectionError):
        aws.call(client, "get_item")
    assert client.calls == 2


def test_no_retry_when_it_would_not_fit_in_the_deadline(fresh_budget):
    client = FakeClient(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), delay=0.3)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        aws.call(client, "get_item", deadline=1.5)  # 0.3 s spent + a connect and read timeout > 1.5 s
    assert client.calls == 1 and time.monotonic() - started < 1


def test_an_empty_budget_stops_retries_until_calls_refill_it(fresh_budget):
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    retried = 0
    for _ in range(40):  # an outage: every call fails
        client = FakeClient(down, down)
        with pytest.raises(EndpointConnectionError):
            aws.call(client, "get_item")
        retried += client.calls - 1
    # 10 saved retries, then one per ten calls: the outage costs DynamoDB 1.4 calls per request, not 2
    assert 10 <= retried <= 14


def test_the_apps_clients_have_short_timeouts_and_no_botocore_retries():
    config = aws.REQUEST_CONFIG
    assert config.connect_timeout + config.read_timeout <= aws.CALL_DEADLINE_SECONDS
    assert config.retries["total_max_attempts"] == 1


# --- admission: bounded concurrency, bounded queue, fast 503 ---------------------------------------------

class Blocking:
    """A WSGI app whose requests wait until released; counts the requests it runs at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self.bodies: list[bytes] = []

    def __call__(self, environ, start_response):
        self.running += 1
        self.most = max(self.most, self.running)
        self.bodies.append(environ["wsgi.input"].read())
        if not environ["PATH_INFO"].startswith("/health"):
            self.release.wait(5)
        self.running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def request(app, path: str = "/api/customers", body: bytes = b"", stream=None) -> tuple[str, dict, bytes]:
    """Call a WSGI app in this thread; return (status line, headers, body)."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": "POST" if body or stream else "GET", "PATH_INFO": path,
               "CONTENT_LENGTH": str(len(body)) if body else "", "wsgi.input": stream or io.BytesIO(body)}
    if stream:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    out = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], out


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(target(*args)), daemon=True)
    thread.start()
    return thread, result


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_admission_runs_a_few_queues_a_few_and_refuses_the_rest_at_once():
    inner = Blocking()
    app = Admission(inner, active=2, waiting=1, wait_seconds=5, max_body=1024)
    running = [in_thread(request, app) for _ in range(2)]
    wait_until(lambda: inner.running == 2)
    queued = in_thread(request, app)
    wait_until(lambda: app.waiting == 1)
    started = time.monotonic()
    status, headers, body = request(app)
    assert status.startswith("503") and headers["Retry-After"] == "1" and json.loads(body)["error"] == "overloaded"
    assert time.monotonic() - started < 0.1
    assert request(app, "/health")[0].startswith("200")  # the load balancer's check never waits
    inner.release.set()
    for thread, result in [*running, queued]:
        thread.join(5)
        assert result[0][0].startswith("200")
    assert inner.most == 2 + 1  # two admitted requests and the health check


def test_a_wait_in_the_queue_is_bounded():
    inner = Blocking()
    app = Admission(inner, active=1, waiting=5, wait_seconds=0.2, max_body=1024)
    holder = in_thread(request, app)
    wait_until(lambda: inner.running == 1)
    started = time.monotonic()
    status, _, page = request(app, "/customers")
    assert status.startswith("503") and 0.2 <= time.monotonic() - started < 1
    assert b"busy" in page  # a page for people outside the API
    inner.release.set()
    holder[0].join(5)


class SlowStream:
    """A request body that arrives only when allowed."""

    def __init__(self) -> None:
        self.go = threading.Event()

    def read(self, size: int = -1) -> bytes:
        self.go.wait(5)
        return b'{"a": 1}'


def test_a_slow_body_holds_no_slot():
    inner = Blocking()
    inner.release.set()
    app = Admission(inner, active=1, waiting=0, wait_seconds=0, max_body=1024)
    stream = SlowStream()
    slow = in_thread(request, app, "/api/customers", b"", stream)
    time.sleep(0.1)
    assert request(app)[0].startswith("200")  # the slot is free while the slow body trickles in
    stream.go.set()
    slow[0].join(5)
    assert slow[1][0][0].startswith("200") and b'{"a": 1}' in inner.bodies


def test_a_body_over_the_limit_is_left_unread_for_the_app_to_refuse():
    environ = {"CONTENT_LENGTH": str(10**9), "wsgi.input": None}
    buffer_body(environ, 1024)
    assert environ["wsgi.input"] is None and environ["CONTENT_LENGTH"] == str(10**9)
    chunked = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 5000)}
    buffer_body(chunked, 1024)
    assert chunked["CONTENT_LENGTH"] == "1025" and "HTTP_TRANSFER_ENCODING" not in chunked

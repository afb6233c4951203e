"""CloudWatch Logs filter patterns: AWS's documented examples (Filter and Pattern Syntax), then our own cases
and properties."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sre_workshop.twin.logfilter import FilterPatternError, compile_pattern


def matching(pattern: str, messages: list[str]) -> list[int]:
    """Return the 1-based numbers of the messages the pattern matches (as the docs number them)."""
    compiled = compile_pattern(pattern)
    return [i for i, message in enumerate(messages, 1) if compiled.matches(message)]


# --- AWS's documented examples --------------------------------------------------------------------------------

TERM_EVENTS = [
    "[ERROR] A fatal exception has occurred",
    "Exiting with ERRORCODE: -1",
    "[ERROR] Caught IllegalArgumentException",
    "[ERROR] Unhandled Exception",
    "[WARN] Failed to process the request",
    "[ERROR] Unable to continue: Failed to process the request",
    "[INFO] request processed",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", [1, 2, 3, 4, 5, 6, 7]),  # Example 1: match everything
        ("ERROR", [1, 2, 3, 4, 6]),  # Example 2: ERRORCODE contains ERROR
        ('"ERROR" - "Exiting"', [1, 3, 4, 6]),  # Example 3: include and exclude
        ("ERROR Exception", [3, 4]),  # Example 4: both terms (IllegalArgumentException contains one)
        ("Failed to process the request", [5, 6]),  # every term
        ('"Failed to process the request"', [5, 6]),  # the exact phrase
        ('"process the"', [5, 6]),
        ('"processed the"', []),
    ],
)
def test_documented_term_examples(pattern, expected):
    assert matching(pattern, TERM_EVENTS) == expected


OR_EVENTS = ["ERROR WARN message", "ERROR message", "WARN message"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", [1, 2]),
        ("?ERROR ?WARN", [1, 2, 3]),
        ("ERROR WARN", [1]),
        ("ERROR -WARN", [2]),
        ("[w1=ERROR, w2]", [2]),
        ("[w1=ERROR || w1=WARN, w2]", [2, 3]),
        ("[w1=ERROR || w1=WARN, ...]", [1, 2, 3]),
        ("[w1!=ERROR && w1!=WARN, ...]", []),
        ("{$.foo = bar}", []),  # not JSON: never matches a JSON pattern
    ],
)
def test_documented_or_examples(pattern, expected):
    assert matching(pattern, OR_EVENTS) == expected


def test_documented_json_or_example():
    events = ['{"foo": "bar"}', '{"foo": "baz"}']
    assert matching("{$.foo = bar}", events) == [1]
    assert matching("{$.foo = baz }", events) == [2]
    assert matching("{$.foo = bar || $.foo = baz }", events) == [1, 2]


TRAIL_EVENT = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
    },
    indent=2,
)


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.eventType = "UpdateTrail" }',
        "{ $.sourceIPAddress != 123.123.* }",
        '{ $.arrayKey[0] = "value" }',
        "{ $.objectList[1].id = 2 }",
        "{ $.SomeObject IS NULL }",
        "{ $.SomeOtherObject NOT EXISTS }",
        "{ $.ThisFlag IS TRUE }",
    ],
)
def test_documented_json_examples_match(pattern):
    assert compile_pattern(pattern).matches(TRAIL_EVENT)


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.eventType = "UpdateTrai" }',
        "{ $.sourceIPAddress != 111.111.* }",
        '{ $.arrayKey[2] = "value" }',
        "{ $.objectList[1].id = 1 }",
        "{ $.eventType IS NULL }",
        "{ $.SomeObject NOT EXISTS }",
        "{ $.ThisFlag IS FALSE }",
        "{ $.SomeOtherObject IS NULL }",
        "{ $.eventType = Update*Trail }",
    ],
)
def test_documented_json_examples_turned_around_do_not_match(pattern):
    assert not compile_pattern(pattern).matches(TRAIL_EVENT)


USERS_EVENT = json.dumps(
    {
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        (
            '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
            True,
        ),
        (
            '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch)'
            " && $.actions[2] = nomatch }",
            False,
        ),
        ("{ $.coordinates[1][2] = 6 }", True),
        ("{ $.users = 1 }", False),  # an array is not a value node: neither = ...
        ("{ $.users != 1 }", False),  # ... nor != matches
        ("{ $.user != 1 }", False),  # nor for an object
    ],
)
def test_documented_compound_conditions(pattern, expected):
    assert compile_pattern(pattern).matches(USERS_EVENT) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{ $.latency >= 500 }", True),
        ("{ $.numbers[0] < 10e3 }", True),
        ("{ $.numbers[0] < 10e-3 }", False),
        ("{ $.processes[4].averageRuntime <= 55.5 }", True),
        ("{ $.errorCode = 400 }", True),
        ("{ $.errorCode != 500 }", True),
        ("{ $.latency > +1000 }", False),
        ("{ $.latency = * }", True),
        ("{ $.missing = * }", False),
    ],
)
def test_documented_numeric_comparisons(pattern, expected):
    event = {"latency": 500, "numbers": [7], "errorCode": 400, "processes": [{}] * 4 + [{"averageRuntime": 55.5}]}
    assert compile_pattern(pattern).matches(json.dumps(event)) is expected


APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
    '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355',
    '127.0.0.1 - frank [10/Oct/2000:13:51:00 -0700] "GET /index.html HTTP/1.0" 404 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:52:00 -0700] "GET /secret.html HTTP/1.0" 403 2048',
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ip, user, username, timestamp, request, status_code, bytes]", [1, 2, 3, 4, 5]),
        ("[..., status_code, bytes]", [1, 2, 3, 4, 5]),
        ("[ip, user, ..., status_code, bytes]", [1, 2, 3, 4, 5]),
        ("[ip, user, ...]", [1, 2, 3, 4, 5]),
        ("[ip, user, username, timestamp, request, status_code]", []),  # one field short, no ...
        ("[ip, user, username, timestamp, request, status_code, bytes > 1000]", [1, 2, 3, 4, 5]),
        ("[ip, user, username, timestamp, request, status_code, bytes > 4000]", [2, 3]),
        ("[ip, user, username, timestamp, request, status_code = 200, bytes]", [1, 3]),
        ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", [4, 5]),
        ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", [4, 5]),
        ("[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]", [4]),
        ("[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]", [4, 5]),
        ("[..., request=*.html*, status_code=4*,]", [4, 5]),
        ('[..., request = "GET /index.html HTTP/1.0", status_code, bytes]', [4]),
        ("[..., timestamp = *13:35*, request, status_code, bytes]", [2]),
    ],
)
def test_documented_space_delimited_examples(pattern, expected):
    assert matching(pattern, APACHE) == expected


def test_documented_extracted_fields():
    pattern = compile_pattern("[..., request=*.html*, status_code=4*,]")
    message = APACHE[3]
    assert pattern.value(message, "$status_code") == "404"
    assert pattern.value(message, "$request") == "GET /index.html HTTP/1.0"
    assert pattern.value(message, "$7") == "1534"
    assert pattern.value(message, "$4") == "10/Oct/2000:13:51:00 -0700"
    assert pattern.value(message, "$1") == "127.0.0.1"
    assert pattern.value(APACHE[0], "$status_code") is None  # no match, no value


def test_documented_metric_value_from_json():
    pattern = compile_pattern("{ $.latency = * }")
    assert pattern.value('{"latency": 42.5}', "$.latency") == 42.5
    assert pattern.value('{"latency": {"p99": 7}}', "$.latency.p99") == 7
    assert pattern.value('{"other": 1}', "$.latency") is None
    assert pattern.value("not json", "$.latency") is None


def test_documented_regex_term():
    events = ["[ERROR 401] UNAUTHORIZED REQUEST", "[SUCCESS 200] AUTHORIZED REQUEST", "[INFO] ok"]
    assert matching("%AUTHORIZED%", events) == [1, 2]
    assert matching("%^\\[SUCCESS%", events) == [2]
    assert matching("%[Ee]rror|[Ff]ail%", ["an error", "Failed", "fine"]) == [1, 2]


# --- our own cases ---------------------------------------------------------------------------------------------


def test_terms_are_case_sensitive():
    assert matching("error", ["ERROR here", "an error"]) == [2]


def test_the_briefs_examples():
    events = ["GET / 200", "upstream error", "throttle applied", "Throttled"]
    assert matching("?error ?throttle", events) == [2, 3]
    status = ['{"status": 503}', '{"status": 200}', '{"status": "502"}', "status 503", '{"status": 5}']
    assert matching("{ $.status = 5* }", status) == [1, 3, 5]
    assert matching('{ $.status = "5*" }', status) == [1, 3, 5]
    assert matching("{ $.status >= 500 }", status) == [1, 3]


def test_quoted_terms_keep_punctuation_and_escaped_quotes():
    events = ['said "hi" there', "said hi there", "GET /api/v1 -> 500"]
    assert matching('"\\"hi\\""', events) == [1]
    assert matching('"-> 500"', events) == [3]
    assert matching('-"said"', events) == [3]


def test_optional_terms_with_required_and_excluded_terms():
    events = ["ERROR db timeout", "ERROR db refused", "WARN db timeout", "ERROR cache timeout"]
    assert matching("db ?timeout ?refused -WARN", events) == [1, 2]


def test_json_strings_regex_and_wildcards():
    events = [
        '{"msg": "read timeout after 5s", "level": "ERROR"}',
        '{"msg": "ok", "level": "INFO"}',
        '{"msg": "connection time out", "level": "WARN"}',
    ]
    assert matching("{ $.msg = %time.?out% }", events) == [1, 3]
    assert matching("{ $.msg = *timeout* }", events) == [1]
    assert matching("{ $.level != INFO && $.msg = *out }", events) == [3]
    assert matching('{ $.level = "ERROR" || ($.level = WARN && $.msg = conn*) }', events) == [1, 3]


def test_json_booleans_and_null_are_not_strings():
    assert not compile_pattern("{ $.flag = true }").matches('{"flag": "yes"}')
    assert compile_pattern("{ $.flag IS FALSE }").matches('{"flag": false}')
    assert not compile_pattern("{ $.flag IS FALSE }").matches('{"flag": 0}')
    assert not compile_pattern("{ $.x = * }").matches('{"x": null}')
    assert not compile_pattern("{ $.x != 1 }").matches("{}")


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.a = 1",
        "{ }",
        "{ $.a > abc }",
        "{ a = 1 }",
        "{ $.a = 1 && }",
        "{ ($.a = 1 }",
        "{ $.a IS MAYBE }",
        "[a, b",
        "[a b, c]",
        '"unterminated',
        "%(group)%",
        "%[unclosed%",
        '[a = "x, b]',
    ],
)
def test_invalid_patterns_raise(pattern):
    with pytest.raises(FilterPatternError) as raised:
        compile_pattern(pattern)
    assert raised.value.aws_code == "InvalidParameterException"
    assert "Invalid filter pattern" in str(raised.value)


def test_json_pattern_reads_arrays_at_the_top_level_and_ignores_broken_json():
    assert compile_pattern("{ $[1] = b }").matches('["a", "b"]')
    assert not compile_pattern("{ $.a = 1 }").matches('{"a": 1')


# --- properties ------------------------------------------------------------------------------------------------

WORDS = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=6)
MESSAGES = st.text(alphabet=string.ascii_letters + string.digits + "_ .:-[]", max_size=40)


@settings(max_examples=80, deadline=None)
@given(term=WORDS, message=MESSAGES)
def test_one_plain_term_matches_exactly_the_messages_containing_it(term, message):
    assert compile_pattern(term).matches(message) is (term in message)
    assert compile_pattern(term).matches(f"x {term} y")


@settings(max_examples=80, deadline=None)
@given(term=WORDS, message=MESSAGES)
def test_an_excluded_term_never_matches_a_message_containing_it(term, message):
    assert compile_pattern(f"-{term}").matches(message) is (term not in message)
    assert not compile_pattern(f"-{term}").matches(message + term)


@settings(max_examples=80, deadline=None)
@given(first=WORDS, second=WORDS, message=MESSAGES)
def test_optional_terms_match_when_any_occurs(first, second, message):
    expected = first in message or second in message
    assert compile_pattern(f"?{first} ?{second}").matches(message) is expected


@settings(max_examples=50, deadline=None)
@given(phrase=st.text(alphabet=string.ascii_letters + " .:/-[]{}", min_size=1, max_size=12), message=MESSAGES)
def test_a_quoted_phrase_matches_as_one_substring(phrase, message):
    quoted = '"' + phrase + '"'
    assert compile_pattern(quoted).matches(message) is (phrase in message)
    assert compile_pattern(quoted).matches(f"<{phrase}>")


@settings(max_examples=80, deadline=None)
@given(status=st.integers(-10_000, 10_000), bound=st.integers(-10_000, 10_000))
def test_json_numeric_comparisons_agree_with_python(status, bound):
    message = json.dumps({"status": status})
    assert compile_pattern(f"{{ $.status >= {bound} }}").matches(message) is (status >= bound)
    assert compile_pattern(f"{{ $.status < {bound} }}").matches(message) is (status < bound)
    assert compile_pattern(f"{{ $.status != {bound} }}").matches(message) is (status != bound)
    assert compile_pattern("{ $.status = 5* }").matches(message) is str(status).startswith("5")


@settings(max_examples=50, deadline=None)
@given(message=MESSAGES.filter(lambda m: not m.strip().startswith(("{", "["))))
def test_messages_that_are_not_json_never_match_a_json_pattern(message):
    assert not compile_pattern("{ $.a NOT EXISTS }").matches(message)
    assert not compile_pattern("{ $.a = * || $.b != 1 }").matches(message)


@settings(max_examples=50, deadline=None)
@given(fields=st.lists(WORDS, min_size=1, max_size=6))
def test_delimited_field_count_and_ellipsis(fields):
    message = " ".join(fields)
    names = [f"f{i}" for i in range(len(fields))]
    assert compile_pattern("[" + ", ".join(names) + "]").matches(message)
    assert not compile_pattern("[" + ", ".join([*names, "extra"]) + "]").matches(message)
    assert compile_pattern(f"[..., last = {fields[-1]}]").matches(message)
    assert compile_pattern("[...]").matches(message)

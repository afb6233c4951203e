"""The conditions of JSON and space-delimited filter patterns: comparisons of values, && / || / parentheses.

`logfilter` compiles whole patterns; this module holds what both of its structured kinds share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A missing field: unlike JSON null, which is a value.
MISSING = object()


class FilterPatternError(ValueError):
    """An invalid filter pattern; the twin answers InvalidParameterException "Invalid filter pattern"."""

    aws_code = "InvalidParameterException"


def unquote(body: str) -> str:
    """Undo the backslash escapes of a quoted term."""
    return re.sub(r"\\(.)", r"\1", body)


def compile_regex(body: str) -> re.Pattern[str]:
    """Compile a ``%regex%`` term; AWS refuses parentheses in it."""
    if "(" in body or ")" in body:
        raise FilterPatternError("Invalid filter pattern: parentheses are not supported in a regex")
    try:
        return re.compile(body)
    except re.error as error:
        raise FilterPatternError(f"Invalid filter pattern: bad regex {body!r}: {error}") from error


# --- values compared by JSON and space-delimited conditions ---------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class _Literal:
    """The right-hand side of a comparison: a number, a string (maybe with wildcards), a regex, or ``*``."""

    text: str
    number: float | None = None
    regex: re.Pattern[str] | None = None
    quoted: bool = False

    def equals(self, value: Any) -> bool:
        """Tell whether a value node equals the literal (wildcards and regexes included)."""
        if self.regex is not None:
            return self.regex.search(_as_text(value)) is not None
        if self.text == "*":
            return True
        if self.number is not None and not self.quoted:
            number = _as_number(value)
            if number is not None:
                return number == self.number
        return _wildcard_equals(self.text, _as_text(value))


def _literal(kind: str, text: str) -> _Literal:
    """Build a literal from a token of kind word, quoted or regex."""
    if kind == "regex":
        return _Literal(text, regex=compile_regex(text[1:-1]))
    if kind == "quoted":
        return _Literal(unquote(text[1:-1]), quoted=True)
    number = float(text) if _NUMBER.fullmatch(text) else None
    return _Literal(text, number=number)


def _wildcard_equals(pattern: str, text: str) -> bool:
    """Compare with ``*`` as a wildcard at either end only, as AWS documents (``Ev*ent`` is literal)."""
    if pattern == "*":
        return True
    head = pattern.startswith("*")
    tail = pattern.endswith("*")
    core = pattern[1 if head else 0 : len(pattern) - 1 if tail else len(pattern)]
    if head and tail:
        return core in text
    if head:
        return text.endswith(core)
    if tail:
        return text.startswith(core)
    return text == core


def _as_text(value: Any) -> str:
    """Render a value node as the text a string comparison sees."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _as_number(value: Any) -> float | None:
    """Return a value node as a number (numeric strings included), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _compare(value: Any, op: str, literal: _Literal) -> bool:
    """Apply one comparison to a value node; a missing field or a container never matches."""
    if value is MISSING or isinstance(value, dict | list):
        return False
    if op == "=":
        return value is not None and literal.equals(value)
    if op == "!=":
        return value is not None and not literal.equals(value)
    number = _as_number(value)
    return number is not None and _COMPARE[op](number, literal.number)  # type: ignore[arg-type]


# --- conditions: a small expression language shared by JSON and space-delimited patterns ----------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\() | (?P<rparen>\)) | (?P<and>&&) | (?P<or>\|\|) | (?P<comma>,)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<selector>\$(?:\.[\w-]+|\[\d+\])+)
    | (?P<quoted>"(?:[^"\\]|\\.)*")
    | (?P<regex>%[^%]+%)
    | (?P<word>[^\s()&|=!<>",]+)
    )""",
    re.VERBOSE,
)

Node = Callable[[Callable[[str], Any]], bool]


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split a condition into (kind, text) tokens."""
    tokens, pos = [], 0
    while text[pos:].strip():
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise FilterPatternError(f"Invalid filter pattern: cannot read {text[pos:]!r}")
        kind = found.lastgroup or ""
        tokens.append((kind, found[kind]))
        pos = found.end()
    return tokens


class Parser:
    """Recursive descent over condition tokens: || of && of comparisons or parenthesised groups."""

    def __init__(self, tokens: list[tuple[str, str]], default_name: str | None = None) -> None:
        self.tokens = tokens
        self.pos = 0
        self.default_name = default_name

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, *kinds: str) -> str:
        kind, text = self.peek()
        if kind not in kinds:
            raise FilterPatternError(f"Invalid filter pattern: expected {'/'.join(kinds)}, found {text!r}")
        self.pos += 1
        return text

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek()[0] != "end":
            raise FilterPatternError(f"Invalid filter pattern: unexpected {self.peek()[1]!r}")
        return node

    def disjunction(self) -> Node:
        nodes = [self.conjunction()]
        while self.peek()[0] == "or":
            self.take("or")
            nodes.append(self.conjunction())
        return nodes[0] if len(nodes) == 1 else (lambda get: any(n(get) for n in nodes))

    def conjunction(self) -> Node:
        nodes = [self.atom()]
        while self.peek()[0] == "and":
            self.take("and")
            nodes.append(self.atom())
        return nodes[0] if len(nodes) == 1 else (lambda get: all(n(get) for n in nodes))

    def atom(self) -> Node:
        if self.peek()[0] == "lparen":
            self.take("lparen")
            node = self.disjunction()
            self.take("rparen")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        name = self.default_name
        # JSON comparisons start with a selector; a space-delimited one may leave out its own field's name.
        names = ("selector",) if self.default_name is None else ("word",)
        if self.peek()[0] in names:
            name = self.take(*names)
        if name is None:
            raise FilterPatternError(f"Invalid filter pattern: expected a field, found {self.peek()[1]!r}")
        if self.peek()[0] == "word" and self.peek()[1] in ("IS", "NOT"):
            return self.keyword_test(name)
        op = self.take("op")
        kind, text = self.peek()
        self.take("word", "quoted", "regex")
        literal = _literal(kind, text)
        if op in _COMPARE and literal.number is None:
            raise FilterPatternError(f"Invalid filter pattern: {op} needs a number, found {text!r}")
        return lambda get: _compare(get(name), op, literal)

    def keyword_test(self, name: str) -> Node:
        words = self.take("word")
        words += " " + self.take("word")
        tests: dict[str, Node] = {
            "IS NULL": lambda get: get(name) is None,
            "NOT EXISTS": lambda get: get(name) is MISSING,
            "IS TRUE": lambda get: get(name) is True,
            "IS FALSE": lambda get: get(name) is False,
        }
        if words not in tests:
            raise FilterPatternError(f"Invalid filter pattern: unknown test {words!r}")
        return tests[words]

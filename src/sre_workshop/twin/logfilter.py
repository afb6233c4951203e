"""CloudWatch Logs filter patterns (FilterLogEvents, metric and subscription filters), as AWS documents them.

moto answers FilterLogEvents with every event whatever the pattern; the twin calls this module instead.

Supported (case-sensitive, as on AWS):

- ``""``: the empty pattern matches every event.
- Terms: ``ERROR Exception`` (every term must occur, as a substring), ``"Failed to process"`` (a quoted
  phrase, with ``\\"`` for a quote), ``?ERROR ?WARN`` (at least one of the optional terms), ``-DEBUG`` or
  ``- "health check"`` (none of the excluded terms), ``%[Ee]rror%`` (a regular expression term; AWS refuses
  ``(`` and ``)`` in it, and so do we).
- JSON: ``{ $.status = 5* }``, ``{ $.latency > 1000 && ($.level = "ERROR" || $.level = WARN) }``,
  ``{ $.users[0].id = 2 }``, ``{ $.x IS NULL }``, ``{ $.x NOT EXISTS }``, ``{ $.flag IS TRUE }``,
  ``{ $.msg = %time.?out% }``, ``{ $.latency = * }``. Operators =, !=, <, >, <=, >=; && binds tighter than ||.
  A selector must reach a value node (string, number, boolean); an object, an array or a missing field
  matches neither = nor !=. ``*`` is a wildcard at the start or end of a string value (``Ev*ent`` is the
  literal string, as AWS documents). A message that is not JSON never matches a JSON pattern.
- Space-delimited: ``[ip, user, ..., status_code = 4*, size > 1000]``; ``...`` stands for any number of
  fields, ``[...]`` and ``"..."`` in the message are one field each, an empty name is an unnamed field,
  conditions combine with && and || (``[w1=ERROR || w1=WARN, w2]``) and may name any field of the pattern.

Not supported: selectors with wildcards (``$.*``) or quoted keys, ``IS NOT NULL``, regular expressions with
AWS's own quirks (Python's ``re`` decides what a regex term matches), quoted parts inside one
space-delimited field (``abc"def"``).

`Pattern.value(message, selector)` gives what metric transformations read: ``$.field`` from a JSON message,
``$name`` or ``$3`` (1-based position) from a matching space-delimited message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# A missing field: unlike JSON null, which is a value.
_MISSING = object()


class FilterPatternError(ValueError):
    """An invalid filter pattern; the twin answers InvalidParameterException "Invalid filter pattern"."""

    aws_code = "InvalidParameterException"


class Pattern:
    """A compiled filter pattern; `compile_pattern` builds one."""

    kind = "all"

    def __init__(self, text: str) -> None:
        self.text = text

    def matches(self, message: str) -> bool:
        """Tell whether the log event message matches the pattern."""
        return True

    def value(self, message: str, selector: str) -> Any:
        """Return the value `selector` (``$.a.b[0]``) names in the JSON `message`, or None."""
        if not selector.startswith("$"):
            return None
        document = _load_json(message)
        if document is _MISSING:
            return None
        node = _resolve(document, _parse_selector(selector))
        return None if node is _MISSING else node

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


def compile_pattern(text: str) -> Pattern:
    """Compile a filter pattern, raising `FilterPatternError` when it is invalid."""
    stripped = (text or "").strip()
    if not stripped:
        return Pattern(text)
    if stripped.startswith("{"):
        return JsonPattern(text, stripped)
    if stripped.startswith("["):
        return DelimitedPattern(text, stripped)
    return TermPattern(text, stripped)


# --- terms -------------------------------------------------------------------------------------------------

_TERM = re.compile(r'\s*(?P<prefix>[?-]?)\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|%(?P<regex>[^%]+)%|(?P<word>[^\s"]+))')


@dataclass(frozen=True)
class _Term:
    """One term: a literal substring or a regular expression."""

    literal: str
    regex: re.Pattern[str] | None = None

    def found_in(self, message: str) -> bool:
        """Tell whether the term occurs in the message."""
        if self.regex is not None:
            return self.regex.search(message) is not None
        return self.literal in message


class TermPattern(Pattern):
    """Unstructured terms: all plain terms, any ``?`` term, no ``-`` term."""

    kind = "terms"

    def __init__(self, text: str, stripped: str) -> None:
        super().__init__(text)
        self.required: list[_Term] = []
        self.optional: list[_Term] = []
        self.excluded: list[_Term] = []
        for prefix, term in _scan_terms(stripped):
            {"": self.required, "?": self.optional, "-": self.excluded}[prefix].append(term)

    def matches(self, message: str) -> bool:
        """Tell whether the message has every required term, one optional term if any, no excluded one."""
        if not all(t.found_in(message) for t in self.required):
            return False
        if self.optional and not any(t.found_in(message) for t in self.optional):
            return False
        return not any(t.found_in(message) for t in self.excluded)


def _scan_terms(text: str) -> Iterator[tuple[str, _Term]]:
    """Yield (prefix, term) for each term of an unstructured pattern."""
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            return
        found = _TERM.match(text, pos)
        if found is None:
            raise FilterPatternError(f"Invalid filter pattern: cannot read {text[pos:]!r}")
        pos = found.end()
        if found["regex"] is not None:
            yield found["prefix"], _Term(found["regex"], _compile_regex(found["regex"]))
        elif found["quoted"] is not None:
            yield found["prefix"], _Term(_unquote(found["quoted"]))
        else:
            yield found["prefix"], _Term(found["word"])


def _unquote(body: str) -> str:
    """Undo the backslash escapes of a quoted term."""
    return re.sub(r"\\(.)", r"\1", body)


def _compile_regex(body: str) -> re.Pattern[str]:
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
        return _Literal(text, regex=_compile_regex(text[1:-1]))
    if kind == "quoted":
        return _Literal(_unquote(text[1:-1]), quoted=True)
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
    if value is _MISSING or isinstance(value, dict | list):
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


def _tokenize(text: str) -> list[tuple[str, str]]:
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


class _Parser:
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
            "NOT EXISTS": lambda get: get(name) is _MISSING,
            "IS TRUE": lambda get: get(name) is True,
            "IS FALSE": lambda get: get(name) is False,
        }
        if words not in tests:
            raise FilterPatternError(f"Invalid filter pattern: unknown test {words!r}")
        return tests[words]


# --- JSON --------------------------------------------------------------------------------------------------

_STEP = re.compile(r"\.([\w-]+)|\[(\d+)\]")


def _parse_selector(selector: str) -> list[str | int]:
    """Split ``$.a.b[0]`` into its steps: ["a", "b", 0]."""
    body = selector[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(body):
        found = _STEP.match(body, pos)
        if found is None:
            raise FilterPatternError(f"Invalid filter pattern: bad selector {selector!r}")
        steps.append(found[1] if found[1] is not None else int(found[2]))
        pos = found.end()
    return steps


def _resolve(document: Any, steps: list[str | int]) -> Any:
    """Follow the steps through the document; `_MISSING` where a step does not exist."""
    node = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(node, list) and step < len(node)
        in_dict = isinstance(step, str) and isinstance(node, dict) and step in node
        if not (in_list or in_dict):
            return _MISSING
        node = node[step]
    return node


def _load_json(message: str) -> Any:
    """Parse a message as JSON; `_MISSING` for a message that is not a JSON object or array."""
    text = message.strip()
    if not text.startswith(("{", "[")):
        return _MISSING
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING


class JsonPattern(Pattern):
    """A ``{ ... }`` pattern evaluated on JSON messages."""

    kind = "json"

    def __init__(self, text: str, stripped: str) -> None:
        super().__init__(text)
        if not stripped.endswith("}"):
            raise FilterPatternError("Invalid filter pattern: a JSON pattern ends with }")
        tokens = _tokenize(stripped[1:-1])
        if not tokens:
            raise FilterPatternError("Invalid filter pattern: empty JSON pattern")
        self._node = _Parser(tokens).parse()
        self._steps: dict[str, list[str | int]] = {}

    def matches(self, message: str) -> bool:
        """Tell whether the message is JSON and satisfies the condition."""
        document = _load_json(message)
        if document is _MISSING:
            return False
        return self._node(lambda selector: _resolve(document, self._selector_steps(selector)))

    def _selector_steps(self, selector: str) -> list[str | int]:
        if selector not in self._steps:
            self._steps[selector] = _parse_selector(selector)
        return self._steps[selector]


# --- space-delimited ---------------------------------------------------------------------------------------

_FIELD = re.compile(r'\[([^\]]*)\]|"((?:[^"\\]|\\.)*)"|(\S+)')
_ELLIPSIS = "..."


def split_fields(message: str) -> list[str]:
    """Split a message into space-delimited fields; ``[...]`` and ``"..."`` are one field, without delimiters."""
    return [m[1] if m[1] is not None else m[2] if m[2] is not None else m[3] for m in _FIELD.finditer(message)]


class DelimitedPattern(Pattern):
    """A ``[a, b, ..., c > 1]`` pattern matched field by field against space-delimited messages."""

    kind = "delimited"

    def __init__(self, text: str, stripped: str) -> None:
        super().__init__(text)
        if not stripped.endswith("]"):
            raise FilterPatternError("Invalid filter pattern: a space-delimited pattern ends with ]")
        self.slots: list[str | None] = []  # a name, "" for an unnamed field, None for ...
        self.conditions: list[Node] = []
        for item in _split_items(stripped[1:-1]):
            self._add_item(item.strip())

    def _add_item(self, item: str) -> None:
        if item == _ELLIPSIS:
            self.slots.append(None)
            return
        tokens = _tokenize(item)
        if not tokens:
            self.slots.append("")
            return
        kind, name = tokens[0]
        if kind != "word" or not re.fullmatch(r"[\w$]+", name):
            raise FilterPatternError(f"Invalid filter pattern: bad field name {name!r}")
        self.slots.append(name)
        if len(tokens) > 1:
            self.conditions.append(_Parser(tokens[1:], default_name=name).parse())

    def matches(self, message: str) -> bool:
        """Tell whether some alignment of the fields satisfies every condition."""
        return self._binding(message) is not None

    def value(self, message: str, selector: str) -> Any:
        """Return the field ``$name`` or ``$3`` of a matching message, or None."""
        binding = self._binding(message)
        if binding is None or not selector.startswith("$"):
            return None
        return binding.get(selector[1:])

    def _binding(self, message: str) -> dict[str, str] | None:
        fields = split_fields(message)
        for positions in _align(self.slots, len(fields), 0, 0):
            binding = {str(i + 1): f for i, f in enumerate(fields)}
            binding.update({name: fields[i] for name, i in positions if name})
            get = lambda name, b=binding: b.get(name, _MISSING)  # noqa: E731
            if all(condition(get) for condition in self.conditions):
                return binding
        return None


def _split_items(body: str) -> list[str]:
    """Split the inside of ``[...]`` on the commas outside quotes."""
    items, current, quoted = [], [], False
    for char in body:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    if quoted:
        raise FilterPatternError("Invalid filter pattern: unterminated quote")
    return items


def _align(slots: list[str | None], count: int, slot: int, field: int) -> Iterator[list[tuple[str, int]]]:
    """Yield each way to lay the slots over `count` fields, ``...`` taking zero or more fields."""
    if slot == len(slots):
        if field == count:
            yield []
        return
    name = slots[slot]
    if name is None:
        for skip in range(count - field + 1):
            yield from _align(slots, count, slot + 1, field + skip)
        return
    if field < count:
        for rest in _align(slots, count, slot + 1, field + 1):
            yield [(name, field), *rest]

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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sre_workshop.twin.filterexpr import (
    MISSING,
    FilterPatternError,
    Node,
    Parser,
    compile_regex,
    tokenize,
    unquote,
)


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
        if document is MISSING:
            return None
        node = _resolve(document, _parse_selector(selector))
        return None if node is MISSING else node

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


__all__ = ["FilterPatternError", "Pattern", "compile_pattern"]

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
            yield found["prefix"], _Term(found["regex"], compile_regex(found["regex"]))
        elif found["quoted"] is not None:
            yield found["prefix"], _Term(unquote(found["quoted"]))
        else:
            yield found["prefix"], _Term(found["word"])


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
    """Follow the steps through the document; `MISSING` where a step does not exist."""
    node = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(node, list) and step < len(node)
        in_dict = isinstance(step, str) and isinstance(node, dict) and step in node
        if not (in_list or in_dict):
            return MISSING
        node = node[step]
    return node


def _load_json(message: str) -> Any:
    """Parse a message as JSON; `MISSING` for a message that is not a JSON object or array."""
    text = message.strip()
    if not text.startswith(("{", "[")):
        return MISSING
    try:
        return json.loads(text)
    except ValueError:
        return MISSING


class JsonPattern(Pattern):
    """A ``{ ... }`` pattern evaluated on JSON messages."""

    kind = "json"

    def __init__(self, text: str, stripped: str) -> None:
        super().__init__(text)
        if not stripped.endswith("}"):
            raise FilterPatternError("Invalid filter pattern: a JSON pattern ends with }")
        tokens = tokenize(stripped[1:-1])
        if not tokens:
            raise FilterPatternError("Invalid filter pattern: empty JSON pattern")
        self._node = Parser(tokens).parse()
        self._steps: dict[str, list[str | int]] = {}

    def matches(self, message: str) -> bool:
        """Tell whether the message is JSON and satisfies the condition."""
        document = _load_json(message)
        if document is MISSING:
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
        tokens = tokenize(item)
        if not tokens:
            self.slots.append("")
            return
        kind, name = tokens[0]
        if kind != "word" or not re.fullmatch(r"[\w$]+", name):
            raise FilterPatternError(f"Invalid filter pattern: bad field name {name!r}")
        self.slots.append(name)
        if len(tokens) > 1:
            self.conditions.append(Parser(tokens[1:], default_name=name).parse())

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
            get = lambda name, b=binding: b.get(name, MISSING)  # noqa: E731
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

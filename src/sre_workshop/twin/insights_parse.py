"""Reading CloudWatch Logs Insights queries: tokens, expressions (compiled to functions of a row) and commands.

`insights.run_query` is the entry point; this module only turns query text into `Command`s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sre_workshop.twin.insights_functions import function_call
from sre_workshop.twin.insights_values import Expr, QueryError, Row, as_number, as_text, compare, period_ms


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text (unescaped for strings and regexes) and where it starts and ends."""

    kind: str
    text: str
    start: int
    end: int


_TOKEN = re.compile(
    r"""(?P<space>\s+) | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<backtick>`[^`]*`)
    | (?P<duration>\d+(?:ms|mo|s|m|h|d|w|q|y)\b)
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<ident>[@A-Za-z_$][\w.@$]*)
    | (?P<op>!=|<=|>=|=~|[=<>+\-*/%^])
    | (?P<pipe>\|) | (?P<lparen>\() | (?P<rparen>\)) | (?P<lbrack>\[) | (?P<rbrack>\]) | (?P<comma>,)""",
    re.VERBOSE,
)
_REGEX = re.compile(r"/((?:[^/\\\n]|\\.)*)/")
_REGEX_AFTER = {"like", "and", "or", "not", "in", "filter", "parse", "by"}


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens, dropping spaces and ``#`` comments."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        if query[pos] == "/" and _regex_may_start(tokens):
            found = _REGEX.match(query, pos)
            if found is None:
                raise QueryError(f"unterminated regular expression at {pos}")
            tokens.append(Token("regex", found[1].replace("\\/", "/"), pos, found.end()))
            pos = found.end()
            continue
        found = _TOKEN.match(query, pos)
        if found is None:
            raise QueryError(f"unexpected character {query[pos]!r} at {pos}")
        kind = found.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(_token(kind, found[kind], pos, found.end()))
        pos = found.end()
    return tokens


def _token(kind: str, text: str, start: int, end: int) -> Token:
    if kind == "string":
        return Token("string", re.sub(r"\\(.)", r"\1", text[1:-1]), start, end)
    if kind == "backtick":
        return Token("ident", text[1:-1], start, end)
    return Token(kind, text, start, end)


def _regex_may_start(tokens: list[Token]) -> bool:
    """Tell whether a ``/`` here opens a regex rather than divides."""
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind in ("op", "lparen", "comma", "lbrack", "pipe"):
        return True
    if last.kind == "ident" and last.text.lower() in _REGEX_AFTER:
        return True
    # parse FIELD /regex/
    return len(tokens) >= 2 and tokens[-2].kind == "ident" and tokens[-2].text.lower() == "parse"


def compile_regex(body: str) -> re.Pattern[str]:
    """Compile an Insights regex: ``(?<name>...)`` groups, ``(?i)`` anywhere (Python wants it first)."""
    flags = 0
    if "(?i)" in body:
        body, flags = body.replace("(?i)", ""), re.IGNORECASE
    body = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", body)
    try:
        return re.compile(body, flags)
    except re.error as error:
        raise QueryError(f"invalid regular expression /{body}/: {error}") from error


# --- commands ----------------------------------------------------------------------------------------------


@dataclass
class Named:
    """An expression with the column name it gets (its alias, or its text)."""

    name: str
    expr: Expr


@dataclass
class Aggregate:
    """One aggregate of a stats command: its function, argument and (for pct) percentile."""

    name: str
    function: str
    arg: Expr | None
    percent: float = 0.0


@dataclass
class Command:
    """One command of the pipeline, with what it needs from the query."""

    name: str
    items: list[Named] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    condition: Expr | None = None
    source: Expr | None = None
    regex: re.Pattern[str] | None = None
    group_names: list[str] = field(default_factory=list)
    descending: list[bool] = field(default_factory=list)
    count: int = 0


AGGREGATES = {"count", "sum", "avg", "min", "max", "pct", "count_distinct", "stddev", "earliest", "latest"}
COMMANDS = {"fields", "display", "filter", "parse", "stats", "sort", "limit", "dedup", "pattern"}
MAX_LIMIT = 10_000


def parse_query(query: str) -> list[Command]:
    """Parse a whole query into its commands, raising `QueryError` when it is malformed."""
    tokens = tokenize(query)
    commands, current = [], []
    for token in [*tokens, Token("pipe", "|", len(query), len(query))]:
        if token.kind != "pipe":
            current.append(token)
            continue
        if not current:
            raise QueryError("empty command between pipes")
        commands.append(_Parser(query, current).command())
        current = []
    if not commands:
        raise QueryError("empty query")
    return commands


class _Parser:
    """Recursive descent over the tokens of one command."""

    def __init__(self, query: str, tokens: list[Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.pos = 0

    # -- token helpers

    def peek(self, offset: int = 0) -> Token:
        index = self.pos + offset
        if index < len(self.tokens):
            return self.tokens[index]
        end = self.tokens[-1].end if self.tokens else 0
        return Token("end", "", end, end)

    def at_word(self, *words: str) -> bool:
        return self.peek().kind == "ident" and self.peek().text.lower() in words

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text.lower() != text):
            raise QueryError(f"expected {text or kind} but found {token.text or 'end of command'!r}")
        self.pos += 1
        return token

    def done(self) -> None:
        if self.peek().kind != "end":
            raise QueryError(f"unexpected {self.peek().text!r}")

    def text_since(self, start: Token) -> str:
        return self.query[start.start : self.tokens[self.pos - 1].end]

    # -- commands

    def command(self) -> Command:
        name = self.take("ident").text.lower()
        if name not in COMMANDS:
            raise QueryError(f"unsupported command {name!r}")
        command: Command = getattr(self, f"cmd_{name}")()
        self.done()
        return command

    def cmd_fields(self) -> Command:
        return Command("fields", items=self.named_list())

    def cmd_display(self) -> Command:
        return Command("display", items=self.named_list())

    def cmd_filter(self) -> Command:
        return Command("filter", condition=self.expression())

    def cmd_dedup(self) -> Command:
        return Command("dedup", items=self.named_list())

    def cmd_pattern(self) -> Command:
        return Command("pattern", source=self.primary())

    def cmd_limit(self) -> Command:
        count = int(float(self.take("number").text))
        if not 0 < count <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        return Command("limit", count=count)

    def cmd_sort(self) -> Command:
        command = Command("sort")
        while True:
            command.items.append(self.named())
            descending = self.at_word("desc")
            if self.at_word("asc", "desc"):
                self.pos += 1
            command.descending.append(descending)
            if self.peek().kind != "comma":
                return command
            self.take("comma")

    def cmd_parse(self) -> Command:
        source = self.primary()
        if self.peek().kind == "regex":
            regex = compile_regex(self.take("regex").text)
            names = list(regex.groupindex)
            if not names:
                raise QueryError("parse with a regex needs named groups (?<name>...)")
            return Command("parse", source=source, regex=regex, group_names=names)
        glob = self.take("string").text
        self.take("ident", "as")
        names = [self.take("ident").text]
        while self.peek().kind == "comma":
            self.take("comma")
            names.append(self.take("ident").text)
        if glob.count("*") != len(names):
            raise QueryError(f"parse pattern has {glob.count('*')} * but {len(names)} names")
        return Command("parse", source=source, regex=_glob_regex(glob), group_names=names)

    def cmd_stats(self) -> Command:
        command = Command("stats")
        while True:
            command.aggregates.append(self.aggregate())
            if self.peek().kind != "comma":
                break
            self.take("comma")
        if self.at_word("by"):
            self.take("ident")
            command.items = self.named_list()
        return command

    def aggregate(self) -> Aggregate:
        start = self.peek()
        function = self.take("ident").text.lower()
        if function not in AGGREGATES:
            raise QueryError(f"unsupported stats function {start.text!r}")
        self.take("lparen")
        arg: Expr | None = None
        percent = 0.0
        if self.peek().kind == "op" and self.peek().text == "*":
            self.take("op")
        elif self.peek().kind != "rparen":
            arg = self.expression()
        if function == "pct":
            self.take("comma")
            percent = float(self.take("number").text)
        self.take("rparen")
        if arg is None and function != "count":
            raise QueryError(f"{function}() needs a field")
        name = self.text_since(start)
        if self.at_word("as"):
            self.take("ident")
            name = self.take("ident").text
        return Aggregate(name, function, arg, percent)

    def named_list(self) -> list[Named]:
        items = [self.named()]
        while self.peek().kind == "comma":
            self.take("comma")
            items.append(self.named())
        return items

    def named(self) -> Named:
        start, first = self.peek(), self.pos
        expr = self.expression()
        # A lone field keeps its name (without backticks); an expression is named by its text.
        name = start.text if self.pos == first + 1 and start.kind == "ident" else self.text_since(start)
        if self.at_word("as"):
            self.take("ident")
            name = self.take("ident").text
        return Named(name, expr)

    # -- expressions: or > and > not > comparison > sum > product > unary > primary

    def expression(self) -> Expr:
        left = self.conjunction()
        while self.at_word("or"):
            self.take("ident")
            left = _or(left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.at_word("and"):
            self.take("ident")
            left = _and(left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.at_word("not"):
            self.take("ident")
            inner = self.negation()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.sum()
        negate = self.at_word("not") and self.peek(1).kind == "ident" and self.peek(1).text.lower() in ("like", "in")
        if negate:
            self.take("ident")
        if self.at_word("like") or (self.peek().kind == "op" and self.peek().text == "=~"):
            self.pos += 1
            test = self.match_test(left)
        elif self.at_word("in"):
            self.take("ident")
            test = self.membership(left)
        elif self.peek().kind == "op" and self.peek().text in ("=", "!=", "<", "<=", ">", ">="):
            op = self.take("op").text
            right = self.sum()
            return lambda row: compare(left(row), op, right(row))
        else:
            return left
        if not negate:
            return test
        # `not like` and `not in` need the field, as = and != do: a missing field matches neither.
        return lambda row: left(row) is not None and not test(row)

    def match_test(self, left: Expr) -> Expr:
        token = self.peek()
        if token.kind == "regex":
            self.take("regex")
            regex = compile_regex(token.text)
            return lambda row: (v := left(row)) is not None and regex.search(as_text(v)) is not None
        needle = self.take("string").text
        return lambda row: (v := left(row)) is not None and needle in as_text(v)

    def membership(self, left: Expr) -> Expr:
        self.take("lbrack")
        options = [self.sum()]
        while self.peek().kind == "comma":
            self.take("comma")
            options.append(self.sum())
        self.take("rbrack")
        return lambda row: any(compare(left(row), "=", option(row)) for option in options)

    def sum(self) -> Expr:
        left = self.product()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            left = _arith(self.take("op").text, left, self.product())
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%", "^"):
            left = _arith(self.take("op").text, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.peek().kind == "op" and self.peek().text == "-":
            self.take("op")
            inner = self.unary()
            return _arith("-", lambda row: 0, inner)
        return self.primary()

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "lparen":
            self.take("lparen")
            inner = self.expression()
            self.take("rparen")
            return inner
        if token.kind in ("number", "string"):
            self.pos += 1
            value: Any = float(token.text) if token.kind == "number" else token.text
            if token.kind == "number" and value.is_integer() and "." not in token.text:
                value = int(value)
            return lambda row: value
        if token.kind == "ident":
            self.pos += 1
            if self.peek().kind == "lparen":
                return self.call(token.text)
            name = token.text
            return lambda row: row.get(name)
        raise QueryError(f"unexpected {token.text or 'end of command'!r}")

    def call(self, name: str) -> Expr:
        self.take("lparen")
        args: list[Any] = []
        while self.peek().kind != "rparen":
            if self.peek().kind == "duration":
                args.append(period_ms(self.take("duration").text))
            else:
                args.append(self.expression())
            if self.peek().kind != "comma":
                break
            self.take("comma")
        self.take("rparen")
        return function_call(name.lower(), args)


def _and(left: Expr, right: Expr) -> Expr:
    return lambda row: bool(left(row)) and bool(right(row))


def _or(left: Expr, right: Expr) -> Expr:
    return lambda row: bool(left(row)) or bool(right(row))


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "^": lambda a, b: a**b,
}


def _arith(op: str, left: Expr, right: Expr) -> Expr:
    """Combine two numeric expressions; a missing or non-numeric side (or a division by zero) gives None."""

    def apply(row: Row) -> Any:
        a, b = as_number(left(row)), as_number(right(row))
        if a is None or b is None or (op in "/%" and b == 0):
            return None
        return _ARITH[op](a, b)

    return apply


def _glob_regex(glob: str) -> re.Pattern[str]:
    """Turn a parse glob into a regex: ``*`` captures lazily, the last one greedily."""
    parts = [re.escape(part) for part in glob.split("*")]
    groups = ["(.*?)"] * (len(parts) - 2) + ["(.*)"] if len(parts) > 1 else []
    body = parts[0] + "".join(group + part for group, part in zip(groups, parts[1:], strict=True))
    return re.compile(body, re.DOTALL)

"""IAM evaluation of identity-based policies, as AWS documents it for a request within one account.

    evaluate(policies, action, resources, context) -> Verdict

A request is allowed when some statement allows it and none denies it: an explicit Deny wins over any Allow,
and a request no statement allows is implicitly denied. Each (action, resource) pair is one authorization;
a call naming several resources (an index query, a batch over tables) needs every one of them allowed.

Supported: Statement as a dict or a list; Effect; Action / NotAction (a string or a list; `*` and `?` match
case-insensitively); Resource / NotResource (case-sensitive; `*` and `?` within an ARN segment, a `*` ending
a segment reaching across colons, as the IAM reference says); the policy variables ${*}, ${?}, ${$} and the
context keys below; Condition with the String*, Arn*, Bool and Null operators, their ...IfExists forms and the
ForAnyValue: / ForAllValues: qualifiers, on the keys the context holds (aws:PrincipalArn, aws:PrincipalAccount,
aws:PrincipalType, aws:RequestedRegion, aws:SecureTransport, aws:ViaAWSService, ec2:SourceInstanceARN, ...).

Not supported, and decided conservatively (the verdict errs towards denial): any other condition operator
(Numeric*, Date*, IpAddress, ...), a key the context lacks where the operator needs it (dynamodb:LeadingKeys,
dynamodb:Attributes: the request's content is not inspected), and any other policy variable. Such a statement
never allows; if it is a Deny, it denies whenever its Action and Resource match. Principal / NotPrincipal
(resource-based policies), permission boundaries, session policies and SCPs are out of scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Decision(Enum):
    """The outcome of one authorization."""

    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class PolicyError(ValueError):
    """A policy document that is not a valid IAM policy."""


@dataclass(frozen=True)
class Verdict:
    """The decision on a call, and the action and resource it was decided on (the first one refused)."""

    decision: Decision
    action: str = ""
    resource: str = ""

    @property
    def allowed(self) -> bool:
        """True if every authorization of the call was allowed."""
        return self.decision is Decision.ALLOW


@dataclass(frozen=True)
class Statement:
    """One compiled statement: matchers for actions and resources, and its raw condition."""

    effect: str
    actions: re.Pattern[str]
    actions_negated: bool
    resources: re.Pattern[str] | None  # None: a resource entry uses an unsupported policy variable
    resources_negated: bool
    condition: Mapping[str, Any] = field(default_factory=dict)


UNKNOWN = None  # a condition the evaluator cannot decide
STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
                    "StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Bool"}
NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _as_list(value: Any, what: str) -> list[Any]:
    """Return an element that may be one value or a list as a list."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise PolicyError(f"{what} must be a string or a list of strings, not {type(value).__name__}")


def _as_list_any(value: Any) -> list[Any]:
    """Return a condition's value (one value or a list) as a list."""
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, any_run: str, any_char: str) -> str:
    """Translate one IAM wildcard pattern into a regular expression fragment."""
    return "".join(any_run if c == "*" else any_char if c == "?" else re.escape(c) for c in pattern)


def _action_pattern(patterns: list[str]) -> re.Pattern[str]:
    """Compile action patterns (`dynamodb:Get*`): case-insensitive, wildcards across the whole name."""
    return re.compile("|".join(f"(?:{_glob(p, '.*', '.')})" for p in patterns) or "(?!)", re.IGNORECASE)


def _tokens(pattern: str, context: Mapping[str, Any]) -> list[str] | None:
    """Split a resource pattern into characters, `*` and `?` wildcards (as "\\*", "\\?") and resolved policy
    variables (literal characters); None if it uses an unknown variable."""
    out: list[str] = []
    pos = 0
    for match in VARIABLE.finditer(pattern):
        out += [f"\\{c}" if c in "*?" else c for c in pattern[pos:match.start()]]
        name = match.group(1)
        value = name if name in ("*", "?", "$") else _context_value(context, name)
        if not isinstance(value, str):
            return None
        out += list(value)
        pos = match.end()
    return out + [f"\\{c}" if c in "*?" else c for c in pattern[pos:]]


def _arn_regex(tokens: list[str]) -> str:
    """Translate a tokenized ARN pattern: wildcards stay within a segment, except a `*` that ends one (or the
    sixth segment, the resource, which may hold colons itself)."""
    segments: list[list[str]] = [[]]
    for piece in tokens:
        if piece == ":" and len(segments) < 6:
            segments.append([])
        else:
            segments[-1].append(piece)
    out = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        parts = []
        for j, piece in enumerate(segment):
            ends = j == len(segment) - 1
            if piece == "\\*":
                parts.append(".*" if last or ends else "[^:]*")
            elif piece == "\\?":
                parts.append("." if last else "[^:]")
            else:
                parts.append(re.escape(piece))
        out.append("".join(parts))
    return ":".join(out)


def _resource_pattern(patterns: list[str], context: Mapping[str, Any]) -> re.Pattern[str] | None:
    """Compile resource patterns (case-sensitive); None if one uses an unknown policy variable."""
    regexes = []
    for pattern in patterns:
        tokens = _tokens(pattern, context)
        if tokens is None:
            return None
        regexes.append(".*" if pattern == "*" else _arn_regex(tokens))
    return re.compile("|".join(f"(?:{r})" for r in regexes) or "(?!)", re.DOTALL)


def _context_value(context: Mapping[str, Any], key: str) -> Any:
    """Look a condition key up in the context (keys are case-insensitive, as in IAM)."""
    return context.get(key.lower())


def compile_statement(raw: Mapping[str, Any], context: Mapping[str, Any]) -> Statement:
    """Compile one statement of a policy document; raise PolicyError if it is malformed."""
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    action_key = "Action" if "Action" in raw else "NotAction"
    resource_key = "Resource" if "Resource" in raw else "NotResource"
    if action_key not in raw or resource_key not in raw:
        raise PolicyError("a statement needs Action or NotAction, and Resource or NotResource")
    condition = raw.get("Condition") or {}
    if not isinstance(condition, Mapping):
        raise PolicyError("Condition must be an object")
    return Statement(effect, _action_pattern(_as_list(raw[action_key], action_key)), action_key == "NotAction",
                     _resource_pattern(_as_list(raw[resource_key], resource_key), context),
                     resource_key == "NotResource", condition)


def compile_policies(documents: Iterable[Mapping[str, Any] | str], context: Mapping[str, Any] | None = None
                     ) -> PolicySet:
    """Compile policy documents (dicts, or JSON text as IAM returns it) for one principal's `context`."""
    ctx = {k.lower(): v for k, v in (context or {}).items()}
    statements: list[Statement] = []
    for document in documents:
        doc = json.loads(document) if isinstance(document, str) else document
        if not isinstance(doc, Mapping) or "Statement" not in doc:
            raise PolicyError("a policy document needs a Statement")
        raw = doc["Statement"]
        for item in raw if isinstance(raw, list) else [raw]:
            if not isinstance(item, Mapping):
                raise PolicyError("each statement must be an object")
            statements.append(compile_statement(item, ctx))
    return PolicySet(tuple(statements), ctx)


def _matches(statement: Statement, action: str, resource: str) -> bool:
    """True if the statement's Action/NotAction and Resource/NotResource cover the pair."""
    if (statement.actions.fullmatch(action) is None) != statement.actions_negated:
        return False
    if statement.resources is None:  # unknown policy variable: only a Deny may apply (conservative)
        return statement.effect == "Deny"
    return (statement.resources.fullmatch(resource) is None) == statement.resources_negated


def _string_test(operator: str, actual: str, wanted: str) -> bool:
    """Compare one context value with one policy value under a (non-negated form of an) operator."""
    if operator in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        return actual == wanted if operator.startswith("String") else _arn_like(actual, wanted)
    if operator in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == wanted.lower()
    if operator in ("StringLike", "StringNotLike"):
        return re.fullmatch(_glob(wanted, ".*", "."), actual, re.DOTALL) is not None
    if operator == "Bool":
        return actual.lower() == str(wanted).lower()
    return _arn_like(actual, wanted)  # ArnLike, ArnNotLike


def _arn_like(actual: str, wanted: str) -> bool:
    """ArnEquals/ArnLike: segment-wise wildcard match of an ARN."""
    tokens = [f"\\{c}" if c in "*?" else c for c in wanted]
    return re.fullmatch(_arn_regex(tokens), actual, re.DOTALL) is not None


def _key_test(operator: str, qualifier: str, actual: Any, wanted: list[Any]) -> bool | None:
    """Evaluate one condition key; None if it cannot be decided."""
    negated = operator in NEGATED
    values = actual if isinstance(actual, list) else [actual]
    hits = [any(_string_test(operator, str(v), str(w)) for w in wanted) for v in values]
    if qualifier == "ForAllValues":
        return all(not h if negated else h for h in hits)
    found = any(hits)
    return not found if negated else found


def condition_holds(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool | None:
    """Evaluate a Condition block: True, False, or None if some part is not supported."""
    result: bool | None = True
    for full_operator, keys in condition.items():
        qualifier, _, operator = full_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        if qualifier not in ("", "ForAnyValue", "ForAllValues") or not isinstance(keys, Mapping):
            return UNKNOWN
        for key, wanted in keys.items():
            actual = _context_value(context, key)
            if operator == "Null":
                held = (actual is None) == (str(wanted).lower() == "true")
            elif operator not in STRING_OPERATORS:
                return UNKNOWN
            elif actual is None:  # a key this principal's context lacks, or one of the request's content
                held = True if if_exists else UNKNOWN
            else:
                held = _key_test(operator, qualifier, actual, [str(w).lower() if isinstance(w, bool) else w
                                                               for w in _as_list_any(wanted)])
            if held is False:
                return False
            if held is UNKNOWN:
                result = UNKNOWN
    return result


@dataclass(frozen=True)
class PolicySet:
    """The compiled identity-based policies of one principal, with the request context they are read in."""

    statements: tuple[Statement, ...]
    context: Mapping[str, Any]

    def decide(self, action: str, resource: str) -> Decision:
        """Return the decision on one (action, resource) authorization."""
        allowed = False
        for statement in self.statements:
            if not _matches(statement, action, resource):
                continue
            held = condition_holds(statement.condition, self.context) if statement.condition else True
            if statement.effect == "Deny" and held is not False:
                return Decision.EXPLICIT_DENY
            allowed = allowed or (statement.effect == "Allow" and held is True)
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY

    def authorize(self, pairs: Iterable[tuple[str, str]]) -> Verdict:
        """Decide a call made of several authorizations: the first refused one decides it."""
        last = ("", "")
        for action, resource in pairs:
            decision = self.decide(action, resource)
            if decision is not Decision.ALLOW:
                return Verdict(decision, action, resource)
            last = (action, resource)
        return Verdict(Decision.ALLOW, *last)


def evaluate(policies: Iterable[Mapping[str, Any] | str], action: str, resources: str | Iterable[str],
             context: Mapping[str, Any] | None = None) -> Verdict:
    """Evaluate `action` on every one of `resources` against identity-based policy documents."""
    names = [resources] if isinstance(resources, str) else list(resources)
    return compile_policies(policies, context).authorize((action, r) for r in names)


def principal_context(account: str, role: str, session: str, region: str) -> dict[str, Any]:
    """Return the request context of an EC2 instance calling with its role's credentials."""
    return {
        "aws:PrincipalArn": f"arn:aws:iam::{account}:role/{role}",
        "aws:PrincipalAccount": account,
        "aws:PrincipalType": "AssumedRole",
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "false",
        "aws:ViaAWSService": "false",
        "ec2:SourceInstanceARN": f"arn:aws:ec2:{region}:{account}:instance/{session}",
    }


def assumed_role_arn(account: str, role: str, session: str) -> str:
    """Return the caller's ARN as AWS prints it in an AccessDeniedException."""
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def denial_message(caller_arn: str, verdict: Verdict) -> str:
    """Return the message of the AccessDeniedException AWS answers for a refused verdict."""
    head = f"User: {caller_arn} is not authorized to perform: {verdict.action} on resource: {verdict.resource}"
    if verdict.decision is Decision.EXPLICIT_DENY:
        return f"{head} with an explicit deny in an identity-based policy"
    return f"{head} because no identity-based policy allows the {verdict.action} action"

"""IAM policy documents and the matching of one statement against one request.

Matching follows the IAM JSON policy reference:

* Action/NotAction: case-insensitive, ``*`` and ``?`` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html);
* Resource/NotResource: case-sensitive wildcards, policy variables ``${key}`` taken from the request
  context (a statement whose variable is absent from the context does not match)
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html);
* Principal/NotPrincipal: ``*``, ``AWS`` (account id, ``:root``, role, assumed-role session),
  ``Service``, ``Federated``;
* Condition: every operator of
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  with ``...IfExists`` and the ``ForAnyValue:``/``ForAllValues:`` set qualifiers; keys are
  case-insensitive, several keys (and several operators) are ANDed, several values of one key ORed
  (NORed for the negated operators).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ContextValue = str | bool | int | float | Sequence[str]
Context = Mapping[str, ContextValue]


class PolicyError(ValueError):
    """A policy document the authorizer cannot read (IAM would have refused to store it)."""


@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters, ``?`` any one character (IAM's string wildcards)."""
    return bool(_wildcard_regex(pattern, ignore_case).match(value))


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike: the six colon-separated parts compared one by one, each with wildcards."""
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return wildcard_match(pattern, value)
    return all(wildcard_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def substitute_variables(pattern: str, context: Context) -> str | None:
    """Replace ``${key}`` (and ``${*}``, ``${?}``, ``${$}``) from ``context``; None if a key is absent."""
    missing = False

    def value_of(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in {"*", "?", "$"}:
            return name
        key, _, default = name.partition(", ")
        found = lookup(context, key)
        if found is None:
            if default:
                return default.strip("'")
            missing = True
            return ""
        return found if isinstance(found, str) else str(found)

    replaced = _VARIABLE.sub(value_of, pattern)
    return None if missing else replaced


def lookup(context: Context, key: str) -> ContextValue | None:
    """The context value of ``key`` (condition keys are case-insensitive)."""
    if key in context:
        return context[key]
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# --- conditions -----------------------------------------------------------------------------------


def _parse_date(value: Any) -> dt.datetime | None:
    text = str(value)
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(base: str, policy_value: Any, request_value: Any) -> bool:
    """One policy value against one request value under the positive form of operator ``base``."""
    if base in {"StringEquals"}:
        return str(request_value) == str(policy_value)
    if base == "StringEqualsIgnoreCase":
        return str(request_value).lower() == str(policy_value).lower()
    if base == "StringLike":
        return wildcard_match(str(policy_value), str(request_value))
    if base in {"ArnEquals"}:
        return str(request_value) == str(policy_value)
    if base == "ArnLike":
        return arn_match(str(policy_value), str(request_value))
    if base == "Bool":
        return str(request_value).lower() == str(policy_value).lower()
    if base == "BinaryEquals":
        return str(request_value) == str(policy_value)
    if base.startswith("Numeric"):
        left, right = _number(request_value), _number(policy_value)
        if left is None or right is None:
            return False
        return {
            "NumericEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }[base]
    if base.startswith("Date"):
        left_date, right_date = _parse_date(request_value), _parse_date(policy_value)
        if left_date is None or right_date is None:
            return False
        return {
            "DateEquals": left_date == right_date,
            "DateLessThan": left_date < right_date,
            "DateLessThanEquals": left_date <= right_date,
            "DateGreaterThan": left_date > right_date,
            "DateGreaterThanEquals": left_date >= right_date,
        }[base]
    if base == "IpAddress":
        try:
            return ipaddress.ip_address(str(request_value)) in ipaddress.ip_network(
                str(policy_value), strict=False
            )
        except ValueError:
            return False
    raise PolicyError(f"unknown condition operator {base!r}")


# negated operator -> its positive form
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
_POSITIVE = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "NumericEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "ArnEquals",
    "ArnLike",
}


def condition_operator_known(operator: str) -> bool:
    """True when ``operator`` (with its qualifiers) is an IAM condition operator."""
    _, _, name = operator.rpartition(":")
    if name.endswith("IfExists"):
        name = name[: -len("IfExists")]
    return name == "Null" or name in _POSITIVE or name in _NEGATED


def evaluate_condition_block(block: Mapping[str, Any], context: Context) -> bool:
    """True when every operator/key pair of a statement's ``Condition`` holds for ``context``."""
    for operator, keys in block.items():
        if not condition_operator_known(operator):
            raise PolicyError(f"unknown condition operator {operator!r}")
        if not isinstance(keys, Mapping):
            raise PolicyError(f"condition {operator!r} must map keys to values, got {keys!r}")
        for key, values in keys.items():
            if not _evaluate_one(operator, str(key), _as_list(values), context):
                return False
    return True


def _evaluate_one(operator: str, key: str, policy_values: list[Any], context: Context) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    if if_exists:
        name = name[: -len("IfExists")]
    present = lookup(context, key)
    if name == "Null":
        # Null "true": the key must be absent; "false": present
        wants_absent = any(str(v).lower() == "true" for v in policy_values)
        return (present is None) == wants_absent
    negated = name in _NEGATED
    base = _NEGATED.get(name, name)
    if present is None:
        if if_exists:
            return True
        if qualifier == "ForAllValues":
            return True  # an empty set is a subset of anything
        # a negated operator holds when the key is absent (e.g. StringNotEquals)
        return negated and qualifier != "ForAnyValue"
    request_values = _as_list(present)

    def matches(request_value: Any) -> bool:
        return any(_compare(base, policy_value, request_value) for policy_value in policy_values)

    if qualifier == "ForAllValues":
        if negated:
            return all(not matches(v) for v in request_values)
        return all(matches(v) for v in request_values)
    if qualifier == "ForAnyValue":
        if negated:
            return any(not matches(v) for v in request_values)
        return any(matches(v) for v in request_values)
    if qualifier:
        raise PolicyError(f"unknown condition set qualifier {qualifier!r} in {operator!r}")
    # a single-valued operator over a multivalued context key: any value decides (positive), none (negated)
    if negated:
        return not any(matches(v) for v in request_values)
    return any(matches(v) for v in request_values)


# --- principals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who makes a request, in the forms a policy's ``Principal`` element can name."""

    kind: str
    """``AWS``, ``Service`` or ``Federated``."""
    arn: str
    """Role ARN (for a role session), service principal, or identity provider ARN."""
    account: str = ""
    session_arn: str = ""
    """``arn:aws:sts::<account>:assumed-role/<role>/<session>`` for a role session."""

    @property
    def is_account_root(self) -> bool:
        """The account's root user (the emulator's deployer)."""
        return self.kind == "AWS" and self.arn.endswith(":root")


def principal_matches(element: Any, principal: Principal) -> tuple[bool, bool]:
    """(matched, matched_only_through_the_account) for a policy's ``Principal`` element.

    An account (``123456789012`` or ``arn:aws:iam::123456789012:root``) names the account as a whole:
    in a resource policy it delegates to the account's IAM policies rather than granting by itself.
    """
    if element == "*":
        return True, False
    if not isinstance(element, Mapping):
        raise PolicyError(f"Principal must be '*' or an object, got {element!r}")
    matched_via_account = False
    for kind, values in element.items():
        for value in _as_list(values):
            text = str(value)
            if text == "*" and kind == "AWS":
                return True, False
            if kind != principal.kind:
                continue
            if kind == "AWS":
                if text in {principal.account, f"arn:aws:iam::{principal.account}:root"}:
                    if principal.is_account_root:
                        return True, False
                    matched_via_account = True
                    continue
                if text in {principal.arn, principal.session_arn}:
                    return True, False
            elif text == principal.arn:
                return True, False
    return matched_via_account, matched_via_account


# --- statements and policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement of a policy document, normalised."""

    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principal: Any = None
    not_principal: Any = None
    condition: Mapping[str, Any] = field(default_factory=dict)
    sid: str = ""
    index: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``Sid`` or ``Statement[i]``, for reports."""
        return self.sid or f"Statement[{self.index}]"

    def action_matches(self, action: str) -> bool:
        """Action/NotAction against ``service:Action``."""
        if self.actions:
            return any(wildcard_match(a, action, ignore_case=True) for a in self.actions)
        return not any(wildcard_match(a, action, ignore_case=True) for a in self.not_actions)

    def resource_matches(self, resource: str, context: Context) -> bool:
        """Resource/NotResource against an ARN (policy variables substituted from ``context``)."""
        patterns = self.resources or self.not_resources
        hit = False
        for pattern in patterns:
            concrete = substitute_variables(pattern, context)
            if concrete is not None and wildcard_match(concrete, resource):
                hit = True
                break
        return hit if self.resources else not hit

    def conditions_hold(self, context: Context) -> bool:
        """Every condition of the statement holds."""
        return evaluate_condition_block(self.condition, context) if self.condition else True


@dataclass(frozen=True)
class Policy:
    """A named policy document: where it comes from (for reports) and its statements."""

    name: str
    """e.g. ``role/x inline policy y``, ``bucket policy of b``, ``key policy of <key arn>``."""
    statements: tuple[Statement, ...]
    kind: str = "identity"
    """``identity``, ``resource`` or ``trust``."""

    @classmethod
    def parse(cls, name: str, document: str | Mapping[str, Any], kind: str = "identity") -> Policy:
        """Read a policy document (JSON text or parsed), naming ``name`` in any error."""
        if isinstance(document, str | bytes):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise PolicyError(f"{name}: not valid JSON ({exc})") from exc
        if not isinstance(document, Mapping):
            raise PolicyError(f"{name}: a policy document must be a JSON object")
        raw_statements = document.get("Statement")
        if isinstance(raw_statements, Mapping):
            raw_statements = [raw_statements]
        if not isinstance(raw_statements, list):
            raise PolicyError(f"{name}: Statement must be a list of statements")
        statements: list[Statement] = []
        for index, raw in enumerate(raw_statements):
            if not isinstance(raw, Mapping):
                raise PolicyError(f"{name}: Statement[{index}] must be an object")
            effect = raw.get("Effect")
            if effect not in {"Allow", "Deny"}:
                raise PolicyError(f"{name}: Statement[{index}].Effect must be Allow or Deny, got {effect!r}")
            if ("Action" in raw) == ("NotAction" in raw):
                raise PolicyError(f"{name}: Statement[{index}] needs exactly one of Action / NotAction")
            if kind != "trust" and ("Resource" in raw) == ("NotResource" in raw):
                raise PolicyError(f"{name}: Statement[{index}] needs exactly one of Resource / NotResource")
            if kind != "identity" and "Principal" not in raw and "NotPrincipal" not in raw:
                raise PolicyError(f"{name}: Statement[{index}] of a {kind} policy needs a Principal")
            statements.append(
                Statement(
                    effect=str(effect),
                    actions=tuple(str(a) for a in _as_list(raw.get("Action"))),
                    not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction"))),
                    resources=tuple(str(r) for r in _as_list(raw.get("Resource"))),
                    not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource"))),
                    principal=raw.get("Principal"),
                    not_principal=raw.get("NotPrincipal"),
                    condition=dict(raw.get("Condition") or {}),
                    sid=str(raw.get("Sid") or ""),
                    index=index,
                    raw=dict(raw),
                )
            )
        return cls(name=name, statements=tuple(statements), kind=kind)

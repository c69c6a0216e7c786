"""Parse stack config values into a :class:`~stacks.config.platform.PlatformConfig`, reporting every
problem with the config key a user writes (``mlops-platform:endpoint.canarySizePercent``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from stacks.config.base import PROJECT, ConfigError
from stacks.config.models import catalog_key
from stacks.config.platform import PlatformConfig


def _key_for(loc: tuple[int | str, ...], raw: Mapping[str, Any] | None = None) -> str:
    """Turn a pydantic error location into the config key a user writes in YAML; a model catalog
    entry is named by its model (``mlops-platform:models['housing'].endpoint``, see ``catalog_key``)."""
    parts = [str(p) for p in loc]
    if not parts:
        return f"{PROJECT}:<root>"
    if parts[0] == "region":
        return "aws:region"
    if parts[0] == "models" and len(loc) > 1 and isinstance(loc[1], int):
        entry = catalog_key((raw or {}).get("models"), loc[1])
        return entry + "".join(f".{p}" for p in parts[2:])
    head, rest = parts[0], parts[1:]
    return f"{PROJECT}:{head}" + "".join(f".{p}" for p in rest)


def _describe(errors: list[Any], raw: Mapping[str, Any] | None = None) -> list[str]:
    problems = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "missing":
            problems.append(f"{_key_for(loc, raw)} is required but not set")
            continue
        if err.get("type") == "extra_forbidden":
            problems.append(
                f"{_key_for(loc, raw)} is not a known setting (check the spelling; see docs/configuration.md)"
            )
            continue
        value = err.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, Mapping) else "{...}"
        if not loc:  # model-level rules: each line is one problem and names its keys
            problems.extend(line for line in msg.splitlines() if line)
        elif isinstance(value, Mapping) and msg.startswith(f"{loc[-1]}"):
            # a section's own rule, written relative to it ("endpoint.captureEnabled ..."): prefix the path
            problems.append(f"{_key_for(loc[:-1], raw)}.{msg}" if len(loc) > 1 else f"{PROJECT}:{msg}")
        else:
            problems.append(f"{_key_for(loc, raw)} = {shown}: {msg}")
    return problems


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate a dict of config values (camelCase keys, ``region`` for ``aws:region``).

    Raises:
        ConfigError: listing each invalid key, its value and the rule it broke.
    """
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), raw)) from None


# Top-level keys read from the project namespace. Keep in sync with Pulumi.yaml's `config:` block.
CONFIG_KEYS = tuple(
    field.alias or name for name, field in PlatformConfig.model_fields.items() if name != "region"
)


def load_config() -> PlatformConfig:
    """Read the current stack's config through ``pulumi.Config`` and validate it.

    Structured values (objects) arrive as JSON strings; scalars as strings that pydantic coerces.
    """
    import pulumi  # imported here so the model stays importable without the Pulumi runtime

    project = pulumi.Config(PROJECT)
    flat: dict[str, str] = {}
    for key in CONFIG_KEYS:
        value = project.get(key)
        if value is not None:
            flat[f"{PROJECT}:{key}"] = value
    region = pulumi.Config("aws").get("region")
    if region is not None:
        flat["aws:region"] = region
    return parse_config(raw_values(flat))


def raw_values(flat: Mapping[str, str]) -> dict[str, Any]:
    """Turn the runtime's flat ``{"namespace:key": "string"}`` config into :func:`parse_config` input.

    Keeps the project's keys (JSON objects and arrays decoded) and ``aws:region`` as ``region``; other
    namespaces (``aws:profile``...) are not the platform's and are left out.
    """
    raw: dict[str, Any] = {}
    for full_key, value in flat.items():
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT:
            raw[key] = _decode(value)
        elif full_key == "aws:region":
            raw["region"] = value
    return raw


def _decode(value: str) -> Any:
    """Config values are strings; objects and arrays are JSON-encoded, scalars are left to pydantic."""
    if value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value

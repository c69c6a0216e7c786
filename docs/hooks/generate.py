"""MkDocs hook: generate reference sections from the code so the docs cannot drift from it.

Markers replaced in page Markdown:

* ``<!-- generated:config -->``: every config key (from ``stacks.config.PlatformConfig``,
  including the sections later layers add), with type, default and description.
* ``<!-- generated:outputs -->``: the stack outputs (``stacks.outputs.STACK_OUTPUTS``, each declared once).
* ``<!-- generated:policies -->``: every rule of the policy pack (``policies``) with its ID, what it
  requires, why, level per environment and the public rule it mirrors, plus the accepted exceptions.
* ``<!-- generated:api PACKAGE -->``: a mkdocstrings ``:::`` block for every public module of
  ``PACKAGE`` (so new modules appear in the reference without editing the page).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "")
    text = re.sub(r"stacks\.config\.(?:\w+\.)?", "", text)  # section classes live in stacks.config.<module>
    return re.sub(r"<class '([^']+)'>", r"\1", text)


def _config_rows(model: Any, prefix: str) -> list[str]:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    rows: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        full = "aws:region" if name == "region" and not prefix else f"{prefix}{key}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.append(f"| `{full}` | section | | {(annotation.__doc__ or '').strip().splitlines()[0]} |")
            rows.extend(_config_rows(annotation, f"{full}."))
            continue
        item = (getattr(annotation, "__args__", None) or (None,))[0]
        if (
            getattr(annotation, "__origin__", None) is list
            and isinstance(item, type)
            and issubclass(item, BaseModel)
        ):
            desc = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{full}` | list of `{item.__name__}` | | {desc} |")
            rows.extend(_config_rows(item, f"{full}[]."))
            continue
        if field.default is not PydanticUndefined:
            default = f"`{field.default!r}`"
        elif field.default_factory is not None:
            default = f"`{field.default_factory()!r}`"  # type: ignore[call-arg]
        else:
            default = "**required**"
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        type_name = _type_name(annotation).replace("|", "\\|")
        rows.append(f"| `{full}` | `{type_name}` | {default} | {desc} |")
    return rows


def config_table() -> str:
    from stacks.config import PROJECT, PlatformConfig

    head = "| key | type | default | description |\n|---|---|---|---|"
    return head + "\n" + "\n".join(_config_rows(PlatformConfig, f"{PROJECT}:"))


def outputs_table() -> str:
    from stacks.outputs import STACK_OUTPUTS

    rows = "\n".join(f"| `{o.key}` | {o.description} |" for o in STACK_OUTPUTS)
    return "| output | meaning |\n|---|---|\n" + rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def policies_table() -> str:
    from policies.engine import all_rules
    from policies.exceptions import EXCEPTIONS

    rows = [
        f"| `{r.id}` | {_cell(r.title)} | {_cell(r.why)} | {r.level_summary} | "
        f"{_cell(', '.join(r.mirrors) or 'platform / ML-specific')} |"
        for r in all_rules()
    ]
    table = "| rule | what | why | level | mirrors |\n|---|---|---|---|---|\n" + "\n".join(rows)
    accepted = "\n".join(
        f"| `{e.name}` | `{e.rule_id}` | `{e.resource_name}` | {_cell(e.reason)} |" for e in EXCEPTIONS
    )
    return (
        f"{len(rows)} rules.\n\n{table}\n\n### Accepted exceptions\n\n"
        "| exception | rule | resources | reason |\n|---|---|---|---|\n" + accepted
    )


def api_blocks(package: str) -> str:
    pkg = importlib.import_module(package)
    blocks = []
    for info in sorted(pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."), key=lambda m: m.name):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        blocks.append(f"::: {info.name}\n")
    return "\n".join(blocks)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the generated-content markers of a page."""
    markdown = markdown.replace("<!-- generated:config -->", config_table())
    markdown = markdown.replace("<!-- generated:outputs -->", outputs_table())
    if "<!-- generated:policies -->" in markdown:
        markdown = markdown.replace("<!-- generated:policies -->", policies_table())
    return re.sub(r"<!-- generated:api ([\w.]+) -->", lambda m: api_blocks(m.group(1)), markdown)

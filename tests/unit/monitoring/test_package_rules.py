"""Package rules for serving and monitoring: documented public API, light CLI imports, no Pulumi."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ("pipelines.serving", "pipelines.monitoring")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [
            f"{package}.{m.name}" for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_")
        ]
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_public_api_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            if inspect.isclass(obj):
                missing += [
                    f"{name}.{attr}"
                    for attr, member in vars(obj).items()
                    if not attr.startswith("_")
                    and inspect.isfunction(member)
                    and not (member.__doc__ or "").strip()
                ]
    assert not missing, f"{module_name}: add docstrings to {missing}"


def test_cli_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, pipelines.serving.cli, pipelines.monitoring.cli\n"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'sklearn', 'boto3', 'uvicorn', 'pulumi') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_pulumi_anywhere() -> None:
    code = "import sys\n" + "".join(f"import {m}\n" for m in _modules()) + "print('pulumi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

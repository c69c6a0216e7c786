"""Package rules for serving and monitoring: light CLI imports, no Pulumi (docstrings: tests/unit/test_docstrings.py)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

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


def test_cli_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, pipelines.serving.cli, pipelines.monitoring.cli\n"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'sklearn', 'boto3', 'httptools', 'pulumi') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_pulumi_anywhere() -> None:
    code = "import sys\n" + "".join(f"import {m}\n" for m in _modules()) + "print('pulumi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

#!/usr/bin/env python3
"""Set up the project's virtual environment from the lock file, then run a project command in it.

Usage (from the repository root, with only Python 3.11+ installed)::

    python3 dev.py rehearse          # set up, then run the main job
    python3 dev.py test [pytest args] # set up, then run the test suite
    python3 dev.py synth --stack prod # any `mlops` sub-command
    python3 dev.py lint | typecheck | docs | ci
    python3 dev.py lock               # re-resolve requirements.lock from pyproject.toml

Set-up is idempotent: `.venv/` is created once and re-synced only when `requirements.lock` or
`pyproject.toml` change (a hash stamp in `.venv/.lock-stamp`). Nothing here needs Java, Docker,
an AWS account or the Pulumi CLI. Uses only the standard library so it runs before anything is
installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("MLOPS_VENV", ROOT / ".venv"))
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".lock-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def _say(message: str) -> None:
    print(f"\033[1;34m[dev]\033[0m {message}", flush=True)


def _run(cmd: list[str | Path], **kwargs: object) -> int:
    # Only the project's own tools, with arguments from this script or its caller's command line.
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)  # type: ignore[arg-type]  # noqa: S603


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_env() -> None:
    """Create .venv and install the locked dependencies plus this project (editable)."""
    if not PY.exists():
        _say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    wanted = _fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    _say("installing locked dependencies (first run takes a few minutes)")
    pip = [PY, "-m", "pip", "--disable-pip-version-check"]
    steps = [
        [*pip, "install", "--quiet", "--upgrade", "pip>=24"],
        [*pip, "install", "--quiet", "-r", LOCK],
        [*pip, "install", "--quiet", "--no-deps", "-e", ROOT],
    ]
    for step in steps:
        if _run(step) != 0:
            sys.exit(f"dev.py: set-up failed at: {' '.join(map(str, step))}")
    STAMP.write_text(wanted)
    _say("environment ready")


def _tool(name: str) -> str:
    return str(BIN / name)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "lock":
        ensure_env()
        _run([PY, "-m", "pip", "install", "--quiet", "uv"])
        return _run(
            [
                _tool("uv"),
                "pip",
                "compile",
                "pyproject.toml",
                "--extra",
                "dev",
                "--python-version",
                "3.11",
                "--python-platform",
                "x86_64-unknown-linux-gnu",
                "-o",
                LOCK,
                *rest,
            ]
        )
    ensure_env()
    if command == "setup":
        return 0
    if command == "test":
        # The suite holds multi-minute end-to-end tests (Spark, Airflow, the rehearsal): spread it over
        # every core with pytest-xdist unless the caller chose (-n 0 runs it in one process).
        workers = (
            [] if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in rest) else ["-n", "auto"]
        )
        return _run([PY, "-m", "pytest", *workers, *rest])
    if command == "lint":
        return _run([_tool("ruff"), "check", "."]) or _run([_tool("ruff"), "format", "--check", "."])
    if command == "typecheck":
        return _run([_tool("basedpyright"), *rest])
    if command == "docs":
        return _run([_tool("mkdocs"), "build", "--strict", *rest])
    if command == "ci":
        for sub in (["lint"], ["typecheck"], ["docs"], ["test"]):
            _say(f"ci: {sub[0]}")
            code = main(sub)
            if code:
                return code
        return 0
    # anything else is an `mlops` sub-command
    return _run([_tool("mlops"), command, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

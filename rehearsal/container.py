"""Run a process the way a SageMaker container runs it: it sees its own code and the image's libraries only.

In AWS a training job or an endpoint runs in the prebuilt scikit-learn image: the image brings Python
and its libraries (scikit-learn, pandas, ...), and the job brings only what it submitted (the source
archive, the model artifact's ``code/`` folder). It never sees the repository the code came from.

Here the "image" is this interpreter's site-packages *without* the project: the child runs with
``python -I -S`` (no current directory, no ``PYTHONPATH``, no ``site`` processing, so the project's
editable-install hook in a ``.pth`` file never loads), and its ``sys.path`` is the standard library,
then the submitted code folders, then the site-packages folders. A job whose archive lacks a module
fails with ``ModuleNotFoundError`` exactly as it would on AWS.
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

# The project's own distribution: installed (editable) in the venv, but not part of the image.
PROJECT_DISTRIBUTION = "mlops-platform-blueprint"

_BOOTSTRAP = "import runpy, sys\nsys.path[1:1] = {paths!r}\nsys.argv = {argv!r}\n{run}\n"


def image_site_packages() -> list[str]:
    """The site-packages folders of this interpreter: the libraries the emulated image provides."""
    folders = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(f for f in folders if Path(f).is_dir()))


@dataclass(frozen=True)
class ContainerCommand:
    """What to run in the emulated container."""

    code_paths: Sequence[Path]
    """Folders on ``sys.path`` ahead of the image's libraries (the submitted code)."""
    script: Path | None = None
    """Run this file as ``__main__`` (like ``python script.py``)..."""
    module: str | None = None
    """...or this module (like ``python -m module``)."""
    args: Sequence[str] = ()
    """Command-line arguments after the script or module."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The whole environment of the process (nothing is inherited from the emulator's)."""

    def argv(self) -> list[str]:
        """The interpreter command line."""
        if (self.script is None) == (self.module is None):
            raise ValueError("give exactly one of script or module")
        paths = [str(Path(p).resolve()) for p in self.code_paths] + image_site_packages()
        if self.script is not None:
            argv0 = str(self.script)
            run = f"runpy.run_path({argv0!r}, run_name='__main__')"
        else:
            argv0 = str(self.module)
            run = f"runpy.run_module({self.module!r}, run_name='__main__', alter_sys=True)"
        code = _BOOTSTRAP.format(paths=paths, argv=[argv0, *self.args], run=run)
        return [sys.executable, "-I", "-S", "-c", code]


def base_environment(home: Path) -> dict[str, str]:
    """The minimal environment a container starts with (no AWS credentials, no project settings)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "HOME": str(home),
    }


def start(
    command: ContainerCommand, cwd: Path, log_path: Path, stderr_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in ``cwd`` with stdout appended to ``log_path``.

    stderr goes to the same file, or to ``stderr_path`` when given (EMR keeps the two streams apart).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if stderr_path is not None:
        stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log, (stderr_path or log_path).open("ab") as err:
        # The command line is built from the job's own request by the emulator, never from a shell.
        return subprocess.Popen(  # noqa: S603
            command.argv(),
            cwd=cwd,
            env=dict(command.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if stderr_path is None else err,
            start_new_session=True,  # its own process group, so stopping it stops its children too
        )


def unsatisfied_requirements(requirements: str) -> list[str]:
    """Lines of a ``requirements.txt`` that the image's installed libraries do not satisfy.

    The container would ``pip install`` them; the emulated account has no network, so a requirement the
    image does not already meet is reported (and the job fails) instead of silently using the host's.
    The project itself never counts as installed.
    """
    problems: list[str] = []
    for raw in requirements.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"{line}: not a valid requirement ({exc})")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        if req.name.lower() == PROJECT_DISTRIBUTION:
            problems.append(f"{line}: the project is not part of the image; ship its code in the archive")
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{line}: not in the image (no network to install it)")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{line}: the image has {req.name} {installed}")
    return problems

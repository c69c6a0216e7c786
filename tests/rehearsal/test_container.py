"""The emulated container sees its submitted code and the image's libraries, never the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from rehearsal.container import ContainerCommand, base_environment, start, unsatisfied_requirements


def _run(command: ContainerCommand, tmp_path: Path) -> tuple[int, str]:
    log = tmp_path / "log.txt"
    proc = start(command, cwd=tmp_path, log_path=log)
    code = proc.wait(timeout=60)
    return code, log.read_text()


def test_the_project_is_not_importable_but_the_image_libraries_are(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        "import importlib.util, sys\n"
        "import sklearn, pandas\n"
        "for name in ('pipelines', 'stacks', 'components', 'rehearsal'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
        "print('argv', sys.argv[1:])\n"
    )
    code, log = _run(
        ContainerCommand(
            code_paths=[tmp_path], script=script, args=["--x", "1"], env=base_environment(tmp_path)
        ),
        tmp_path,
    )
    assert code == 0, log
    assert "argv ['--x', '1']" in log


def test_submitted_code_is_importable_as_a_module(tmp_path: Path) -> None:
    pkg = tmp_path / "code" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("import os; print('env', os.environ.get('SM_MODEL_DIR'))\n")
    code, log = _run(
        ContainerCommand(
            code_paths=[tmp_path / "code"],
            module="mypkg",
            env={**base_environment(tmp_path), "SM_MODEL_DIR": "/m"},
        ),
        tmp_path,
    )
    assert code == 0, log
    assert "env /m" in log


def test_a_missing_module_fails_as_it_would_in_the_image(tmp_path: Path) -> None:
    script = tmp_path / "entry.py"
    script.write_text("from pipelines.train import main\n")
    code, log = _run(
        ContainerCommand(code_paths=[tmp_path], script=script, env=base_environment(tmp_path)), tmp_path
    )
    assert code != 0
    assert "ModuleNotFoundError: No module named 'pipelines'" in log


def test_requirements_the_image_cannot_meet_are_reported() -> None:
    assert unsatisfied_requirements("pandas>=1\n# comment\nscikit-learn\n") == []
    problems = unsatisfied_requirements("pandas<1\nno-such-package-xyz\nmlops-platform-blueprint\n!!bad")
    assert len(problems) == 4
    assert "the image has pandas" in problems[0]
    assert "not in the image" in problems[1]
    assert "not part of the image" in problems[2]
    assert "not a valid requirement" in problems[3]


def test_exactly_one_of_script_or_module() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ContainerCommand(code_paths=[]).argv()

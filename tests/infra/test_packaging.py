"""What azd deploys and what `pip install .` would do with this project: .funcignore keeps every
local build output out of the package (azd applies only its patterns once it exists), and the
project root is declared a distribution without packages, so setuptools never guesses one."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.infra import bicep

ROOT = bicep.INFRA.parent


def patterns(name: str) -> set[str]:
    lines = (ROOT / name).read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def covered(pattern: str, ignored: set[str]) -> bool:
    """`pattern` itself, or a folder above it, is in `ignored`."""
    parts = pattern.split("/")
    return any("/".join(parts[:n]) in ignored for n in range(1, len(parts) + 1))


def test_funcignore_leaves_out_everything_git_ignores() -> None:
    ignored = patterns(".funcignore")
    missing = {p for p in patterns(".gitignore") if not covered(p, ignored)}
    assert missing == set()


def test_funcignore_leaves_out_build_output_and_the_azd_environment() -> None:
    # .azure holds the azd environment, secrets set with `azd env set` included.
    assert {".python_packages", ".venv", ".azure", "tests", "infra"} <= patterns(".funcignore")


def test_funcignore_keeps_what_the_host_loads() -> None:
    ignored = patterns(".funcignore")
    for needed in ("shared", "host.json", "requirements.txt", "optimize_media", "health"):
        assert (ROOT / needed).exists(), needed
        assert not covered(needed, ignored), needed


def test_pyproject_declares_a_build_system_and_no_packages() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert pyproject["tool"]["setuptools"] == {"packages": [], "py-modules": []}


def test_setuptools_finds_no_package_in_the_project_layout(tmp_path: Path) -> None:
    # The project's top-level layout, each package reduced to an empty __init__.py: without
    # explicit package lists setuptools' flat-layout discovery refuses it (several top-level
    # packages) or, with fewer folders, would quietly ship one. egg_info needs no network.
    for child in ROOT.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            (tmp_path / child.name).mkdir()
            (tmp_path / child.name / "__init__.py").touch()
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    result = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "egg_info"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (top_level,) = tmp_path.glob("*.egg-info/top_level.txt")
    assert top_level.read_text().strip() == ""

"""Documentation: every public symbol has a docstring, and the Sphinx build passes with -W."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


coverage_check = _load("_machlib_docs_coverage_check", DOCS / "_ext" / "coverage_check.py")


def test_public_symbols_have_docstrings():
    problems = coverage_check.undocumented(coverage_check.PACKAGES)
    assert not problems, "undocumented public symbols:\n" + "\n".join(problems)


def test_coverage_check_catches_a_missing_docstring(tmp_path, monkeypatch):
    pkg = tmp_path / "_covpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        '"""A package."""\n'
        "import dataclasses\n"
        "__all__ = ['good', 'bad', 'Bare', 'Documented', 'CONST', 'missing']\n"
        "def good():\n    '''Documented.'''\n"
        "def bad():\n    pass\n"
        "@dataclasses.dataclass\nclass Bare:\n    x: int\n"
        "class Documented:\n    '''Documented.'''\n"
        "CONST = 3\n'''A documented constant.'''\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = coverage_check.undocumented(["_covpkg"])
    assert problems == [
        "_covpkg.Bare: missing or empty docstring",
        "_covpkg.bad: missing or empty docstring",
        "_covpkg.missing: listed in __all__ but not defined",
    ]


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```[\w-]*\n(.*?)^```", readme, flags=re.S | re.M)
    assert len(blocks) >= 2, "README must start with the main-job and test command blocks"
    test_command = blocks[1].strip()
    assert "\n" not in test_command and "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.replace(".venv", '"$VENV"') in ci


def _sphinx(builder: str, out: Path) -> None:
    # one doctree folder for both builders: the doctest build finds the html build's parsed pages
    # (Sphinx's environment does not depend on the builder) and reads none again, instead of
    # importing and parsing every API page a second time
    cmd = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", builder,
        "-d", str(out / "doctrees"), str(DOCS), str(out / builder),
    ]
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout)
        print(proc.stderr)
    assert proc.returncode == 0, f"sphinx -b {builder} failed:\n{proc.stderr[-4000:]}"


@pytest.mark.slow
def test_sphinx_html_and_doctest_builds(tmp_path):
    # One test, so that the two builds never regenerate docs/api/ at the same time under xdist,
    # and so that the doctest build reuses the html build's doctrees.
    _sphinx("html", tmp_path)
    _sphinx("doctest", tmp_path)

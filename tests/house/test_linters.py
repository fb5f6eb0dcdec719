"""The house rules a tool checks (STYLE.md 17), run from the README's test command too.

* ``ruff check``: unused imports and variables, undefined names, pycodestyle's errors,
  lines over 110 characters (``[tool.ruff]`` in pyproject.toml);
* ``lint-imports``: the import-linter contracts of ``[tool.importlinter]``: the layers
  between and inside the packages (imports inside functions count), no cycles, family
  modules only through the registry.

Both come with the test extra (``pip install -e ".[test]"``); ``.ci/run`` also runs them
before pytest. Without them installed these tests are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from test_imports import PACKAGES, ROOT


def tool(name):
    """The tool's path: beside this Python (its venv), else on PATH; skips without it."""
    found = shutil.which(name, path=os.pathsep.join([os.path.dirname(sys.executable),
                                                     os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return found


def lint_imports(root):
    """``lint-imports`` over the packages in ``root`` (that tree, whatever is installed)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([tool("lint-imports"), "--no-cache", "--no-logo"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_ruff_passes():
    out = subprocess.run([tool("ruff"), "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_finds_an_unused_import(tmp_path):
    """With the project's settings, ruff refuses an unused import (and the check can fail)."""
    (tmp_path / "planted.py").write_text("import os\n")
    out = subprocess.run([tool("ruff"), "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), "planted.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "F401" in out.stdout, out.stdout + out.stderr


def test_import_contracts_are_kept():
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" in out.stdout and " 0 broken" in out.stdout, out.stdout


def test_a_planted_upward_import_inside_tfresnet_breaks_a_contract(tmp_path):
    """A copy of the packages where a utils module imports training inside a function
    (a deferred import is an arrow too): lint-imports fails and names the import."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    tables = tmp_path / "tfresnet" / "utils" / "tables.py"
    tables.write_text(tables.read_text() + "\n\ndef planted():\n"
                      "    import tfresnet.training.fitting\n")
    out = lint_imports(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "tfresnet.utils is not allowed to import tfresnet.training" in out.stdout, out.stdout
    assert "tfresnet.utils.tables -> tfresnet.training.fitting" in out.stdout, out.stdout

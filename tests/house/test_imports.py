"""House rules no tool checks, read from the source with ``ast``.

The import rules of ARCHITECTURE.md (layers between and inside the packages, no cycles,
family modules only through the registry) are import-linter contracts in pyproject.toml,
and unused imports are ruff's; ``test_linters.py`` runs both. What stays here:

* no module over ``MAX_LINES`` lines (800): a true outlier does more than one job. The
  limit is not the goal; one job a module is, and the folders show which;
* each file or tensor name an export or a run writes is a literal in its owner only.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_LINES = 800  # flags true outliers only: the folders carry the structure, one job a module
PACKAGES = ("tfresnet", "export", "experiments", "benchmarks")


def module_files(root) -> dict:
    """``{dotted module name: path}`` of every ``.py`` file in the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def long_modules(root) -> list:
    """``name (lines)`` of every project module over ``MAX_LINES`` lines."""
    out = []
    for name, path in module_files(root).items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            out.append(f"{name} ({lines})")
    return out


def test_no_module_over_max_lines(tmp_path):
    assert long_modules(ROOT) == []
    (tmp_path / "export").mkdir()  # and the check can fail
    (tmp_path / "export" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_modules(tmp_path) == [f"export.big ({MAX_LINES + 1})"]


# Each file or tensor name an export or a run writes is a literal in its owner only.
NAME_OWNERS = {"config.json": "tfresnet.training.runschema",
               "labels.txt": "tfresnet.training.runschema",
               "history.csv": "tfresnet.training.runschema",
               "best.keras": "tfresnet.training.runschema",
               "model.keras": "tfresnet.training.runschema",
               "models.json": "export.names", "probabilities": "export.names",
               "probability": "export.names", "_results.json": "export.names"}
# Literals that are another file's name: the .keras zip's own config.json, the
# tensorflow-datasets labels.txt.
NAME_EXCEPTIONS = {("tfresnet.utils.kerasfiles", "config.json"),
                   ("export.job.plan", "labels.txt")}


def name_literals(root) -> list:
    """``"module writes 'name'"`` for each owned name written outside its owner."""
    found = set()
    for name, path in module_files(root).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Constant) and node.value in NAME_OWNERS
                    and NAME_OWNERS[node.value] != name
                    and (name, node.value) not in NAME_EXCEPTIONS):
                found.add(f"{name} writes {node.value!r}")
    return sorted(found)


def test_file_and_tensor_names_have_one_owner(tmp_path):
    assert name_literals(ROOT) == []
    (tmp_path / "export").mkdir()  # and the check can fail
    (tmp_path / "export" / "job.py").write_text('OUT = "probabilities"\n')
    assert name_literals(tmp_path) == ["export.job writes 'probabilities'"]

"""The import rules of ARCHITECTURE.md, read from the source with ``ast``.

* ``tfresnet`` (models, data, training, profiling) imports only itself;
* ``export`` (conversion, the export job, compare) imports ``tfresnet`` and itself;
* ``experiments`` and ``benchmarks`` are clients: they import ``tfresnet`` and ``export``,
  and nothing imports them;
* no import cycles among the modules, counting the imports made inside functions too
  (a deferred import hides a cycle from Python, not from a reader);
* nothing outside ``tfresnet/models/`` imports a family module (``FAMILY_MODULES``): it
  asks the registry (a model's facts are its ``ModelInfo``) or a ``ModelVariant``; the
  one exception is ``tfresnet/__init__.py``'s ``TYPE_CHECKING`` block (the front door's
  names for type checkers; at run time it resolves them by name);
* no module over ``MAX_LINES`` lines (800): a true outlier does more than one job. The
  limit is not the goal; one job a module is, and the folders show which.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_LINES = 800  # flags true outliers only: the folders carry the structure, one job a module
PACKAGES = ("tfresnet", "export", "experiments", "benchmarks")
ALLOWED = {
    "tfresnet": {"tfresnet"},
    "export": {"tfresnet", "export"},
    "experiments": {"tfresnet", "export", "experiments"},
    "benchmarks": {"tfresnet", "export", "benchmarks"},
}


FAMILY_MODULES = ("tfresnet.models.resnet", "tfresnet.models.mobilenet",
                  "tfresnet.models.alexnet")


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


def _type_checking_nodes(tree) -> set:
    """The nodes inside ``if TYPE_CHECKING:`` blocks of a module."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return inside


def imported_modules(name, path, modules, *, type_checking=True) -> set:
    """The project modules that module ``name`` imports (anywhere in the file; without
    the ``if TYPE_CHECKING:`` blocks when ``type_checking`` is False)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    skip = set() if type_checking else _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from export import convert" imports the module export.convert.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:   # "tfresnet.data.load" -> tfresnet.data
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root, *, type_checking=True) -> dict:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules, type_checking=type_checking)
            for name, path in modules.items()}


def family_violations(root) -> list:
    """``"a imports b"`` for every import of a family module from outside
    ``tfresnet.models`` (``tfresnet``'s ``TYPE_CHECKING`` block excepted)."""
    graph = import_graph(root)
    front_door = import_graph(root, type_checking=False)["tfresnet"] if "tfresnet" in graph \
        else set()
    graph["tfresnet"] = front_door
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if b in FAMILY_MODULES and not a.startswith("tfresnet.models"))


def layer_violations(graph) -> list:
    """``"a imports b"`` for every import that crosses the layers the wrong way."""
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if b.split(".")[0] not in ALLOWED[a.split(".")[0]])


def cycles(graph) -> list:
    """The import cycles of a module graph, each as ``[a, b, ..., a]`` (depth-first)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_layers_import_only_downwards():
    graph = import_graph(ROOT)
    assert {"tfresnet.train", "export.convert.converter", "export.job.pipeline"} <= set(graph)
    assert "tfresnet.data.pipelines" in graph["export.convert.converter"]
    assert layer_violations(graph) == []


def test_no_import_cycles():
    assert cycles(import_graph(ROOT)) == []


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


def test_the_checks_find_planted_violations(tmp_path):
    """The two checks above can fail: a tree with an upward import and a cycle."""
    files = {
        "tfresnet/__init__.py": "",
        "tfresnet/data.py": "import numpy\n",
        "tfresnet/train.py": "def fit():\n    from export.convert import to_int8\n",
        "export/__init__.py": "",
        "export/convert.py": "from tfresnet import data\nfrom . import pipeline\n",
        "export/pipeline.py": "from export import convert\n",
        "experiments/__init__.py": "",
        "benchmarks/bench.py": "import experiments\n",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    graph = import_graph(tmp_path)
    assert layer_violations(graph) == ["benchmarks.bench imports experiments",
                                       "tfresnet.train imports export.convert"]
    assert cycles(graph) == [["export.convert", "export.pipeline", "export.convert"]]


def test_only_the_models_package_imports_a_family_module():
    assert family_violations(ROOT) == []
    # the front door's TYPE_CHECKING block does import them (the one exception)
    assert set(FAMILY_MODULES) <= import_graph(ROOT)["tfresnet"]


def test_the_family_check_finds_planted_violations(tmp_path):
    """The check above can fail: a family imported by export, by a function in
    experiments, and by the front door outside its TYPE_CHECKING block."""
    files = {
        "tfresnet/__init__.py": ("from typing import TYPE_CHECKING\n"
                                 "import tfresnet.models.alexnet\n"
                                 "if TYPE_CHECKING:\n"
                                 "    from tfresnet.models.resnet import resnet20\n"),
        "tfresnet/models/__init__.py": "",
        "tfresnet/models/registry.py": "from tfresnet.models import mobilenet, resnet\n",
        "tfresnet/models/resnet.py": "",
        "tfresnet/models/mobilenet.py": "",
        "tfresnet/models/alexnet.py": "",
        "export/__init__.py": "",
        "export/job.py": "from tfresnet.models.mobilenet import alpha_text\n",
        "experiments/__init__.py": "",
        "experiments/sep.py": "def f():\n    from tfresnet.models import resnet\n",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert family_violations(tmp_path) == ["experiments.sep imports tfresnet.models.resnet",
                                           "export.job imports tfresnet.models.mobilenet",
                                           "tfresnet imports tfresnet.models.alexnet"]


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

"""The house's rules for names, read from the source with ``ast`` (ARCHITECTURE.md):

* a package's ``__init__`` is its only front door, and it imports on first use (so that
  ``import tfresnet`` and ``python -m PACKAGE.TOOL --help`` load no TensorFlow);
* inside the package (``tfresnet``, ``export``) a name is imported from the module that
  defines it, never through a front door;
* a door declares each public name once, as a ``TYPE_CHECKING`` import that
  ``tfresnet.utils.lazy.front_door`` reads (no second table); ``tfresnet``'s builders
  come from the registry, so a new family module is the only edit a new family needs.

Unused imports are ruff's (``test_linters.py``); the doors' ``TYPE_CHECKING`` imports
carry ``# noqa: F401``.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest
from test_imports import ROOT, module_files

LIBRARY = ("tfresnet", "export")
# Entry modules that keep a documented dotted name working (``tfresnet.train.fit``,
# ``export.tflite.main``): front doors like the packages' ``__init__``.
ENTRY_DOORS = {"tfresnet.train", "export.tflite"}


def is_front_door(name: str, path: pathlib.Path) -> bool:
    return path.name == "__init__.py" or name in ENTRY_DOORS


def packages(modules: dict) -> set:
    return {name for name, path in modules.items() if path.name == "__init__.py"}


def imports_through_front_doors(root) -> list:
    """``"module: from PKG import NAME"`` where PKG is a package and NAME is not one of
    its modules, in library modules other than the front doors themselves."""
    modules = module_files(root)
    pkgs = packages(modules)
    found = []
    for name, path in modules.items():
        if name.split(".")[0] not in LIBRARY or is_front_door(name, path):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module in pkgs and not node.level:
                for alias in node.names:
                    if f"{node.module}.{alias.name}" not in modules and alias.name != "__version__":
                        found.append(f"{name}: from {node.module} import {alias.name}")
    return sorted(found)


def test_library_imports_each_name_from_its_home():
    assert imports_through_front_doors(ROOT) == []


def test_the_name_checks_find_planted_violations(tmp_path):
    files = {
        "tfresnet/__init__.py": "",
        "tfresnet/data/__init__.py": "from tfresnet.data.sources import load\n",
        "tfresnet/data/sources.py": "def load():\n    pass\n",
        "tfresnet/training/__init__.py": "",
        "tfresnet/training/fitting.py": ("from tfresnet.data import load\n"
                                         "from tfresnet.data import sources\n"
                                         "sources.load()\nload()\n"),
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert imports_through_front_doors(tmp_path) == [
        "tfresnet.training.fitting: from tfresnet.data import load"]


def test_import_tfresnet_loads_no_tensorflow_until_a_model_is_asked_for():
    code = ("import sys, tfresnet, tfresnet.data, tfresnet.training, tfresnet.models, "
            "tfresnet.train, export, export.job, export.convert, export.compare, "
            "export.metadata, export.tflite\n"
            "print('tensorflow' in sys.modules)\n"
            "from tfresnet import mobilenet_v1\n"
            "print('tensorflow' in sys.modules, callable(mobilenet_v1), "
            "sorted(set(tfresnet.__all__) - set(dir(tfresnet))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["False", "True True []"]


LAZY_DOORS = ("tfresnet", "tfresnet.data", "tfresnet.train", "export.convert", "export.metadata",
              "export.job", "export.compare", "export.tflite")


def homes_tables(root) -> list:
    """Library modules that still keep a ``_HOMES`` table: a door's public names are its
    ``TYPE_CHECKING`` imports alone, read by ``front_door``."""
    return sorted(name for name, path in module_files(root).items()
                  if name.split(".")[0] in LIBRARY and any(
                      isinstance(node, ast.Assign) and any(
                          isinstance(t, ast.Name) and t.id == "_HOMES" for t in node.targets)
                      for node in ast.parse(path.read_text(), str(path)).body))


def test_each_public_name_is_declared_once_and_imports(tmp_path):
    """No door keeps a second table of its names; every declared name of every lazy door
    imports from its home, and ``__all__`` lists them."""
    from tfresnet.utils.lazy import declared

    assert homes_tables(ROOT) == []
    (tmp_path / "tfresnet").mkdir()
    (tmp_path / "tfresnet" / "__init__.py").write_text("_HOMES = {'load': 'x'}\n")
    assert homes_tables(tmp_path) == ["tfresnet"]
    for door in LAZY_DOORS:
        module = importlib.import_module(door)
        names = declared(module.__file__)
        assert names, door
        assert set(names) <= set(module.__all__), door
        for name in names:
            assert getattr(module, name) is getattr(importlib.import_module(names[name]), name)


FAMILY = """
from tfresnet.models import _builder
from tfresnet.models.registry import register
import keras


@register("tinynet", family="tinynet", paper="a test family", input_shape=(16, 16, 3),
          min_side=8, small_side=8, recipe="resnet_cifar")
def tinynet(*, input_shape=None, classes=10, include_top=True, pooling=None, weights=None,
            name=None):
    shape = _builder.validate(input_shape=input_shape, default_shape=(16, 16, 3), min_side=8,
                              classes=classes, include_top=include_top, pooling=pooling,
                              weights=weights, name=name)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = _builder.head(x, classes=classes, include_top=include_top, pooling=pooling)
    return _builder.finish(inputs, x, name=name or "tinynet", weights=weights,
                           load_weights=None)
"""


def test_a_new_family_module_is_the_only_edit_a_new_family_needs(tmp_path):
    """A module dropped into the families' package is registered, built by name, reached
    at the front door (and in its ``__all__``) and checked as a variant, with no other
    file touched."""
    (tmp_path / "tinynet.py").write_text(FAMILY)
    code = ("import tfresnet.models.families as families\n"
            f"families.__path__.append({str(tmp_path)!r})\n"
            "import tfresnet\n"
            "from tfresnet import tinynet\n"
            "from tfresnet.models.variant import ModelVariant\n"
            "model = tfresnet.get_model('tinynet', classes=3)\n"
            "print(tfresnet.list_models('tinynet'), tinynet is tfresnet.model_info('tinynet')"
            ".builder, 'tinynet' in tfresnet.__all__, 'tinynet' in dir(tfresnet), "
            "model.output_shape, ModelVariant('tinynet', None, 8).check().stem)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['tinynet'] True True True (None, 3) tinynet_8"


def test_each_declared_name_is_its_homes_and_every_builder_is_at_the_door():
    import tfresnet
    import tfresnet.data
    import tfresnet.train
    from tfresnet.models.registry import list_models, model_info
    from tfresnet.utils.lazy import declared
    for door in (tfresnet, tfresnet.data, tfresnet.train):
        homes = declared(door.__file__)
        assert homes and set(homes) <= set(door.__all__), door.__name__
        for name, home in homes.items():
            assert getattr(door, name) is getattr(importlib.import_module(home), name), name
    assert {name: getattr(tfresnet, name) for name in list_models()} == {
        name: model_info(name).builder for name in list_models()}
    assert set(list_models()) <= set(tfresnet.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'resnet21'"):
        tfresnet.resnet21

"""Front doors that import on first use (PEP 562), so that ``import tfresnet`` and
``python -m PACKAGE.TOOL --help`` do not import TensorFlow before they need it.

A door declares each public name once, as an import under ``if TYPE_CHECKING:`` (what
type checkers and IDEs read); :func:`front_door` reads the same lines from the door's
source and imports a name's module when the name is first asked for.
"""

from __future__ import annotations

import ast
import importlib
import sys


def declared(path) -> dict[str, str]:
    """``name -> home module`` of the ``from HOME import NAME`` lines under the module's
    top-level ``if TYPE_CHECKING:``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), str(path))
    return {alias.asname or alias.name: imp.module
            for node in tree.body
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for imp in node.body if isinstance(imp, ast.ImportFrom)
            for alias in imp.names}


def front_door(package: str, registered=None):
    """``(__getattr__, __dir__)`` for ``package``, whose public names are its
    :func:`declared` ones (name -> the module that defines it, read from its own
    source); each is imported when first asked for.

    ``registered``: a function returning ``{name: value}`` for public names known only
    at run time (``tfresnet``'s: the registry's builders), asked for a public name
    ``homes`` lacks, for ``__all__`` and by ``dir()``.
    """
    homes = declared(sys.modules[package].__file__)

    def __getattr__(name):
        home = homes.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home), name)
        elif name == "__all__":
            value = sorted(set(homes) | set(registered() if registered else ()))
        elif registered is not None and not name.startswith("_") and name in registered():
            value = registered()[name]
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(homes)
                      | set(registered() if registered else ()))

    return __getattr__, __dir__

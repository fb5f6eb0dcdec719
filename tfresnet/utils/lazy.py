"""Front doors that import on first use (PEP 562), so that ``import tfresnet`` and
``python -m PACKAGE.TOOL --help`` do not import TensorFlow before they need it."""

from __future__ import annotations

import importlib
import sys


def front_door(package: str, homes: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``, whose public names live in ``homes``
    (name -> the module that defines it); each is imported when first asked for."""

    def __getattr__(name):
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__

"""Deeper twins: registry models with the same layer types and block code as a lighter
model of their family, only repeated more often.

A sweep over every registry model runs a twin only under ``pytest -m slow``: it adds
minutes of graph building and conversion on 2 shared cores and no code path the
lighter model's case does not take. ``tests/models/test_models.py`` checks that each twin's
layer types are its lighter model's.
"""

import pytest

import tfresnet

DEEPER_TWIN_OF = {
    **{f"resnet{d}": "resnet20" for d in (32, 44, 56, 110)},
    **{f"plain{d}": "plain20" for d in (32, 44, 56, 110)},
    "resnet34": "resnet18", "resnet101": "resnet50", "resnet152": "resnet50",
}


def fast_unless_in(table: dict, names=None) -> list:
    """``names`` (default: every registry model) as parameters, those in ``table``
    marked slow."""
    names = tfresnet.list_models() if names is None else names
    return [pytest.param(n, marks=pytest.mark.slow) if n in table else n for n in names]

"""The published figures the model tests compare with, read from the package's table.

Each figure is written once, with its source, in :mod:`tfresnet.models.published`
(copied from shared/REFERENCE.md, the world; ``tests/models/test_published.py`` checks
every one against that file's text). This module only selects which configurations
the tests build and keeps what the package does not publish: the keras.applications
totals (their convs carry a bias) and the tolerance.
"""

from __future__ import annotations

import dataclasses

from tfresnet.models import published
from tfresnet.models.registry import model_info

# The tolerance REFERENCE.md and the issue give for MACs.
MACS_TOLERANCE = published.TOLERANCE

# Rows of published.PARAMS that are another network's figure, so no exact count to test.
NOT_EXACT = {"alexnet_bn": "its row is AlexNet 2012's figure with a note on the difference"}


@dataclasses.dataclass(frozen=True)
class Figures:
    """Published figures of one registry model built with ``kwargs``.

    ``trainable``/``non_trainable`` are Keras parameter counts (None: not published),
    ``macs`` the multiply-adds at the configured input size (None: not published).
    """

    model: str
    kwargs: dict
    trainable: int | None = None
    non_trainable: int | None = None
    source: str = ""
    macs: float | None = None
    macs_source: str = ""

    @property
    def id(self) -> str:
        return "-".join([self.model] + [f"{k}{v}" for k, v in self.kwargs.items()])


def _figures(model, kwargs) -> Figures:
    shown = published.lookup(model, alpha=kwargs.get("alpha"), side=kwargs.get("res"))
    return Figures(model, kwargs, shown.trainable, shown.non_trainable, shown.params_source,
                   shown.macs, shown.macs_source)


_MOBILENET = model_info("mobilenet_v1").multipliers
FIGURES = tuple(
    figure for model, alpha, _ in published.PARAMS if model not in NOT_EXACT
    for figure in ([_figures(model, {"alpha": alpha, "res": res})
                    for res in _MOBILENET.resolutions] if alpha is not None
                   else [_figures(model, {})]))

# MobileNet v1: {alpha: (trainable, non-trainable)} and {alpha: {res: million MACs}}.
MOBILENET_PARAMS = {a: published.PARAMS[("mobilenet_v1", a, None)][:2]
                    for a in _MOBILENET.alphas}
MOBILENET_MMACS = {a: {r: published.MACS[("mobilenet_v1", a, r)][0] / 1e6
                       for r in _MOBILENET.resolutions} for a in _MOBILENET.alphas}

# MobileNet paper Tables 4 and 5: (registry model, alpha) -> (million mult-adds at 224,
# million parameters as printed, top-1 %).
MOBILENET_ABLATIONS = {
    (model, alpha): (published.MACS[(model, alpha, 224)][0] / 1e6,
                     published.PRINTED_PARAMS[(model, alpha, None)][0] / 1e6,
                     published.TOP1[(model, alpha, 224)][0])
    for model, alpha, _ in published.PRINTED_PARAMS}

# keras.applications totals (their ResNet convs carry a bias), REFERENCE.md; the package
# does not publish them (its figures are for its own networks).
KERAS_APPLICATIONS_TOTALS = {
    ("ResNet50", 1.0): 25_636_712,
    ("ResNet101", 1.0): 44_707_176,
    ("ResNet152", 1.0): 60_419_944,
    ("MobileNet", 1.0): 4_253_864,
    ("MobileNet", 0.75): 2_601_976,
    ("MobileNet", 0.5): 1_342_536,
    ("MobileNet", 0.25): 475_544,
}

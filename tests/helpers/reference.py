"""Published figures the tests compare the models with, copied from shared/REFERENCE.md.

Each figure names its source. Tests check the package against these numbers (the
world), never against numbers the package computes itself. Other test modules may
import them.
"""

from __future__ import annotations

import dataclasses


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


_CIFAR = "REFERENCE.md, CIFAR ResNet option A, 10 classes (ResNet paper Table 6: {})"
_TABLE1 = "ResNet paper Table 1"

# MobileNet v1 parameter counts (REFERENCE.md; channels int(c * alpha); equal to
# keras.applications MobileNet). "The resolution multiplier changes MACs, never parameters."
MOBILENET_PARAMS = {1.0: (4_231_976, 21_888), 0.75: (2_585_560, 16_416),
                    0.5: (1_331_592, 10_944), 0.25: (470_072, 5_472)}

# MobileNet v1 million mult-adds (REFERENCE.md): the 224 column and the 1.0 row are the
# paper's Tables 6 and 7, the other cells the same count on keras.applications MobileNet.
MOBILENET_MMACS = {
    1.0: {224: 569, 192: 418, 160: 290, 128: 186},
    0.75: {224: 325, 192: 239, 160: 166, 128: 107},
    0.5: {224: 149, 192: 110, 160: 76, 128: 49},
    0.25: {224: 41, 192: 30, 160: 21, 128: 14},
}


def _mobilenet(alpha, res):
    trainable, non_trainable = MOBILENET_PARAMS[alpha]
    macs_source = ("MobileNet paper Tables 6/7" if res == 224 or alpha == 1.0 else
                   "REFERENCE.md: the same count on keras.applications MobileNet")
    return Figures("mobilenet_v1", {"alpha": alpha, "res": res}, trainable, non_trainable,
                   "REFERENCE.md MobileNet v1 (keras.applications MobileNet)",
                   MOBILENET_MMACS[alpha][res] * 1e6, macs_source)


FIGURES = (
    Figures("resnet20", {}, 269_722, 1_376, _CIFAR.format("0.27M")),
    Figures("resnet32", {}, 464_154, 2_272, _CIFAR.format("0.46M")),
    Figures("resnet44", {}, 658_586, 3_168, _CIFAR.format("0.66M")),
    Figures("resnet56", {}, 853_018, 4_064, _CIFAR.format("0.85M")),
    Figures("resnet110", {}, 1_727_962, 8_096, _CIFAR.format("1.7M")),
    Figures("resnet20b", {}, 272_474, 1_568, "REFERENCE.md, CIFAR ResNet-20 option B"),
    Figures("resnet20c", {}, 283_962, 2_048, "REFERENCE.md, CIFAR ResNet-20 option C"),
    Figures("resnet18", {}, 11_689_512, 9_600, "torchvision resnet18", 1.8e9, _TABLE1),
    Figures("resnet34", {}, 21_797_672, 17_024, "torchvision resnet34", 3.6e9, _TABLE1),
    Figures("resnet50", {}, 25_557_032, 53_120, "torchvision resnet50", 3.8e9, _TABLE1),
    Figures("resnet101", {}, 44_549_160, 105_344, "REFERENCE.md ResNet-101", 7.6e9, _TABLE1),
    Figures("resnet152", {}, 60_192_808, 151_424, "REFERENCE.md ResNet-152", 11.3e9, _TABLE1),
    *(_mobilenet(alpha, res) for alpha in MOBILENET_MMACS for res in (224, 192, 160, 128)),
    Figures("alexnet", {}, 60_965_224, 0, "AlexNet 2012, groups=2 (paper: 60M)",
            720e6, "MobileNet paper Table 9"),
    Figures("alexnet_owt", {}, 61_100_840, 0, "torchvision alexnet"),
)

# keras.applications totals (their ResNet convs carry a bias), REFERENCE.md.
KERAS_APPLICATIONS_TOTALS = {
    ("ResNet50", 1.0): 25_636_712,
    ("ResNet101", 1.0): 44_707_176,
    ("ResNet152", 1.0): 60_419_944,
    ("MobileNet", 1.0): 4_253_864,
    ("MobileNet", 0.75): 2_601_976,
    ("MobileNet", 0.5): 1_342_536,
    ("MobileNet", 0.25): 475_544,
}

# MobileNet paper Tables 4 and 5 (REFERENCE.md): (registry model, alpha) -> (million
# mult-adds at 224, million parameters as printed, top-1 %). Printed rounded: MACs to
# whole millions, parameters to 0.1M.
MOBILENET_ABLATIONS = {
    ("mobilenet_v1_conv", 1.0): (4866, 29.3, 71.7),   # Table 4, Conv MobileNet
    ("mobilenet_v1", 1.0): (569, 4.2, 70.6),          # Table 4, MobileNet
    ("mobilenet_v1", 0.75): (325, 2.6, 68.4),         # Table 5, 0.75 MobileNet
    ("mobilenet_v1_shallow", 1.0): (307, 2.9, 65.3),  # Table 5, Shallow MobileNet
}

# The tolerance REFERENCE.md and the issue give for MACs.
MACS_TOLERANCE = 0.01

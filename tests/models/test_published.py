"""The package's published figures (tfresnet.models.published) are shared/REFERENCE.md's.

Each figure is written once, in the package, with its source; this test reads
REFERENCE.md's text (``TFRESNET_REFERENCE`` or /work/shared/REFERENCE.md; skipped when
it is not readable) and finds every figure there, printed as the file prints it.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from tfresnet.models import published

REFERENCE = pathlib.Path(os.environ.get("TFRESNET_REFERENCE", "/work/shared/REFERENCE.md"))


@pytest.fixture(scope="module")
def text():
    try:
        return REFERENCE.read_text()
    except OSError:
        pytest.skip(f"{REFERENCE} is not readable")


def forms(value, suffix="") -> set:
    """The ways REFERENCE.md may print ``value``: 269,722; 8.75; 70.0; 1.8e9; 720M."""
    shown = {f"{value:,}", f"{value:g}", f"{value:.1f}", f"{value:.2f}"}
    if isinstance(value, float) and value >= 1e8:
        shown |= {f"{value / 1e9:g}e9"}
    if isinstance(value, float) and value >= 1e5:
        shown |= {f"{value / 1e6:g}M"}
    return {f"{s}{suffix}" for s in shown}


def figures() -> list:
    """``(id, value, suffix)`` of every figure the package publishes."""
    rows = []
    for key, (trainable, non_trainable, _) in published.PARAMS.items():
        rows += [(f"params {key}", trainable, ""), (f"non-trainable {key}", non_trainable, "")]
    for key, (macs, unit, _) in published.MACS.items():  # the grid: test below
        if key[0] != "mobilenet_v1":  # REFERENCE.md prints millions as 720M
            rows.append((f"macs {key}", macs / 1e6 if unit == 1e6 else macs,
                         "M" if unit == 1e6 else ""))
    rows += [(f"printed params {k}", p, "") for k, (p, _, _) in published.PRINTED_PARAMS.items()]
    for key, (top1, dataset, _) in published.TOP1.items():  # CIFAR: REFERENCE.md's error
        rows.append((f"top-1 {key}", round(100 - top1, 2) if dataset == "CIFAR-10" else top1,
                     "%"))
    for key, results in published.INT8_TOP1.items():
        rows += [(f"int8 {key} {r.method}", v, "%") for r in results
                 for v in (r.float_top1, r.int8_top1)]
    rows += [(f"size {k}", mb, " MB") for k, v in published.SIZES_MB.items() for mb in v[:2]]
    rows += [(f"phone {k} {p.label}", ms, " ms") for k, v in published.PHONE_LATENCY.items()
             for p in v for ms in (p.float_ms, p.int8_ms) if ms is not None]
    return rows


@pytest.mark.parametrize("what,value,suffix", figures(), ids=[f[0] for f in figures()])
def test_every_published_figure_is_in_reference_md(text, what, value, suffix):
    assert any(f in text for f in forms(value, suffix)), \
        f"{what}: none of {sorted(forms(value, suffix))} is in {REFERENCE}"


def test_a_changed_figure_is_not_found(text):
    """The check can fail: ResNet-20's count off by one, MobileNet's 569M as 570M."""
    assert not any(f in text for f in forms(269_723))
    assert not any(f in text for f in forms(570.0, "M"))


def test_the_mobilenet_grid_is_reference_md_s_table(text):
    """The million mult-adds grid, row by row as REFERENCE.md's table prints it."""
    for alpha, row in published.MOBILENET_MMACS.items():
        line = f"| {alpha:g} | " if alpha != 1.0 else "| 1.0 | "
        assert line + " | ".join(map(str, row)) + " |" in text, (alpha, row)
    header = " | ".join(map(str, published.MOBILENET_RESOLUTIONS))
    assert f"| alpha \\ res | {header} |" in text

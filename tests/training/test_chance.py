"""tfresnet.utils.stats: the chance gate (an exact one-sided binomial test against the
majority-class share) and the one margin of "at chance" that training's collapse warning
reads (the experiments' verdicts too: tests/paper_experiments)."""

import types

import numpy as np
import pytest

from tfresnet.training import fitting
from tfresnet.utils import stats


@pytest.mark.parametrize("correct, total, share, passes", [
    (30, 100, 0.2, False),   # p = 0.011: just short of the 1% required
    (31, 100, 0.2, True),    # p = 0.0063
    (0, 0, 0.2, False),      # nothing held out proves nothing
])
def test_above_chance_is_scipys_one_sided_binomial_test(correct, total, share, passes):
    from scipy.stats import binomtest

    ok, p = stats.above_chance(correct, total, share)
    assert ok is passes
    if total:
        assert p == pytest.approx(binomtest(correct, total, share,
                                            alternative="greater").pvalue, rel=1e-9)


def test_majority_share_is_the_largest_class_share():
    assert stats.majority_share([0, 1, 1, 2, 1, 0]) == 0.5
    assert stats.majority_share(np.array([3, 3, 3])) == 1.0
    assert np.isnan(stats.majority_share([]))


def test_a_split_gives_its_validation_labels():
    from tfresnet import data
    split = data.load("digits", image_size=8, seed=0)
    labels = split.val_labels()
    assert len(labels) == split.num_val and set(labels) <= set(range(len(split.labels)))
    _, y = data.as_numpy(split.val)
    np.testing.assert_array_equal(np.sort(labels), np.sort(y))
    assert stats.majority_share(labels) == np.bincount(y).max() / len(y)


def _run(accuracy, labels):
    return types.SimpleNamespace(history={"loss": [2.0, 1.9]}, labels=list("01234"),
                                 val_accuracy=accuracy, best_val_accuracy=accuracy,
                                 data=types.SimpleNamespace(val_labels=lambda: labels))


@pytest.mark.parametrize("accuracy, collapsed", [(0.24, True), (0.25, True), (0.26, False)])
def test_collapse_is_near_chance_of_the_majority_share(accuracy, collapsed):
    """Five classes, one holding 20% of the validation images: within CHANCE_MARGIN (5
    points) of 20% is a collapse, above it is not."""
    labels = np.repeat(np.arange(5), 20)
    warnings = fitting.health_warnings(_run(accuracy, labels))
    assert any(w.startswith("collapsed") for w in warnings) is collapsed
    assert stats.near_chance(accuracy, 0.2) is collapsed

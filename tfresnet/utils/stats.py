"""What "chance" and "clearly" mean, once for the package.

The gates judge a count of held-out images with one rule, a one-sided exact binomial
test, so that a small folder is never refused for one image and a large one never
passes a clear loss:

* the chance gate (:func:`above_chance`): is the float model's count of right answers
  above what the majority class would score (:func:`majority_share`)?
* the agreement gate of the export (``export.job.gates.agreement_check``): is the
  INT8 file's count of answers agreeing with its Keras model clearly below
  ``--min-agreement``?
* the comparison of two models on the same images (:func:`paired_p_value`, the exact
  McNemar test): of the images only one of the two got right, does one model win
  clearly more of them?

The tails are scipy.stats.binom's (exact, no normal approximation).

The warnings that a run learned nothing (training's "collapsed", the experiments' "never
learned") ask a plainer question, with one margin: is an accuracy within
:data:`CHANCE_MARGIN` of chance (:func:`near_chance`)?
"""

from __future__ import annotations

import numpy as np

CLEAR_P_VALUE = 0.05  # "statistically clear": a one-sided p-value below this
CHANCE_P_VALUE = 0.01  # what above_chance asks of a model before it is shipped
# An accuracy within this (a fraction: 5 percentage points) of chance's learned nothing.
CHANCE_MARGIN = 0.05


def at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how often ``k`` or more successes happen."""
    from scipy.stats import binom

    if n <= 0 or k <= 0:
        return 1.0
    return float(binom.sf(int(k) - 1, int(n), min(max(float(p), 0.0), 1.0)))


def at_most(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p): how often ``k`` or fewer successes happen."""
    from scipy.stats import binom

    if n <= 0 or k >= n:
        return 1.0
    return float(binom.cdf(int(k), int(n), min(max(float(p), 0.0), 1.0)))


def paired_p_value(a_only: int, b_only: int) -> float:
    """The one-sided exact McNemar test that model B is better than model A.

    ``a_only``: images only A answered right; ``b_only``: images only B answered
    right (the discordant pairs; images both or neither got right say nothing). If
    the two were equally good, each discordant image would be B's with probability
    1/2: the p-value is P(X >= b_only) for X ~ Binomial(a_only + b_only, 1/2).
    """
    return at_least(b_only, a_only + b_only, 0.5)


def majority_share(labels) -> float:
    """Share of ``labels`` (integer class labels) in the largest class: what a model that
    always answers one class scores; NaN for no labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel())
    return float(counts.max() / counts.sum()) if counts.sum() else float("nan")


def chance_p_value(correct, total, share) -> float:
    """P(at least ``correct`` right of ``total``) for a model no better than chance,
    i.e. right with probability ``share`` (the majority-class share: what answering the
    largest class scores; random guessing scores less): the one-sided exact binomial
    test of "accuracy <= share" (:func:`at_least`)."""
    return at_least(correct, total, share)


def above_chance(correct, total, share, p_value=CHANCE_P_VALUE) -> tuple[bool, float]:
    """(True when ``correct`` of ``total`` is more than chance ``share`` would reach
    but ``p_value`` of the time, the p-value): see :func:`chance_p_value`."""
    p = chance_p_value(correct, total, share)
    return p < p_value, p


def near_chance(accuracy: float, chance: float, margins: float = 1) -> bool:
    """Whether ``accuracy`` stays within ``margins`` times :data:`CHANCE_MARGIN` of
    ``chance`` (the majority-class share, or 1/classes on balanced data): the one rule
    for a run that learned nothing.

    A practical margin, not the gate's significance test (:func:`above_chance`): a
    warning asks whether a run learned enough to count, the gate whether a model beats
    chance at all.
    """
    return accuracy <= chance + margins * CHANCE_MARGIN

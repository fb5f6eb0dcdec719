"""The one statistical rule of the package's gates: a one-sided exact binomial test.

Every gate that judges a count of held-out images uses it, so that a small folder is
never refused for one image and a large one never passes a clear loss:

* the chance gate (``tfresnet.training.fitting.above_chance``): is the float model's
  count of right answers above what the majority class would score?
* the agreement gate of the export (``export.job.gates.agreement_check``): is the
  INT8 file's count of answers agreeing with its Keras model clearly below
  ``--min-agreement``?
* the comparison of two models on the same images (:func:`paired_p_value`, the exact
  McNemar test): of the images only one of the two got right, does one model win
  clearly more of them?

The tails are scipy.stats.binom's (exact, no normal approximation).
"""

from __future__ import annotations

CLEAR_P_VALUE = 0.05  # "statistically clear": a one-sided p-value below this


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

"""The papers' experiments, small enough to run on a CPU: a client of ``tfresnet``.

``python -m experiments NAME`` runs one experiment and writes into ``--out``
(default ``reports/experiments/NAME/``) a figure (PNG), the raw numbers (CSV) and a
short Markdown summary that states what was observed against what the paper claims,
and says so when the budget was too small to show the effect, when a run failed, or
that nothing is concluded at ``--quick``.

One module per experiment (its paper, defaults, flags, run and summary), the shared
machinery in :mod:`experiments.common`, the command line in :mod:`experiments.command`:

* ``degradation`` (ResNet paper Fig. 1 and 6): plain vs ResNet, 20 vs 56 layers.
* ``batchnorm`` (BatchNorm paper Fig. 2): with and without BN, BN at a higher LR.
* ``multipliers`` (MobileNet paper Tables 6 and 7): alpha x resolution, accuracy
  against multiply-adds with latency beside (through ``export.compare``).

This package sits beside ``benchmarks/`` above both ``tfresnet`` and ``export``:
it may import them; nothing in ``tfresnet`` imports it.
"""

EXPERIMENTS = ("degradation", "batchnorm", "multipliers", "shortcuts", "gradients",
               "responses", "separable")

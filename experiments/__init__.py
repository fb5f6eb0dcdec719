"""The papers' experiments, small enough to run on a CPU: a client of ``tfresnet``.

``python -m experiments NAME`` runs one experiment and writes into ``--out``
(default ``reports/experiments/NAME/``) a figure (PNG), the raw numbers (CSV) and a
short Markdown summary that states what was observed against what the paper claims,
and says so when the budget was too small to show the effect, when a run failed, or
that nothing is concluded at ``--quick``.

One module per experiment (its paper, run and summary), the shared machinery in
:mod:`experiments.common`, every experiment's defaults in :mod:`experiments.defaults` and its
flags in :mod:`experiments.command` (no TensorFlow: parsed before it loads), the job that
loads the data and runs one in :mod:`experiments.runner`:

* ``degradation`` (ResNet paper Fig. 1 and 6): plain vs ResNet, 20 vs 56 layers.
* ``batchnorm`` (BatchNorm paper Fig. 1 and 2): with and without BN, BN at 5x and 30x
  the learning rate.
* ``multipliers`` (MobileNet paper Tables 6 and 7): alpha x resolution, accuracy
  against multiply-adds with latency beside (through ``export.compare``).
* ``shortcuts`` (ResNet paper Table 3): shortcut options A, B, C on one network.
* ``gradients`` (ResNet paper Sec. 4.1): per-layer gradient norms of plain nets without
  and with BN and of ResNets, at initialization and after a short training.
* ``responses`` (ResNet paper Fig. 7): std of each 3x3 layer's response, plain vs ResNet.
* ``separable`` (MobileNet paper Tables 4 and 5): separable vs full convolutions,
  thinner vs shallower.

``batchnorm`` also runs BN at 30x the learning rate and records the BN paper's Fig. 1
(b, c): percentiles of one inner activation's input over training.

This package sits beside ``benchmarks/`` above both ``tfresnet`` and ``export``:
it may import them; nothing in ``tfresnet`` imports it.
"""

EXPERIMENTS = ("degradation", "batchnorm", "multipliers", "shortcuts", "gradients",
               "responses", "separable")

"""Training: any registry model under ``tf.distribute`` with the papers' recipes.

Each module does one job and imports only those above it in this list (an import-linter
contract in pyproject.toml checks it):

* :mod:`~tfresnet.training.recipes`: the papers' recipes as named presets;
* :mod:`~tfresnet.training.strategy`: the tf.distribute strategy (mirrored, multi-worker);
* :mod:`~tfresnet.training.optim`: trainable copy, schedule, optimizer, compile;
* :mod:`~tfresnet.training.precise_bn`: BatchNorm's moving statistics recomputed (PreciseBN);
* :mod:`~tfresnet.training.runschema`: the run folder's file names, config.json and
  history.csv checked;
* :mod:`~tfresnet.training.checkpoint`: loading run folders and model files safely;
* :mod:`~tfresnet.training.rundir`: the run folder written, resumed, closed;
* :mod:`~tfresnet.training.phases`: the two transfer phases' rules;
* :mod:`~tfresnet.training.config`: ``FitConfig``, every setting's one default;
* :mod:`~tfresnet.training.transfer`: pretrained weights into a new classifier, freezing;
* :mod:`~tfresnet.training.fitting`: one run; :mod:`~tfresnet.training.transfer_fit`:
  the two phases of a transfer run;
* :mod:`~tfresnet.training.api`: ``fit`` (one run or a transfer run) and its summary;
* :mod:`~tfresnet.training.command`: ``python -m tfresnet.train``, its flags (no
  TensorFlow) then ``main``.

Users reach ``fit`` and what it returns at the ``tfresnet.train`` front door; this
``__init__`` only says what the folder holds.
"""

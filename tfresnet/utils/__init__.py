"""What every job shares: command-line parsing and one-line errors (:mod:`~tfresnet.utils.cli`),
TensorFlow's start-up noise hidden (:mod:`~tfresnet.utils.quiet`), tables
(:mod:`~tfresnet.utils.tables`) and figures (:mod:`~tfresnet.utils.plots`)."""

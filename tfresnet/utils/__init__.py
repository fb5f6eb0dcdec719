"""What every job shares (internal, no front door): argparse types and one-line errors
(:mod:`~tfresnet.utils.cli`), the shared flags (:mod:`~tfresnet.utils.flags`), files
written atomically (:mod:`~tfresnet.utils.fileio`), Keras files recognized and their
weights read (:mod:`~tfresnet.utils.kerasfiles`), lazy front doors
(:mod:`~tfresnet.utils.lazy`), TensorFlow's start-up noise hidden
(:mod:`~tfresnet.utils.quiet`), tables (:mod:`~tfresnet.utils.tables`) and figures
(:mod:`~tfresnet.utils.plots`)."""

"""``python -m tfresnet.profile NAME``: a registry model's per-layer parameters and MACs.

The command-line entry only; ``tfresnet.profile(model)`` is the function
:func:`tfresnet.models.profiling.profile`. (Do not import this module: importing it would
put the module where ``tfresnet.profile`` names the function.)
"""

if __name__ == "__main__":
    from tfresnet.utils import cli, quiet

    quiet.import_tensorflow_quietly()
    from tfresnet.models.profiling import main

    cli.run(main, prog="python -m tfresnet.profile")

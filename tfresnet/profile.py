"""``python -m tfresnet.profile NAME``: a registry model's per-layer parameters and MACs.

The command-line entry only; ``tfresnet.profile(model)`` is the function
:func:`tfresnet.models.profiling.profile`. (Do not import this module: importing it would
put the module where ``tfresnet.profile`` names the function.)
"""

if __name__ == "__main__":  # the flags are checked before TensorFlow loads
    from tfresnet.models.profile_command import PROG, parse
    from tfresnet.utils import flags

    flags.run(parse, "tfresnet.models.profile_command:main", prog=PROG)

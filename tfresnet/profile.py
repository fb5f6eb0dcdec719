"""``python -m tfresnet.profile NAME``: a registry model's per-layer parameters and MACs.

The command-line entry only (the command: :mod:`tfresnet.models.profile_command`);
``tfresnet.profile(model)`` is the function :func:`tfresnet.models.profiling.profile`.
(Do not import this module: importing it would put the module where
``tfresnet.profile`` names the function.)
"""

if __name__ == "__main__":  # main checks the flags before TensorFlow loads
    from tfresnet.models.profile_command import PROG, main
    from tfresnet.utils import cli

    cli.run(main, prog=PROG)

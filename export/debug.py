"""``python -m export.debug``: where INT8 loses accuracy, layer by layer.

The command-line entry only; the debugger is :mod:`export.convert.debug`.
"""

if __name__ == "__main__":  # the flags are checked before TensorFlow loads
    from export.convert.debug import PROG, parse
    from tfresnet.utils import flags

    flags.run(parse, "export.convert.debug:main", prog=PROG)

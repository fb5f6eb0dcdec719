"""``python -m export.debug``: where INT8 loses accuracy, layer by layer.

The command-line entry only; the debugger is :mod:`export.convert.debug`.
"""

if __name__ == "__main__":
    from tfresnet.utils import cli, quiet

    quiet.import_tensorflow_quietly()
    from export.convert.debug import PROG, main

    cli.run(main, prog=PROG)

"""``python -m experiments NAME [flags]`` (see :mod:`experiments.command`)."""

from tfresnet.utils import cli, quiet

if __name__ == "__main__":
    quiet.import_tensorflow_quietly()
    from experiments.command import PROG, main

    cli.run(main, prog=PROG)

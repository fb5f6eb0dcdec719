"""``python -m experiments NAME [flags]`` (the command: :mod:`experiments.command`, whose
``main`` checks the flags before TensorFlow loads)."""

if __name__ == "__main__":
    from experiments.command import PROG, main
    from tfresnet.utils import cli

    cli.run(main, prog=PROG)

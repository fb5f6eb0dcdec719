"""``python -m experiments NAME [flags]`` (see :mod:`experiments.command`; the flags are
checked before TensorFlow loads: :mod:`experiments.flags`)."""

if __name__ == "__main__":
    from experiments.flags import PROG, parse
    from tfresnet.utils import flags

    flags.run(parse, "experiments.command:main", prog=PROG)

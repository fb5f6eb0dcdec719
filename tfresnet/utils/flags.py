"""The flags the command lines share, each defined once with its bounds; no TensorFlow.

Every CLI (``tfresnet.train``, ``tfresnet.profile``, ``export.tflite``, ``export.compare``,
``export.debug``, ``experiments``, the benchmarks) adds its model, data, seed, strategy,
output and length flags with these functions, so one flag has one name, one type, one
bound and one meaning everywhere. Nothing here imports TensorFlow: a CLI builds its
parser and checks its flags first (``--help`` and a bad flag answer at once), then its
``main`` imports TensorFlow quietly and runs the job. Choices that only the registry
knows (model names) are checked by the job, after that import, with the same one-line
error.
"""

from __future__ import annotations

from tfresnet.utils import cli

# ---------------------------------------------------------------------------- bounds
# Far above any real run, so that a typo is refused instead of run.
MAX_EPOCHS = 100_000        # --epochs, --patience, --qat-epochs, --freeze-epochs
MAX_STEPS = 10_000_000      # --steps-per-epoch, --steps
MAX_LR = 100.0              # every learning rate
MAX_THREADS = 1024          # interpreter threads
MAX_RUNS = 1_000_000        # timed runs of one measurement
MAX_ROUNDS = 1000           # timing passes
MAX_IMAGES = 100_000        # images to calibrate or compare on (export.debug)
MAX_WORKER_TIMEOUT = 86_400  # seconds

# ---------------------------------------------------------------------------- choices
# The tf.distribute strategies (tfresnet.training.strategy builds them).
STRATEGIES = ("mirrored", "multiworker", "one", "default")
DEFAULT_STRATEGY = "mirrored"  # FitConfig's, make_strategy's and every --strategy's default
DEFAULT_WORKER_TIMEOUT = 600  # seconds to wait for the other workers (--worker-timeout)
# At most this many training images a PreciseBN recomputation uses (tfresnet.training.precise_bn;
# pycls uses 8192 on ImageNet).
PRECISE_BN_IMAGES = 512
# Training steps run per call of the compiled train function (FitConfig.steps_per_execution,
# --steps-per-execution): Keras' per-step Python work then runs once for this many steps.
STEPS_PER_EXECUTION = 8
MAX_STEPS_PER_EXECUTION = 100_000


def divides_epoch(steps_per_epoch, steps_per_execution) -> bool:
    """Whether calls of ``steps_per_execution`` steps fit ``steps_per_epoch`` exactly (either
    None: yes). Keras 3.15 runs whole calls: 3 a call into 5 steps would train 6."""
    return not (steps_per_epoch and steps_per_execution) or steps_per_epoch % steps_per_execution == 0
# The training augmentations (tfresnet.data.pipelines applies them).
AUGMENTATIONS = ("cifar", "imagenet", "mobilenet", "none")
DEFAULT_DATASET = "digits"
# The share of each class held out for validation (tfresnet.data.load, FitConfig, --val-fraction).
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SEED = 0

# MobileNet's input side is a multiple of this (tfresnet.models.families.mobilenet's rule: its five
# stride-2 layers halve the side exactly); the --res helps read it from here.
MOBILENET_RES_MULTIPLE = 32
MOBILENET_RES_RULE = f"a multiple of {MOBILENET_RES_MULTIPLE}, at least {MOBILENET_RES_MULTIPLE}"

DATASET_HELP = ("'digits' (bundled), 'tfds:<name>[/config][:version]' (prepared "
                "offline) or an image folder (one sub-folder a class)")
MODEL_HELP = "registry model name (tfresnet.list_models())"


# ---------------------------------------------------------------------------- groups
def add_model(p, *, default=None, help=None, **kwargs):
    """``--model NAME``: a registry name (checked by the job, after TensorFlow loads)."""
    p.add_argument("--model", type=cli.non_empty, default=default,
                   help=help or MODEL_HELP, **kwargs)


def add_variant(p, *, nargs=None, alpha_default=None, res_default=None, alpha_help=None,
                res_help=None):
    """``--alpha A`` and ``--res R``: MobileNet's width and resolution multipliers (their
    rules: :class:`tfresnet.models.variant.ModelVariant`, after TensorFlow loads)."""
    add_alpha(p, nargs=nargs, default=alpha_default, help=alpha_help)
    many = {"nargs": nargs} if nargs else {}
    p.add_argument("--res", type=cli.int_range(), metavar="R", default=res_default,
                   help=res_help or f"MobileNet input side, {MOBILENET_RES_RULE} (e.g. 160)",
                   **many)


def add_alpha(p, *, nargs=None, default=None, help=None):
    """``--alpha A``: MobileNet's width multiplier."""
    many = {"nargs": nargs} if nargs else {}
    p.add_argument("--alpha", type=cli.float_range(), metavar="A", default=default,
                   help=help or "MobileNet width multiplier > 0 (e.g. 0.75)", **many)


def add_dataset(p, *, default=DEFAULT_DATASET, help=None, dirs=True):
    """``--dataset SPEC`` and (``dirs``) ``--data-dir``, ``--manual-dir``."""
    p.add_argument("--dataset", type=cli.non_empty, default=default,
                   help=help or DATASET_HELP)
    if dirs:
        add_data_dirs(p)


def add_data_dirs(p):
    """``--data-dir``, ``--manual-dir``: where tensorflow-datasets reads, offline."""
    p.add_argument("--data-dir", type=cli.non_empty,
                   help="tensorflow-datasets folder with prepared data")
    p.add_argument("--manual-dir", type=cli.non_empty,
                   help="folder with a tfds data set's original archives")


def add_skip_bad_images(p, *, where="the run's config"):
    p.add_argument("--skip-bad-images", action="store_true",
                   help=f"image folders: leave out the files TensorFlow cannot decode "
                   f"(truncated, corrupt), each named in a warning and listed in {where}, "
                   f"instead of stopping with an error that names the first")


def add_seed(p, *, default=DEFAULT_SEED, help=None):
    """``--seed N``: an integer from 0 to 2**32 - 1."""
    p.add_argument("--seed", type=cli.seed, default=default,
                   help=help or "seed of everything random (weights, data split, "
                   "shuffling, augmentation, calibration sample)")


def add_strategy(p, *, default=DEFAULT_STRATEGY, help=None):
    """``--strategy NAME``, one of :data:`STRATEGIES`."""
    p.add_argument("--strategy", choices=STRATEGIES, default=default,
                   help=help or "tf.distribute strategy: mirrored (all local GPUs, else "
                   "the CPU), multiworker (cluster from TF_CONFIG), one (one device), "
                   "default (no distribution)")


def add_out(p, *, default=None, help="output folder"):
    p.add_argument("--out", type=cli.non_empty, default=default, help=help)


def add_epochs(p, *, low=1, default=None, help="training epochs", high=MAX_EPOCHS):
    p.add_argument("--epochs", type=cli.int_range(low, high), default=default, help=help)


def add_steps_per_epoch(p, *, help="training steps per epoch, the data repeating "
                        "(default: one pass over the training split)"):
    p.add_argument("--steps-per-epoch", type=cli.positive_int(MAX_STEPS), help=help)


def add_batch_size(p, *, default=None, help="images per replica per step"):
    p.add_argument("--batch-size", type=cli.positive_int(), default=default, help=help)


def add_lr(p, name="--lr", *, help="learning rate at the global batch"):
    p.add_argument(name, type=cli.float_range(0, MAX_LR, low_open=True), help=help)


def add_image_size(p, *, default=None, help="input side (default: the model's)"):
    p.add_argument("--image-size", type=cli.positive_int(), default=default, help=help)


def add_augment(p, *, default=None, help="training augmentation (default: the model "
                "family's)"):
    p.add_argument("--augment", choices=AUGMENTATIONS, default=default, help=help)


def add_calibration(p, *, default, help="training images that calibrate the INT8 "
                    "conversions"):
    """``--calibration N``: a count of images (``export.tflite``'s ``--calibration-images``
    is a folder)."""
    p.add_argument("--calibration", type=cli.positive_int(MAX_IMAGES), default=default,
                   metavar="N", help=help)


def add_threads(p, *, default=1, nargs=None, help="interpreter threads for the latency "
                "figures"):
    many = {"nargs": nargs, "metavar": "N"} if nargs else {}
    p.add_argument("--threads", type=cli.positive_int(MAX_THREADS), default=default,
                   help=help, **many)


def add_timing(p, *, runs, rounds, runs_help="timed runs per measurement",
               rounds_help="timing rounds; each latency is the best round's median"):
    """``--runs N`` and ``--rounds N``."""
    p.add_argument("--runs", type=cli.positive_int(MAX_RUNS), default=runs, help=runs_help)
    p.add_argument("--rounds", type=cli.positive_int(MAX_ROUNDS), default=rounds,
                   help=rounds_help)


def add_json(p):
    p.add_argument("--json", type=cli.non_empty, metavar="PATH",
                   help="also write the figures to this JSON file")

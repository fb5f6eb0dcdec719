"""Training throughput: tfresnet's tf.data pipeline vs plain ``model.fit`` on arrays.

Not a test. In one process, trains the same model (same weight decay, optimizer and
global batch) four ways and prints training images/s, the first epoch (tracing and
compiling) left out:

* ``tfresnet.train.fit``: the package's pipeline (cache, shuffle, augmentation,
  batch, normalize, prefetch) under the default strategy (MirroredStrategy);
* plain ``model.fit(x, y)`` on normalized float32 NumPy arrays in memory, no
  strategy, no augmentation, the same steps per call of the train function;
* each with and without ``jit_compile`` (XLA).

Usage::

    python benchmarks/bench_train.py [--model resnet20] [--image-size 32] [--epochs 4]
"""

from __future__ import annotations

import os
import sys
import time

from tfresnet.utils import cli, flags, quiet

PROG = "python benchmarks/bench_train.py"
# The model variant's settings (its errors' words) as this script's flags.
FLAGS = {"model": "--model", "res": "--image-size", "batch_size": "--batch-size"}


def plain_fit(split, info, *, image_size, global_batch, epochs, jit_compile, seed,
              steps_per_execution):
    """images/s of plain model.fit on in-memory arrays (same model, batch, recipe and
    steps per call of the train function)."""
    import keras

    from tfresnet import data
    from tfresnet.models import registry
    from tfresnet.training import optim, recipes, rundir

    keras.utils.set_random_seed(seed)
    images, labels = data.as_numpy(split.train)
    x = data.normalize(images)
    recipe = recipes.get_recipe(info.recipe)
    base = registry.get_model(info.name, input_shape=(*image_size, 3),
                              classes=len(split.labels))
    net = optim.prepare_model(base, weight_decay=recipe.weight_decay,
                              depthwise_weight_decay=recipe.depthwise_weight_decay)
    optim.compile_model(net, optim.make_optimizer(recipe, recipe.scaled_lr(global_batch)),
                        jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    timer = rundir.EpochRecorder(None, chief=True, images_per_epoch=len(x))
    net.fit(x, labels, batch_size=global_batch, epochs=epochs, shuffle=True, verbose=0,
            callbacks=[timer])
    return timer.images_per_second


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    flags.add_model(p, default="resnet20", help="registry model to train")
    flags.add_image_size(p, default=32, help="side of the digits images fed to the model")
    flags.add_epochs(p, low=2, default=4, help="epochs per configuration, at least 2: the "
                     "first is not timed")
    flags.add_batch_size(p, help="per replica (default: the recipe's batch / replicas)")
    flags.add_seed(p, help="seed for weights and data")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet.import_tensorflow_quietly()  # its start-up lines hidden, once the flags are checked
    import tensorflow as tf

    from tfresnet import data, train
    from tfresnet.models.variant import ModelVariant

    try:
        variant = ModelVariant(args.model, res=args.image_size).check(
            classes=10, batch=args.batch_size or 1)
    except ValueError as err:  # the library's words in this script's flags
        raise cli.UsageError(cli.flag_words(str(err), FLAGS)) from None
    info = variant.info
    size = (args.image_size, args.image_size)
    split = data.load("digits", image_size=size, seed=args.seed)
    rows = []
    for jit in (False, True):
        start = time.perf_counter()
        result = train.fit(args.model, dataset=split, epochs=args.epochs,
                           batch_size=args.batch_size, image_size=size, seed=args.seed,
                           jit_compile=jit, verbose=0)
        global_batch = result.config["global_batch"]
        rows.append((f"tfresnet.train.fit ({result.config['replicas']} replica, "
                     f"{result.config['augment']} aug)", jit, result.images_per_second,
                     time.perf_counter() - start))
        start = time.perf_counter()
        ips = plain_fit(split, info, image_size=size, global_batch=global_batch,
                        epochs=args.epochs, jit_compile=jit, seed=args.seed,
                        steps_per_execution=result.config["steps_per_execution"])
        rows.append(("model.fit(numpy arrays)", jit, ips, time.perf_counter() - start))

    print(f"\n{args.model} on digits {size[0]}x{size[1]}, {split.num_train} training images, "
          f"global batch {global_batch}, {args.epochs} epochs each (first not timed), "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}")
    width = max(len(r[0]) for r in rows)
    print(f"{'input path':<{width}}  {'jit':>5}  {'images/s':>9}  {'wall s':>7}")
    for name, jit, ips, wall in rows:
        print(f"{name:<{width}}  {str(jit):>5}  {ips:>9.0f}  {wall:>7.1f}")
    for jit in (False, True):
        ours, plain = (r[2] for r in rows if r[1] == jit)
        print(f"pipeline / numpy (jit_compile={jit}): {ours / plain:.2f}x")
    base = rows[0][2]
    print(f"jit_compile speed-up of the pipeline: {rows[2][2] / base:.2f}x")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(lambda argv=None: 0 if main(argv) else 1, prog=PROG))

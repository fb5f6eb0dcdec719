"""Frozen-phase speed: the classifier on cached backbone features vs through the network.

Not a test. In one process, trains the same new classifier on the same frozen backbone
and the same batches twice with ``tfresnet.train.fit``: once on the backbone's features
computed in one pass (``cache_features=True``, the default when the backbone is frozen
and nothing is augmented) and once through the whole frozen network every step
(``cache_features=False``). Prints training images/s of the head epochs (the first,
tracing epoch left out), the one-off feature pass, wall time and the final validation
accuracy of each head, then two verdicts: the speed-up is at least ``--min-speedup``
and the two heads' validation accuracies are within ``--max-gap`` points. Exit status 1
when either is missed.

The backbone is the registry model trained first for ``--pretrain-epochs`` epochs on
the same digits (0: random weights, as ``weights=None``), or ``--weights``: a tfresnet
run, ``.keras`` or keras.applications ``.h5`` file; the classifier is always new. The
data are the bundled digits at ``--image-size``.

Usage::

    python benchmarks/bench_transfer.py [--model resnet20] [--image-size 32] [--epochs 4]
    python benchmarks/bench_transfer.py --model mobilenet_v1 --alpha 0.25 --image-size 64
"""

from __future__ import annotations

import os
import sys
import time

from tfresnet.utils import cli, flags, quiet

PROG = "python benchmarks/bench_transfer.py"
# The model variant's settings (its errors' words) as this script's flags.
FLAGS = {"model": "--model", "alpha": "--alpha", "res": "--image-size",
         "batch_size": "--batch-size"}


def pretrained(variant, split, epochs, seed):
    """The model trained ``epochs`` epochs on ``split`` (None when ``epochs`` is 0)."""
    from tfresnet import train

    if not epochs:
        return None
    kwargs = {"alpha": variant.alpha} if variant.alpha is not None else {}
    return train.fit(variant.name, dataset=split, epochs=epochs, model_kwargs=kwargs,
                     image_size=split.image_size, augment="none", seed=seed,
                     verbose=0).model


def frozen_net(variant, split, *, weights, source, seed):
    """The registry model for the digits' classes, backbone frozen, new classifier."""
    import keras

    from tfresnet.training import transfer

    keras.utils.set_random_seed(seed)
    kwargs = {"alpha": variant.alpha} if variant.alpha is not None else {}
    if weights:
        net, _ = transfer.load_weights(weights, variant.name, classes=len(split.labels),
                                       model_kwargs=kwargs, image_size=split.image_size)
    else:
        net = variant.build(classes=len(split.labels))
        for layer in net.layers:
            if source is not None and layer.weights and layer.name != transfer.HEAD:
                layer.set_weights(source.get_layer(layer.name).get_weights())
    return transfer.freeze_backbone(net)


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    flags.add_model(p, default="resnet20", help="registry model whose backbone is frozen")
    flags.add_alpha(p, help="MobileNet width multiplier (default 0.25 for mobilenet_v1)")
    flags.add_image_size(p, default=32, help="side of the digits images fed to the model")
    flags.add_epochs(p, low=2, high=1000, default=4, help="head epochs per configuration, "
                     "at least 2: the first is not timed")
    flags.add_batch_size(p, help="images per step (default: fit's choice for the data)")
    p.add_argument("--weights", type=cli.non_empty, default=None,
                   help="backbone weights: a tfresnet run, .keras or keras.applications "
                        ".h5 file (default: trained here, see --pretrain-epochs)")
    p.add_argument("--pretrain-epochs", type=cli.int_range(0, 1000), default=3,
                   help="without --weights: epochs that train the backbone on the "
                        "digits first; 0 keeps random weights")
    p.add_argument("--min-speedup", type=cli.float_range(0, low_open=True), default=5.0,
                   help="verdict: cached images/s at least this times the other")
    p.add_argument("--max-gap", type=cli.float_range(0), default=1.0,
                   help="verdict: val accuracies at most this many points apart")
    flags.add_seed(p, help="seed for weights and data")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.weights and not os.path.exists(args.weights):
        raise ValueError(f"--weights must be an existing run folder or file. "
                         f"Received: --weights={args.weights!r}")
    quiet.import_tensorflow_quietly()  # its start-up lines hidden, once the flags are checked
    import tensorflow as tf

    from tfresnet import data, train
    from tfresnet.models import registry
    from tfresnet.models.variant import ModelVariant

    alpha = args.alpha
    if alpha is None and "alpha" in registry.model_info(args.model).extra_args:
        alpha = 0.25
    try:
        variant = ModelVariant(args.model, alpha, args.image_size).check(
            classes=10, batch=args.batch_size or 1)
    except ValueError as err:  # the library's words in this script's flags
        raise cli.UsageError(cli.flag_words(str(err), FLAGS)) from None
    size = (variant.side, variant.side)
    split = data.load("digits", image_size=size, seed=args.seed)
    source = None if args.weights else pretrained(variant, split, args.pretrain_epochs,
                                                  args.seed)
    rows = []
    for cache in (False, True):  # the first run in the process pays the warm-up
        net = frozen_net(variant, split, weights=args.weights, source=source, seed=args.seed)
        start = time.perf_counter()
        result = train.fit(net, dataset=split, epochs=args.epochs, batch_size=args.batch_size,
                           recipe=variant.info.recipe, augment="none", seed=args.seed,
                           verbose=0, cache_features=cache)
        feature = result.config["feature_cache"]
        rows.append({"name": ("cached features" if cache else "through frozen network"),
                     "ips": result.images_per_second, "feature_s": feature.get("seconds"),
                     "wall": time.perf_counter() - start, "acc": result.val_accuracy,
                     "config": result.config})
    direct, cached = rows
    if not cached["config"]["feature_cache"]["used"]:
        raise ValueError(f"features were not cached: {cached['config']['feature_cache']['reason']}")
    c = cached["config"]
    origin = (f"weights {args.weights}" if args.weights else
              f"trained {args.pretrain_epochs} epochs on the digits" if source is not None
              else "random weights")
    print(f"\n{variant.stem} backbone frozen ({origin}), "
          f"new classifier on digits {size[0]}x{size[1]}: {split.num_train} train / "
          f"{split.num_val} val images, global batch {c['global_batch']}, {c['recipe']} "
          f"lr {c['lr']:g}, {args.epochs} epochs each (first not timed), seed {args.seed}, "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}")
    width = max(len(r["name"]) for r in rows)
    print(f"{'head phase':<{width}}  {'images/s':>9}  {'feature pass s':>14}  {'wall s':>7}  "
          f"{'val acc':>7}")
    for r in rows:
        feature = f"{r['feature_s']:.1f}" if r["feature_s"] is not None else "-"
        print(f"{r['name']:<{width}}  {r['ips']:>9.0f}  {feature:>14}  {r['wall']:>7.1f}  "
              f"{r['acc']:>7.4f}")
    speedup = cached["ips"] / direct["ips"]
    gap = abs(cached["acc"] - direct["acc"]) * 100
    fast = speedup >= args.min_speedup
    same = gap <= args.max_gap
    print(f"speed: {speedup:.1f}x images/s per head epoch (target >= {args.min_speedup:g}x): "
          f"{'MET' if fast else 'MISSED'}")
    print(f"accuracy: heads {gap:.2f} points apart (target <= {args.max_gap:g}): "
          f"{'MET' if same else 'MISSED'}")
    return fast and same


if __name__ == "__main__":
    sys.exit(cli.run(lambda argv=None: 0 if main(argv) else 1, prog=PROG))

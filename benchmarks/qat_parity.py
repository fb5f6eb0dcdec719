"""QAT parity: our Keras 3 QAT (export.convert.qat) against tfmot's, on the same models.

Not a test: a benchmark to run by hand (about 30 minutes on 2 CPU cores)::

    python benchmarks/qat_parity.py                       # every case
    python benchmarks/qat_parity.py --cases resnet20 --json parity.json

For each case one float model is trained (``tfresnet.train.fit``, the export job's
short-run preset, tf_keras) and then goes three ways:

* **tfmot**: ``export.convert.quantize.quantize_model`` (tfmot's default 8-bit QAT, the
  release's path; frozen layers kept frozen by ``keep_frozen``), fine-tuned, converted;
* **ours**: the same weights in the same architecture under Keras 3 (the tf_keras
  model saved as a full-model ``.h5``, which Keras 3 reads, checked to give the same
  outputs), ``export.convert.qat.quantize_model``, fine-tuned, converted;
* **PTQ**: the float model quantized after training, calibrated on 200 training images.

Both QAT fine-tunes run the same plain ``model.fit``: SGD with momentum 0.9 at a tenth
of the model's recipe rate (``export.job.flags.QAT_LR_FACTOR``), the same batch, epochs
and seeded order of the data, one epoch of each in turn; the training speed ratio is the
median over the epochs after the first (which traces) of tfmot's epoch time over ours,
in wall time (what a user waits for), with the ratio of this process's CPU time beside
it (the work done, all threads counted). Both INT8 files
come from ``export.convert.converter.to_int8`` (uint8 I/O; it refuses any op not INT8)
and are timed side by side (LiteRT, XNNPACK, 1 thread; ``latency.alternate_rounds``:
the ratio is the median of the rounds' ratios).

The cases: ResNet-20 (32x32, option A shortcuts), MobileNet v1 0.25 and 0.75 (128x128),
AlexNet-BN (67x67), ResNet-50 (32x32), and a transfer run: MobileNet v1 0.25 trained on
the digits 0-4, its backbone frozen under a new 10-class head trained on all ten.

Targets (issue 26), each case: our INT8 accuracy at least tfmot's minus 0.3 points and
not below PTQ's, top-1 agreement of our INT8 file with our QAT Keras model at least
99.5%, every op INT8, latency within 3% of tfmot's file, QAT training at least as fast.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import typing
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfresnet.utils import cli  # noqa: E402
from tfresnet.utils import fileio  # noqa: E402
from tfresnet.utils import flags  # noqa: E402

PROG = "python benchmarks/qat_parity.py"


class Case(typing.NamedTuple):
    """One model of the comparison: registry name, builder arguments, input side."""

    model: str
    kwargs: dict
    res: int
    transfer: bool = False


CASES = {
    "resnet20": Case("resnet20", {}, 32),
    "mobilenet_0.25": Case("mobilenet_v1", {"alpha": 0.25}, 128),
    "mobilenet_0.75": Case("mobilenet_v1", {"alpha": 0.75}, 128),
    "alexnet_bn": Case("alexnet_bn", {}, 67),
    "resnet50": Case("resnet50", {}, 32),
    "transfer": Case("mobilenet_v1", {"alpha": 0.25}, 128, transfer=True),
}
MAX_ACCURACY_GAP = 0.003     # ours >= tfmot - 0.3 points
MIN_AGREEMENT = 0.995
MAX_LATENCY_RATIO = 1.03
PTQ_CALIBRATION = 200


def build_parser():
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                   help="the models to compare")
    flags.add_epochs(p, default=4, help="float training epochs")
    p.add_argument("--qat-epochs", type=cli.int_range(1, flags.MAX_EPOCHS), default=3,
                   help="QAT fine-tuning epochs, both ways, one epoch of each in turn "
                        "(the epochs after the first, which traces, are timed)")
    flags.add_batch_size(p, default=8)
    flags.add_seed(p)
    flags.add_timing(p, runs=30, rounds=5, runs_help="timed invokes per round",
                     rounds_help="latency rounds, each timing the three INT8 files")
    flags.add_json(p)
    return p


def _load():
    """TensorFlow (its start-up lines hidden) and the libraries, once the flags are checked."""
    global np, tf, tfk, keras, train, recipes, data, quantize, qat, converter, latency
    global QAT_LR_FACTOR, normalize
    from tfresnet.utils.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import numpy as np
    import tensorflow as tf
    import tf_keras as tfk

    from export.convert import converter, latency, qat, quantize
    from export.job.flags import QAT_LR_FACTOR
    from tfresnet import data
    from tfresnet.data.pipelines import normalize
    from tfresnet.training import recipes, train


def say(text):
    print(f"[parity] {text}", flush=True)


# ----------------------------------------------------------------------------- the bridge


def keras3_twin(model, folder):
    """The same architecture and weights as the tf_keras ``model``, in Keras 3.

    Keras 3 reads a tf_keras full-model ``.h5``; what it does not know is bridged:
    tf_keras' DepthwiseConv2D records ``groups`` (always 1), and the option A shortcut
    is the package's ChannelPad (a Keras 3 twin of it, declared keep-range to the QAT
    scheme as the tf_keras one is to tfmot's). BatchNormalization becomes
    :class:`tfresnet.models.batchnorm.FusedBatchNormalization`, the layer the Keras 3
    builders use (Keras 3's own runs unfused on TensorFlow, as tf_keras' did not).
    Only for this comparison: when the package itself builds Keras 3 models, the twin is
    the model.
    """
    path = os.path.join(folder, f"{model.name}.h5")
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # "Compiled the loaded model, but ..."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # HDF5 is legacy: here on purpose
            model.save(path)
            return keras.models.load_model(path, custom_objects=_bridge_objects(),
                                           compile=False)
    finally:
        tf.get_logger().setLevel(level)


_BRIDGE = {}


def _bridge_objects():
    if not _BRIDGE:
        class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
            def __init__(self, groups=1, **kwargs):
                super().__init__(**kwargs)

        class ChannelPad(keras.layers.Layer):
            def __init__(self, pad, **kwargs):
                super().__init__(**kwargs)
                self.pad = pad

            def call(self, inputs):
                return tf.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, self.pad]])

            def compute_output_shape(self, shape):
                return (*shape[:-1], shape[-1] + self.pad)

        from tfresnet.models.batchnorm import BatchNormalization as FusedBatchNormalization

        qat.register_keep_range(ChannelPad)
        _BRIDGE.update({"DepthwiseConv2D": DepthwiseConv2D, "ChannelPad": ChannelPad,
                        "tfresnet>ChannelPad": ChannelPad,
                        "BatchNormalization": FusedBatchNormalization})
    return _BRIDGE


# ----------------------------------------------------------------------------- the steps


def float_model(case, split, args):
    """The trained float tf_keras model of ``case`` (export.tflite's float training)."""
    info_recipe = train_recipe(case)
    settings = recipes.short_run_settings(info_recipe, epochs=args.epochs,
                                          batch_size=args.batch_size, seed=args.seed)
    result = train.fit(case.model, dataset=split, image_size=(case.res, case.res),
                       model_kwargs=case.kwargs or None, strategy="default", verbose=0,
                       **settings)
    return result.model


def train_recipe(case):
    from tfresnet.models.registry import model_info
    return model_info(case.model).recipe


def transfer_model(case, split, x, y, args):
    """MobileNet's backbone trained on the digits 0-4 (``tfresnet.train.fit``, as the
    float cases), frozen under a new 10-class head trained on all ten (tf_keras, plain
    fit with Adam on the frozen features: the head-only phase of a transfer run)."""
    tf_first = lambda image, label: label < 5  # noqa: E731
    first = dataclasses.replace(
        split, train=split.train.filter(tf_first), val=split.val.filter(tf_first),
        labels=split.labels[:5], num_train=int((y < 5).sum()),
        num_val=int(sum(1 for _ in split.val.filter(tf_first))))
    backbone = float_model(case, first, args)
    features = backbone.get_layer("avg_pool").output
    head = tfk.layers.Dense(10, activation="softmax", name="predictions_digits")
    model = tfk.Model(backbone.input, head(features), name=backbone.name)
    for layer in model.layers[:-1]:
        layer.trainable = False
    tfk.utils.set_random_seed(args.seed)
    _compile(model, tfk, tfk.optimizers.Adam(1e-2))
    model.fit(normalize(x), y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    return model


def _compile(model, k, optimizer):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def fine_tune_side_by_side(models, x, y, args, lr) -> dict:
    """QAT fine-tuning of ``models`` ({name: (model, keras module)}), one epoch of each
    in turn (in reverse order every other epoch), on the same seeded order of the data.

    Returns {name: [(wall seconds, process CPU seconds) of each epoch]}: epochs timed
    side by side, so a drift of the machine's speed hits both alike.
    """
    for model, k in models.values():
        _compile(model, k, k.optimizers.SGD(lr, momentum=0.9))
    seconds = {name: [] for name in models}
    images = normalize(x)
    for epoch in range(args.qat_epochs):
        order = np.random.default_rng(args.seed + epoch).permutation(len(x))
        names = list(models) if epoch % 2 == 0 else list(reversed(models))
        for name in names:
            model, _ = models[name]
            start = time.perf_counter(), time.process_time()
            model.fit(images[order], y[order], batch_size=args.batch_size, epochs=epoch + 1,
                      initial_epoch=epoch, shuffle=False, verbose=0)
            seconds[name].append((time.perf_counter() - start[0],
                                  time.process_time() - start[1]))
    return seconds


def run_case(name, case, args, folder):
    say(f"{name}: data and float model ({args.epochs} epochs)")
    split = data.load("digits", image_size=case.res, seed=args.seed)
    x, y = data.as_numpy(split.train)
    x_test, y_test = data.as_numpy(split.val)
    if case.transfer:
        float_tfk = transfer_model(case, split, x, y, args)
    else:
        float_tfk = float_model(case, split, args)
    twin = keras3_twin(float_tfk, folder)
    sample = normalize(x_test[:16])
    gap = float(np.abs(twin.predict(sample, verbose=0)
                       - float_tfk.predict(sample, verbose=0)).max())
    if gap > 1e-4:
        raise SystemExit(f"the Keras 3 twin of {name} differs from the tf_keras model by {gap}")
    lr = get_lr(case) * QAT_LR_FACTOR
    calibration = x[:PTQ_CALIBRATION]
    row = {"case": name, "model": case.model, **case.kwargs, "res": case.res,
           "float_accuracy": accuracy(float_tfk.predict(normalize(x_test), verbose=0), y_test)}
    files = {"PTQ": converter.to_int8(float_tfk, calibration)}

    say(f"{name}: QAT fine-tuning, tfmot's and ours side by side")
    tfk.utils.set_random_seed(args.seed)
    tfmot_model = quantize.quantize_model(float_tfk)
    frozen = quantize.keep_frozen(float_tfk, tfmot_model)
    keras.utils.set_random_seed(args.seed)
    ours_model = qat.quantize_model(twin)
    row["frozen_layers"] = len(frozen)
    row["ours_frozen_layers"] = sum(1 for layer in twin.layers
                                    if layer.weights and not layer.trainable)
    with quantize.quantize_scope():
        seconds = fine_tune_side_by_side({"tfmot": (tfmot_model, tfk),
                                          "ours": (ours_model, keras)}, x, y, args, lr)
    timed = slice(1, None) if args.qat_epochs > 1 else slice(None)  # the first traces
    for key in seconds:
        row[f"{key}_images_per_s"] = len(x) / min(wall for wall, _ in seconds[key][timed])
    for i, clock in enumerate(("wall", "cpu")):
        row[f"training_speed_ratio_{clock}"] = float(np.median(
            [t[i] / o[i] for o, t in zip(seconds["ours"][timed], seconds["tfmot"][timed])]))
    files["tfmot"] = converter.to_int8(tfmot_model, calibration)
    files["ours"] = converter.to_int8(ours_model, calibration)

    for key, model in (("tfmot", tfmot_model), ("ours", ours_model)):
        keras_top1 = model.predict(normalize(x_test), verbose=0).argmax(1)
        int8_top1 = converter.Runner(files[key]).predict(x_test).argmax(1)
        row[f"{key}_qat_accuracy"] = float((keras_top1 == y_test).mean())
        row[f"{key}_int8_accuracy"] = float((int8_top1 == y_test).mean())
        row[f"{key}_agreement"] = float((keras_top1 == int8_top1).mean())
    row["ptq_int8_accuracy"] = accuracy(converter.Runner(files["PTQ"]).predict(x_test), y_test)
    for key, tflite in files.items():
        row[f"{key.lower()}_ops"] = sorted({op.name for op in converter.graph_ops(tflite)})
        row[f"{key.lower()}_bytes"] = len(tflite)
        row[f"{key.lower()}_all_int8"] = not converter.non_integer_ops(tflite)
    say(f"{name}: latency, {args.rounds} rounds")
    rounds = latency.alternate_rounds(files, rounds=args.rounds, runs=args.runs, threads=1)
    for key in files:
        row[f"{key.lower()}_ms"] = latency.best_round(rounds[key]).median_ms
    ratios = [o.median_ms / t.median_ms for o, t in zip(rounds["ours"], rounds["tfmot"])]
    row["latency_ratio"] = float(np.median(ratios))
    row["test_images"] = len(y_test)
    return row


def get_lr(case):
    return recipes.get_recipe(train_recipe(case)).lr


def accuracy(probabilities, labels):
    return float((np.asarray(probabilities).argmax(1) == labels).mean())


def misses(row) -> list[str]:
    """The targets ``row`` misses."""
    out = []
    if row["ours_int8_accuracy"] < row["tfmot_int8_accuracy"] - MAX_ACCURACY_GAP:
        out.append("INT8 accuracy below tfmot's - 0.3 points")
    if row["ours_int8_accuracy"] < row["ptq_int8_accuracy"]:
        out.append("INT8 accuracy below PTQ's")
    if row["ours_agreement"] < MIN_AGREEMENT:
        out.append("agreement below 99.5%")
    if not row["ours_all_int8"]:
        out.append("ops not all INT8")
    if row["latency_ratio"] > MAX_LATENCY_RATIO:
        out.append("latency over tfmot's + 3%")
    if row["training_speed_ratio_wall"] < 1.0:
        out.append("QAT training slower than tfmot's")
    return out


def table(rows, markdown=False) -> str:
    from tfresnet.utils.tables import table as format_table

    header = ["case", "float", "PTQ INT8", "tfmot QAT", "tfmot INT8", "ours QAT",
              "ours INT8", "agree tfmot", "agree ours", "KB tfmot/ours", "ms tfmot/ours",
              "latency ratio", "QAT img/s tfmot/ours", "speed ratio (CPU)", "targets"]
    pct = "{:.2%}".format
    lines = [[r["case"], pct(r["float_accuracy"]), pct(r["ptq_int8_accuracy"]),
              pct(r["tfmot_qat_accuracy"]), pct(r["tfmot_int8_accuracy"]),
              pct(r["ours_qat_accuracy"]), pct(r["ours_int8_accuracy"]),
              pct(r["tfmot_agreement"]), pct(r["ours_agreement"]),
              f"{r['tfmot_bytes'] / 1024:.0f} / {r['ours_bytes'] / 1024:.0f}",
              f"{r['tfmot_ms']:.2f} / {r['ours_ms']:.2f}", f"{r['latency_ratio']:.3f}",
              f"{r['tfmot_images_per_s']:.0f} / {r['ours_images_per_s']:.0f}",
              f"{r['training_speed_ratio_wall']:.2f} ({r['training_speed_ratio_cpu']:.2f})",
              "met" if not misses(r) else "; ".join(misses(r))] for r in rows]
    return format_table(header, lines, markdown=markdown)


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.json:
        fileio.check_writable_file(args.json)
    _load()
    at_commit = commit()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases:
            rows.append(run_case(name, CASES[name], args, folder))
            print(table(rows[-1:]), flush=True)
    print(f"\nQAT parity at commit {at_commit}: epochs {args.epochs}, QAT epochs "
          f"{args.qat_epochs}, batch {args.batch_size}, seed {args.seed}; "
          f"{rows[0]['test_images']} held-out digits each")
    print(table(rows))
    ops = {r["case"]: r["ours_ops"] for r in rows}
    print("ops of our INT8 files: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in ops.items()))
    if args.json:
        fileio.write_text(args.json, fileio.to_json(
            {"commit": at_commit, "settings": vars(args), "rows": rows}))
    missed = [r["case"] for r in rows if misses(r)]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))

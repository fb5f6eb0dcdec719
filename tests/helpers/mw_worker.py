"""One worker of the multi-worker test (tests/test_multiworker.py); not a test itself.

Usage: ``TF_CONFIG=... python tests/helpers/mw_worker.py OUT_DIR WEIGHTS.npz``. Trains
:func:`small_cnn` with :func:`tfresnet.train.fit` under MultiWorkerMirroredStrategy
and saves the final weights.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfresnet import train  # noqa: E402
from tfresnet.training.strategy import make_strategy  # noqa: E402

SIZE = 8
FIT_ARGS = dict(epochs=2, steps_per_epoch=3, batch_size=16, seed=3, recipe="resnet_cifar",
                image_size=SIZE, augment="none", sync_batchnorm=True, verbose=0)


def small_cnn(classes=10):
    """Conv-BN-ReLU twice, global pooling, softmax: quick to trace, has BN and decay."""
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for i, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=i + 1, padding="same", use_bias=False,
                                name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def main(out_dir, weights_path):
    # The strategy first: MultiWorkerMirroredStrategy must precede every other TF op.
    strategy = make_strategy("multiworker")
    result = train.fit(small_cnn(), strategy=strategy, out_dir=out_dir, **FIT_ARGS)
    np.savez(weights_path, *result.model.get_weights(),
             val_accuracy=result.val_accuracy, replicas=strategy.num_replicas_in_sync)


if __name__ == "__main__":
    main(*sys.argv[1:3])

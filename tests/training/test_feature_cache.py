"""Feature caching in the frozen phase: the classifier trained on the backbone's stored
features is (nearly) the one trained through the frozen network, the backbone unchanged."""

import keras
import numpy as np
import pytest

from tfresnet import data, train
from tfresnet.training import transfer


def _frozen_net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, strides=2, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    net = keras.Model(inputs, outputs, name="tiny")
    for layer in net.layers:
        layer.trainable = layer.name == "predictions"
    return net


@pytest.fixture(scope="module")
def split():
    return data.load("digits", image_size=(16, 16), seed=0)


def test_cached_head_matches_head_through_frozen_net(split):
    base = _frozen_net()
    backbone = [w.copy() for w in base.get_weights()[:-2]]
    runs = {}
    for cache in (True, False):
        runs[cache] = train.fit(_frozen_net(), dataset=split, epochs=3, batch_size=32,
                                lr=0.5, recipe="resnet_cifar", augment="none", seed=0,
                                verbose=0, cache_features=cache)
    assert runs[True].config["feature_cache"]["used"] is True
    # The suite's two logical CPUs make two replicas, which train one step a call
    # (keras#19246); the cached classifier trains on one device, 8 steps a call.
    assert runs[True].config["steps_per_execution"] == 1
    assert runs[True].config["feature_cache"]["steps_per_execution"] == 8
    assert runs[False].config["feature_cache"] == {"used": False,
                                                   "reason": "cache_features=False"}
    cached = runs[True].model.get_weights()
    direct = runs[False].model.get_weights()
    for before, a, b in zip(backbone, cached[:-2], direct[:-2]):  # frozen: bitwise the same
        np.testing.assert_array_equal(before, a)
        np.testing.assert_array_equal(before, b)
    # The same batches in the same order: measured here, the two heads are bitwise equal
    # (the tolerance leaves room for another CPU's float rounding) and both reach 0.2061
    # validation accuracy on the frozen random backbone's 32 features (chance: 0.10).
    moved = np.abs(cached[-2] - base.get_weights()[-2]).max()
    assert moved > 0.1  # measured 1.79: the head trained
    np.testing.assert_allclose(cached[-2], direct[-2], atol=1e-5)
    np.testing.assert_allclose(cached[-1], direct[-1], atol=1e-5)
    assert runs[True].val_accuracy > 0.15
    assert abs(runs[True].val_accuracy - runs[False].val_accuracy) <= 0.01


def test_no_cache_when_backbone_trains_or_images_are_augmented():
    net = _frozen_net()
    assert transfer.feature_cache_reason(net) is None
    assert "augmentation" in transfer.feature_cache_reason(net, augment="cifar")
    net.get_layer("conv").trainable = True
    assert transfer.feature_cache_reason(net) == "layers before the classifier train"

"""FusedBatchNormalization (tfresnet/models/batchnorm.py): Keras 3's BatchNormalization,
same results, on TF's fused kernel."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfresnet.models.batchnorm import BatchNormalization as FusedBatchNormalization


def _pair(**kwargs):
    """A Keras BatchNormalization and a fused one with the same (random) weights."""
    rng = np.random.default_rng(0)
    plain, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    for layer in (plain, fused):
        layer.build((None, 6, 6, 5))
    weights = [rng.normal(1, 0.3, 5), rng.normal(0, 0.3, 5), rng.normal(0, 1, 5),
               rng.uniform(0.5, 2, 5)]
    for layer in (plain, fused):
        layer.set_weights([w.astype(np.float32) for w in weights])
    return plain, fused


def test_same_outputs_moving_statistics_and_gradients():
    plain, fused = _pair(momentum=0.9)
    x = tf.constant(np.random.default_rng(1).normal(2, 3, (8, 6, 6, 5)), tf.float32)
    for _ in range(3):  # training: batch statistics, moving averages updated alike
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            a, b = plain(x, training=True), fused(x, training=True)
            loss_a, loss_b = tf.reduce_sum(a * a), tf.reduce_sum(b * b)
        np.testing.assert_allclose(b, a, atol=1e-4)
        np.testing.assert_allclose(tape.gradient(loss_b, x), tape.gradient(loss_a, x),
                                   rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(tape.gradient(loss_b, fused.gamma),
                                   tape.gradient(loss_a, plain.gamma), rtol=1e-3)
    for w_a, w_b in zip(plain.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(w_b, w_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)
    assert not np.allclose(plain.moving_mean.numpy(), 0.0)  # they did move


def test_frozen_layer_uses_its_moving_statistics():
    plain, fused = _pair()
    plain.trainable = fused.trainable = False
    x = tf.random.normal((4, 6, 6, 5), seed=2)
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy())


@pytest.mark.parametrize("kwargs, shape", [({"axis": 1}, (2, 5, 6, 6)),
                                           ({"center": False}, (2, 6, 6, 5)),
                                           ({}, (2, 5))])
def test_keras_path_where_the_kernel_does_not_apply(kwargs, shape):
    plain, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    x = tf.random.normal(shape, seed=3)
    for layer in (plain, fused):
        layer.build(shape)
    fused.set_weights(plain.get_weights())
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)


def test_saved_and_loaded_in_safe_mode(tmp_path):
    inputs = keras.Input((6, 6, 5))
    model = keras.Model(inputs, FusedBatchNormalization(name="bn")(inputs))
    model.get_layer("bn").set_weights(_pair()[1].get_weights())
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

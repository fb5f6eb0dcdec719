"""BatchNormalization on TensorFlow's fused kernel: what Keras 3 lacks on this backend.

Keras 3's ``BatchNormalization`` computes the batch moments and the normalization as
separate ops (``ops.moments``, ``tf.nn.batch_normalization``); tf_keras used TF's fused
kernel (``FusedBatchNormV3``). Without XLA (the default on a CPU, and under
``tf.distribute``) that makes training a BatchNorm network markedly slower (keras-core#225,
"BatchNorm is slow"; measured here on MobileNet v1 0.25: 1.3-1.4x the time per image).
:class:`BatchNormalization` is Keras 3's layer, same arguments, weights, moving
statistics (biased batch variance, ``momentum``) and results, which runs the fused kernel
wherever it applies: a 4-D float32 input normalized over its last axis, with ``center``
and ``scale``, no mask, not ``synchronized``. Anything else, and every other backend,
goes through Keras' own ``call``. The converter folds its inference op into the
convolution before it, as it folds tf_keras' and Keras 3's. It keeps Keras' class name,
so weight files (which Keras 3 keys by class name: ``layers/batch_normalization_3``)
are the same as with Keras' own layer, both ways; its config names it
``tfresnet>BatchNormalization``.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfresnet")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` on TF's fused kernel where it applies."""

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and not self.synchronized and not getattr(self, "renorm", False)
                and self.center and self.scale
                and str(getattr(inputs.dtype, "name", inputs.dtype)) == "float32")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
            # The fused kernel returns the unbiased batch variance; Keras keeps the biased one.
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            keep = self.momentum
            self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
            self.moving_variance.assign(self.moving_variance * keep + variance * (1.0 - keep))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, mean=self.moving_mean,
            variance=self.moving_variance, epsilon=self.epsilon, is_training=False)
        return outputs

"""The latency harness on a tiny model: counts, order statistics, threads, XNNPACK.

No timing assertions: wall times depend on the machine and its load.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.convert import latency


@pytest.fixture(scope="module")
def tiny_tflite():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.mark.parametrize("threads", [1, 2])
def test_measure_counts_runs_and_orders_statistics(tiny_tflite, threads):
    lat = latency.measure(tiny_tflite, threads=threads, warmup=2, runs=17)
    assert lat.runs == 17
    assert lat.threads == threads
    assert 0 < lat.min_ms <= lat.median_ms <= lat.p90_ms
    assert lat.min_ms <= lat.mean_ms
    assert lat.xnnpack, "LiteRT's default resolver should apply the XNNPACK delegate"
    assert lat.cpu_median_ms > 0
    assert set(lat.to_dict()) == {"median_ms", "p90_ms", "mean_ms", "min_ms", "runs",
                                  "threads", "xnnpack", "cpu_median_ms", "rounds_ms"}
    assert lat.rounds_ms is None  # one round


def test_without_delegate_is_detected(tiny_tflite):
    assert not latency.measure(tiny_tflite, runs=2, warmup=0, xnnpack=False).xnnpack


def test_path_input_and_min_seconds(tiny_tflite, tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_tflite)
    lat = latency.measure(path, runs=1, warmup=0, min_seconds=0.2)
    assert lat.runs > 1  # kept timing past `runs` until 0.2 s were spent


def test_random_input_matches_dtype_and_range():
    rng = np.random.default_rng(0)
    u8 = latency.random_input({"shape": np.array([1, 4, 4, 3]), "dtype": np.uint8}, rng)
    i8 = latency.random_input({"shape": np.array([2, 5]), "dtype": np.int8}, rng)
    f32 = latency.random_input({"shape": np.array([1, 3]), "dtype": np.float32}, rng)
    assert u8.dtype == np.uint8 and u8.shape == (1, 4, 4, 3)
    assert i8.dtype == np.int8 and i8.min() >= -128 and i8.max() <= 127
    assert f32.dtype == np.float32 and np.all(np.abs(f32) <= 1)


def test_macs_per_second():
    lat = latency.Latency(median_ms=2.0, p90_ms=3.0, mean_ms=2.5, min_ms=1.5, runs=5, threads=1)
    assert latency.macs_per_second(1e6, lat) == pytest.approx(5e8)
    assert latency.macs_per_second(1e6, 4.0) == pytest.approx(2.5e8)
    with pytest.raises(ValueError):
        latency.macs_per_second(1e6, 0.0)


@pytest.mark.parametrize("kwargs", [{"runs": 0}, {"threads": 0}, {"warmup": -1},
                                    {"min_seconds": -1.0}, {"runs": 2.5}])
def test_bad_arguments(tiny_tflite, kwargs):
    with pytest.raises(ValueError, match="Received"):
        latency.measure(tiny_tflite, **kwargs)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="No TFLite file"):
        latency.measure(tmp_path / "none.tflite")


def _lat(median, *, runs=10, threads=1, mn=None, cpu=None):
    return latency.Latency(median_ms=median, p90_ms=median * 1.1, mean_ms=median,
                           min_ms=median * 0.9 if mn is None else mn, runs=runs,
                           threads=threads, cpu_median_ms=cpu)


def test_best_round_quotes_the_least_disturbed_round():
    rounds = [_lat(4.7, mn=4.5, cpu=4.7), _lat(4.2, mn=4.0, runs=12, cpu=4.2),
              _lat(9.0, mn=3.9)]
    best = latency.best_round(rounds)
    assert best.median_ms == 4.2 and best.p90_ms == pytest.approx(4.62)
    assert best.cpu_median_ms == 4.2
    assert best.runs == 32 and best.min_ms == 3.9  # all runs, fastest of all rounds
    assert best.rounds_ms == (4.7, 4.2, 9.0)
    # Dicts (as stored in JSON) give the same, and to_dict / from_dict round-trip.
    assert latency.best_round([r.to_dict() for r in rounds]) == best
    assert latency.Latency.from_dict(best.to_dict()) == best
    assert best.to_dict()["rounds_ms"] == [4.7, 4.2, 9.0]


def test_best_round_rejects_nothing_and_mixed_threads():
    with pytest.raises(ValueError, match="at least one round"):
        latency.best_round([])
    with pytest.raises(ValueError, match="thread counts"):
        latency.best_round([_lat(1.0), _lat(1.0, threads=2)])


def test_alternate_rounds_times_every_file_each_round(tiny_tflite):
    seen = []
    results = latency.alternate_rounds(
        {"a": tiny_tflite, "b": tiny_tflite}, rounds=3, runs=2, warmup=0,
        on_round=lambda i, r: seen.append((i, {n: len(x) for n, x in r.items()})))
    assert seen == [(0, {"a": 1, "b": 1}), (1, {"a": 2, "b": 2}), (2, {"a": 3, "b": 3})]
    for rounds in results.values():
        assert all(r.runs == 2 and r.threads == 1 for r in rounds)
        best = latency.best_round(rounds)
        assert best.median_ms == min(r.median_ms for r in rounds) and best.runs == 6
    with pytest.raises(ValueError, match="rounds must be an integer >= 1"):
        latency.alternate_rounds({"a": tiny_tflite}, rounds=0)

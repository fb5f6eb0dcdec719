"""export.compare on a small grid: the report's contents, not only its files.

The published figures asserted here are copied from shared/REFERENCE.md (the world),
not from tfresnet.models.published (the package's copy). No timing assertions: wall times
depend on the machine and its load.
"""

import csv
import json
import struct

import numpy as np
import pytest

from export import compare
from export.compare import measure
from export.compare import report as compare_report
from export.compare.report import MS_DECIMALS
from helpers.cli_refusal import refused

# shared/REFERENCE.md: Keras totals (trainable + non-trainable) and million mult-adds.
MOBILENET_025_PARAMS = 470_072 + 5_472
RESNET20_PARAMS = 269_722 + 1_376  # CIFAR option A, 10 classes
MOBILENET_025_128_MMACS = 14  # printed in whole millions

QUICK_ARGS = ["--quick", "--model", "mobilenet_v1", "resnet20@16", "--alpha", "0.25",
              "--res", "128", "--runs", "5", "--warmup", "2", "--min-seconds", "0"]
KEYS = ["mobilenet_v1_0.25_128", "resnet20_16"]
ROUNDS = 5  # the default --rounds


def test_grid_of_configs():
    configs = compare.make_configs(["mobilenet_v1", "resnet50", "alexnet_bn", "resnet20@16"],
                                   alphas=[1.0, 0.75, 0.5, 0.25], resolutions=[224, 192, 160, 128])
    keys = [c.key for c in configs]
    assert len(keys) == 19 and keys[:2] == ["mobilenet_v1_1.0_224", "mobilenet_v1_1.0_192"]
    assert "mobilenet_v1_0.25_128" in keys
    assert keys[-3:] == ["resnet50_224", "alexnet_bn_227", "resnet20_16"]
    assert [c.label for c in configs[-3:]] == ["resnet50", "alexnet_bn", "resnet20@16"]
    # Two checkpoints of one architecture get different plot labels.
    runs = [compare.Config("mobilenet_v1", 0.25, 64, checkpoint=f"/runs/{name}")
            for name in ("digits-a", "digits-b")]
    assert [c.label for c in runs] == ["0.25/64 digits-a", "0.25/64 digits-b"]


def test_quick_grid_report(tmp_path, capsys):
    """One --quick run (kept in one test so pytest-xdist never runs it twice)."""
    out = tmp_path / "out"
    assert compare.main(QUICK_ARGS + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[") >= len(KEYS)
    # A short summary (a line a model) and the report's path, not the report itself.
    assert f"Report: {out / 'report.md'}" in printed and "| " not in printed
    assert sum(line.startswith(tuple(KEYS)) for line in printed.splitlines()) >= len(KEYS)
    # Round 1 was timed while measuring: only the repeatability copy is timed in it.
    assert f"timing round 1/{ROUNDS}: {KEYS[0]} again for the repeatability check" in printed
    assert f"timing round {ROUNDS}/{ROUNDS}: {len(KEYS)} models; {KEYS[0]} again" in printed
    assert "0 model" not in printed
    check_table_has_every_model_and_column(out)
    check_params_and_macs_equal_reference(out)
    check_csv_json_and_table_agree(out)
    check_latency_and_sizes_are_sane(out)
    check_repeatability_section(out)
    check_plots_are_real_pictures(out)
    check_second_run_reuses_results(out, capsys)
    check_interrupted_rounds_are_completed(out, capsys)


def markdown_rows(report: str) -> dict:
    """The report's main table as {key: {column: cell}}."""
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header) or cells[0] == "model":
            break  # the next table starts
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def check_table_has_every_model_and_column(quick):
    rows = markdown_rows((quick / "report.md").read_text())
    assert list(rows) == KEYS
    columns = set(rows[KEYS[0]])
    for column in ("params", "pub. params", "MMACs", "pub. MMACs", "f32 MB", "int8 MB",
                   "f32 ms 1 thr", "f32 ms 2 thr", "int8 ms 1 thr", "int8 ms 2 thr",
                   "int8 GMAC/s 1 thr (best round's median)", "pub. top-1 %",
                   "phone int8 ms (pub.)"):
        assert column in columns
    assert "acc f32 %" not in columns  # --quick: no accuracy


def check_params_and_macs_equal_reference(quick):
    by_key = {r["key"]: r for r in json.loads((quick / "results.json").read_text())["rows"]}
    mobilenet, resnet = by_key["mobilenet_v1_0.25_128"], by_key["resnet20_16"]
    assert mobilenet["params"] == pytest.approx(MOBILENET_025_PARAMS, rel=0.01)
    assert mobilenet["params_published"] == MOBILENET_025_PARAMS
    assert resnet["params"] == pytest.approx(RESNET20_PARAMS, rel=0.01)
    assert resnet["params_published"] == RESNET20_PARAMS  # global pooling: any input side
    assert abs(mobilenet["macs"] / 1e6 - MOBILENET_025_128_MMACS) <= 0.5  # rounds to 14
    assert mobilenet["macs_published"] == MOBILENET_025_128_MMACS * 1e6
    assert resnet["macs_published"] is None  # nothing published for CIFAR ResNet MACs
    report = (quick / "report.md").read_text()
    assert "Params vs published: 2/2 within 1%" in report
    assert "MACs vs published: 0/1 within 1%, 1/1 within 1% or the printed" in report


def check_csv_json_and_table_agree(quick):
    table = markdown_rows((quick / "report.md").read_text())
    with open(quick / "results.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    results = json.loads((quick / "results.json").read_text())
    json_rows, records = results["rows"], results["records"]
    assert [r["key"] for r in csv_rows] == [r["key"] for r in json_rows] == KEYS
    for c, j, record in zip(csv_rows, json_rows, records):
        t = table[j["key"]]
        assert int(c["params"]) == j["params"] and int(c["macs"]) == j["macs"]
        assert t["params"] == f"{j['params'] / 1e6:.3f}M"
        assert t["MMACs"] == f"{j['macs'] / 1e6:.1f}"
        assert t["f32 MB"] == f"{float(c['float32_mb']):.2f}"
        assert t["int8 MB"] == f"{float(c['int8_mb']):.2f}"
        # Every derived figure comes from the one the CSV and JSON hold, exactly (not
        # within a tolerance that the machine's noise can cross).
        for fmt, col in (("float32", "f32"), ("int8", "int8")):
            for threads in (1, 2):
                prefix = f"{fmt}_t{threads}"
                median, p90 = float(c[f"{prefix}_median_ms"]), float(c[f"{prefix}_p90_ms"])
                best = record["latency"][fmt][str(threads)]
                assert median == j[f"{prefix}_median_ms"] == round(best["median_ms"],
                                                                   MS_DECIMALS)
                assert t[f"{col} ms {threads} thr"] == f"{median:.2f} ({p90:.2f})"
                gmacs = round(j["macs"] / (median / 1e3) / 1e9, 2)
                assert float(c[f"{prefix}_gmacs_per_s"]) == j[f"{prefix}_gmacs_per_s"] == gmacs
        assert t["int8 GMAC/s 1 thr (best round's median)"] == f"{j['int8_t1_gmacs_per_s']:.1f}"


def test_gmacs_comes_from_the_median_the_row_holds():
    """A median whose rounding moves the GMAC/s: the row's figure, the CSV's and the
    table's are all derived from the rounded median (no machine noise needed)."""
    median = 0.033_654_32  # ms; rounds to 0.0337
    latency = {"median_ms": median, "p90_ms": 0.04, "min_ms": 0.03, "cpu_median_ms": median}
    record = {"key": "resnet20_16", "label": "resnet20@16", "model": "resnet20",
              "alpha": None, "side": 16, "classes": 10, "params": 271_098,
              "macs": 10_137_760, "bytes": {"float32": 1_100_000, "int8": 350_000},
              "latency": {"float32": {"1": latency}, "int8": {"1": latency}}}
    row = compare_report.flat_row(record)
    assert row["int8_t1_median_ms"] == round(median, MS_DECIMALS) != median
    gmacs = round(record["macs"] / (row["int8_t1_median_ms"] / 1e3) / 1e9, 2)
    assert row["int8_t1_gmacs_per_s"] == gmacs != round(record["macs"] / median / 1e6, 2)
    assert f",{gmacs}," in compare_report.csv_text([row])
    table = markdown_rows(compare_report.markdown_table([row], [1]))["resnet20_16"]
    assert table["int8 GMAC/s 1 thr (best round's median)"] == f"{gmacs:.1f}"


def check_latency_and_sizes_are_sane(quick):
    records = json.loads((quick / "results.json").read_text())["records"]
    for r in records:
        ratio = r["bytes"]["int8"] / r["bytes"]["float32"]
        assert 0.2 < ratio < 0.4, f"{r['key']}: int8/float32 size {ratio:.2f}"
        for fmt in ("float32", "int8"):
            assert sorted(r["latency"][fmt]) == ["1", "2"]
            for threads, lat in r["latency"][fmt].items():
                assert lat["threads"] == int(threads) and lat["runs"] >= 5 * ROUNDS
                assert 0 < lat["median_ms"] <= lat["p90_ms"]
                assert lat["xnnpack"]
                # --rounds passes over the grid; the quoted figure is the best round's.
                rounds = r["latency_rounds"][fmt][threads]
                assert len(rounds) == ROUNDS
                assert lat["rounds_ms"] == [x["median_ms"] for x in rounds]
                assert lat["median_ms"] == min(lat["rounds_ms"])
                assert lat["min_ms"] == min(x["min_ms"] for x in rounds)
        assert "uniform random" in r["calibration"]
    report = (quick / "report.md").read_text()
    assert "uniform random uint8 images (latency and size only)" in report


def check_repeatability_section(quick):
    data = json.loads((quick / "results.json").read_text())
    repeats = data["repeatability"]
    assert {(r["key"], r["format"], r["threads"]) for r in repeats} == {
        ("mobilenet_v1_0.25_128", fmt, t) for fmt in ("float32", "int8") for t in (1, 2)}
    for r in repeats:
        assert r["second_ms"] > 0
        assert len(r["first_rounds_ms"]) == len(r["second_rounds_ms"]) == ROUNDS
        assert r["second_ms"] == min(r["second_rounds_ms"])
        for what in ("", "min_", "cpu_"):
            first, second = r[f"first_{what}ms"], r[f"second_{what}ms"]
            assert r[f"{what}diff_pct"] == 100.0 * (second - first) / first
    assert "## Repeatability" in (quick / "report.md").read_text()


def check_plots_are_real_pictures(quick):
    import matplotlib.image
    for name in ("int8_latency_vs_macs.png", "int8_latency_vs_params.png"):
        path = quick / name
        width, height = png_size(path)
        assert width >= 800 and height >= 500
        pixels = matplotlib.image.imread(path)[..., :3]
        colors = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colors) > 50  # text, axes, coloured points: not a blank canvas
        blue = np.sum((pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.3))
        assert blue > 50  # MobileNet's blue points are drawn
    # No accuracy measured and none published for these sizes: no accuracy plot.
    assert not (quick / "accuracy_vs_macs.png").exists()


def check_second_run_reuses_results(quick, capsys):
    before = json.loads((quick / "results.json").read_text())["records"]
    assert compare.main(QUICK_ARGS + ["--out", str(quick), "--repeat-check", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped") == len(KEYS)
    after = json.loads((quick / "results.json").read_text())
    assert after["records"] == before and after["repeatability"] == []
    assert f"{len(KEYS)} of {len(KEYS)} models reused" in (quick / "report.md").read_text()


def check_interrupted_rounds_are_completed(quick, capsys):
    """A run stopped after pass 1 left records with one round: the next run re-exports
    those models and times only the missing rounds."""
    cached = quick / "models" / "resnet20_16.json"
    record = json.loads(cached.read_text())
    for by_threads in record["latency_rounds"].values():
        for threads in by_threads:
            by_threads[threads] = by_threads[threads][:1]
    cached.write_text(json.dumps(record))
    assert compare.main(QUICK_ARGS + ["--out", str(quick), "--repeat-check", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"resnet20_16: measured {record['measured_at']}, 1 of {ROUNDS} rounds timed" in printed
    assert "re-exporting resnet20_16" in printed and "re-exporting mobilenet" not in printed
    again = json.loads(cached.read_text())
    for fmt, by_threads in again["latency_rounds"].items():
        for threads, rounds in by_threads.items():
            assert len(rounds) == ROUNDS
            assert rounds[0] == record["latency_rounds"][fmt][threads][0]


@pytest.mark.parametrize("argv, message", [
    (["--quick", "--model", "resnet21"], "did you mean"),
    (["--quick", "--model", "resnet20", "--alpha", "0.5"], "--alpha applies"),
    (["--quick", "--model", "resnet20", "--res", "64"], "NAME@SIDE"),
    (["--quick", "--model", "mobilenet_v1", "--res", "100"], "multiple of 32"),
    (["--quick", "--model", "resnet20@4"], "at least 8"),
    (["--quick", "--model", "resnet20@x"], "positive integer"),
    (["--model", "resnet20"], "give --quick"),
    (["--quick", "--dataset", "digits", "--model", "resnet20"], "does not go with"),
    (["--quick", "--model", "resnet20", "--threads", "0"], "argument --threads: expected an integer >= 1"),
    (["--quick", "--model", "resnet20", "--rounds", "0"], "argument --rounds: expected an integer >= 1"),
    (["--quick", "--model", "resnet20", "resnet20@32"], "asked for twice"),
    (["--checkpoint", "no/such/run"], "no training run"),
    ([], "give --model"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    err = refused(compare.main, argv, prog="compare", capsys=capsys, out=tmp_path / "out")
    assert message in err, err


def test_out_is_a_file(tmp_path, capsys):
    from tfresnet.utils import cli
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(SystemExit):
        cli.run(compare.main, ["--quick", "--model", "resnet20", "--out", str(out)])
    assert "is a file" in capsys.readouterr().err
    assert out.read_text() == "x"


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_accuracy_with_a_dataset(tmp_path):
    """Trains ResNet-20 briefly on 8x8 digits; float, INT8 and Keras accuracy reported."""
    out = tmp_path / "acc"
    assert compare.main(["--model", "resnet20@8", "--dataset", "digits", "--epochs", "2",
                         "--eval-images", "200", "--calibration", "32",
                         "--runs", "3", "--warmup", "1", "--min-seconds", "0",
                         "--repeat-check", "0", "--threads", "1", "--out", str(out)]) == 0
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["accuracy_dataset"] == "digits" and row["accuracy_images"] == 200
    # Something was learned: 10 classes, chance is 10%.
    assert row["accuracy_keras"] > 0.8 and row["accuracy_int8"] > 0.8, row
    # The float TFLite file computes what the Keras model computes.
    assert row["accuracy_float32"] == pytest.approx(row["accuracy_keras"], abs=0.011)
    # INT8 calibrated on real training images stays close to float.
    assert row["accuracy_int8"] == pytest.approx(row["accuracy_float32"], abs=0.1)
    table = markdown_rows((out / "report.md").read_text())["resnet20_8"]
    assert table["acc f32 %"] == f"{100 * row['accuracy_float32']:.1f}"
    assert table["acc int8 %"] == f"{100 * row['accuracy_int8']:.1f}"
    assert "int8 ms 2 thr" not in table  # --threads 1
    assert png_size(out / "accuracy_vs_macs.png")[0] >= 800
    assert (out / "runs" / "resnet20_8" / "model.keras").is_file()
    # The run dir it trained in is a checkpoint another comparison can evaluate.
    config, run_config = compare.checkpoint_config(str(out / "runs" / "resnet20_8"))
    assert (config.model, config.alpha, config.side) == ("resnet20", None, 8)
    assert run_config["dataset"] == "digits"
    assert config.key == "resnet20_8_resnet20_8"
    assert measure.checkpoint_stamp(config.checkpoint) > 0

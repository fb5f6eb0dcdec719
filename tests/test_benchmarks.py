"""The benchmarks are not tests, but their command lines follow the package's rules:
bad input is one line on stderr (TensorFlow's C++ start-up lines included) and exit 2."""

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, argv, message", [
    ("bench_int8.py", ["--rounds", "0"], "argument --rounds: expected an integer >= 1"),
    ("bench_int8.py", ["--json", "/proc/no/such/figures.json"], "is not writable"),
    ("bench_train.py", ["--model", "resnet21"], "Unknown model 'resnet21'"),
    ("bench_formats.py", ["--formats", "int4"], "unknown format 'int4'"),
    ("bench_formats.py", ["--models", "resnet21"], "Unknown model 'resnet21'"),
])
def test_bad_flag_is_one_line_and_exit_2(tmp_path, script, argv, message):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *argv],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []

"""The benchmarks are not tests, but their command lines follow the package's rules:
bad input is one line on stderr and exit 2, nothing written. In this process; the real
commands' stderr (TensorFlow's C++ start-up lines included) is tests/cli/test_bad_input.py's."""

import importlib.util
import pathlib

import pytest

from helpers.cli_refusal import refused

REPO = pathlib.Path(__file__).resolve().parents[2]


def script(name):
    """The benchmark script ``benchmarks/NAME`` as a module (its __main__ does not run)."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"),
                                                  REPO / "benchmarks" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, argv, message", [
    ("bench_int8.py", ["--rounds", "0"], "argument --rounds: expected an integer >= 1"),
    ("bench_int8.py", ["--json", "/proc/no/such/figures.json"], "is not writable"),
    ("bench_train.py", ["--model", "resnet21"], "Unknown model 'resnet21'"),
    ("bench_formats.py", ["--formats", "int4"], "unknown format 'int4'"),
    ("bench_formats.py", ["--models", "resnet21"], "Unknown model 'resnet21'"),
    ("bench_cli.py", ["--runs", "0"], "argument --runs: expected an integer >= 1"),
    ("bench_cli.py", ["--json", "/proc/no/such/figures.json"], "is not writable"),
    ("bench_transfer.py", ["--epochs", "1"], "argument --epochs: expected an integer >= 2"),
])
def test_bad_flag_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, name, argv, message):
    module = script(name)
    monkeypatch.chdir(tmp_path)
    err = refused(module.main, argv, prog=module.PROG, capsys=capsys)
    assert message in err, err
    assert list(tmp_path.iterdir()) == []

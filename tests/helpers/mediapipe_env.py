"""A cached virtual environment with MediaPipe, the real client our .tflite files are tested with.

mediapipe 1.2.2 pins its own absl-py (it could not be installed beside
tensorflow-model-optimization 0.8.1, which the package used before Keras 3:
shared/REFERENCE.md), so the tests give it its own venv, made once
with ``python -m venv`` + ``pip install mediapipe==1.2.2`` and reused afterwards:
``$TFRESNET_MEDIAPIPE_VENV``, else ``~/.cache/tfresnet/mediapipe-venv``. A file lock keeps
parallel test workers from building it twice. When pip cannot reach the package
registry (a network error) the test is skipped, with a warning in the test summary
(:func:`python_or_skip`); any other install failure is an error, including pip's "No
matching distribution found" / "Could not find a version" on their own, which is what
pip says when no mediapipe wheel exists for this Python.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys

MEDIAPIPE_VERSION = "1.2.2"
REPO = pathlib.Path(__file__).resolve().parents[2]
CHECK_SCRIPT = REPO / "tests" / "helpers" / "mediapipe_check.py"
_READY = ".tfresnet-ready"
# What pip prints when the registry cannot be reached (and only then).
_NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection",
                   "Temporary failure in name resolution", "Network is unreachable",
                   "ConnectionError", "ReadTimeoutError", "Max retries exceeded")


class MediaPipeUnavailable(RuntimeError):
    """The venv cannot be made because the package registry is out of reach."""


def venv_dir() -> pathlib.Path:
    default = pathlib.Path.home() / ".cache" / "tfresnet" / "mediapipe-venv"
    return pathlib.Path(os.environ.get("TFRESNET_MEDIAPIPE_VENV") or default)


def python_path(timeout=1200) -> pathlib.Path:
    """The venv's python, making the venv first if needed.

    Raises:
      MediaPipeUnavailable: pip could not reach the registry.
      RuntimeError: the venv or the install failed for another reason.
    """
    folder = venv_dir()
    python = folder / "bin" / "python"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_ready(folder):
            return python
        print(f"making the MediaPipe venv {folder} (once)", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(folder)], timeout=120)
        pip = _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    f"mediapipe=={MEDIAPIPE_VERSION}"], timeout=timeout, check=False)
        if pip.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            last = (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
            if any(sign in pip.stderr for sign in _NETWORK_ERRORS):
                raise MediaPipeUnavailable(
                    f"pip cannot install mediapipe=={MEDIAPIPE_VERSION} (no registry?): {last}")
            raise RuntimeError(f"pip install mediapipe=={MEDIAPIPE_VERSION} failed: {last}")
        (folder / _READY).write_text(MEDIAPIPE_VERSION)
    return python


def python_or_skip() -> pathlib.Path:
    """:func:`python_path`, or a loud skip (a warning in the summary) when the package
    registry cannot be reached."""
    import warnings

    import pytest
    try:
        return python_path()
    except MediaPipeUnavailable as err:
        message = f"MEDIAPIPE NOT TESTED (registry unreachable): {err}"
        print(message, file=sys.stderr)
        warnings.warn(message)
        pytest.skip(message)


def _is_ready(folder):
    """A finished install of the right version whose interpreter still runs from here."""
    ready = folder / _READY
    return ((folder / "bin" / "python").exists() and ready.exists()
            and ready.read_text().strip() == MEDIAPIPE_VERSION)


def classify(python, model_path, image_paths, max_results=-1):
    """Runs tests/helpers/mediapipe_check.py in the venv: one result dict per image.

    Raises:
      RuntimeError: MediaPipe refused the model (its one-line message is the text).
    """
    cmd = [str(python), str(CHECK_SCRIPT), str(model_path), *map(str, image_paths),
           "--max-results", str(max_results)]
    done = _run(cmd, timeout=300, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        raise RuntimeError(lines[-1])
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def assert_same_top1(python, model_paths, images, folder):
    """MediaPipe's ImageClassifier gives each file our runner's top-1 on ``images``
    (uint8 [N, H, W, 3], written as PNGs into ``folder``), named from its labels."""
    from PIL import Image

    from export import convert

    paths = []
    for i, image in enumerate(images):
        paths.append(pathlib.Path(folder) / f"digit{i}.png")
        Image.fromarray(image).save(paths[-1])
    for model_path in model_paths:
        ours = convert.Runner(model_path).predict(images).argmax(-1)
        found = classify(python, model_path, paths)
        assert [r["top1"]["index"] for r in found] == list(ours), model_path
        assert [r["top1"]["category_name"] for r in found] == [str(i) for i in ours]


def _run(cmd, timeout, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[-500:]}")
    return done

"""The library never prints a command's flags: it raises and warns in its settings' words
(``... Received: alpha=0``), and each command line says them in its flags in one place
(:func:`tfresnet.utils.cli.flag_words` with the command's table)."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from tfresnet.utils import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARY = ("tfresnet", "export")
# The command modules (their parsers and the errors they map), the flag helpers, and the
# compare job, whose grid (make_configs) and plot are told its command's flags.
COMMANDS = {"command.py", "profile_command.py", "debug.py", "__main__.py", "flags.py", "cli.py"}
FLAG_TALK = {"export/compare/job.py", "export/compare/plots.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _said(tree):
    """(line, text) of every string the module may print or raise: not a docstring, not
    a help text (``help=``, a ``*HELP*`` table)."""
    quiet = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            quiet.add(id(body[0].value))
        helps = ([node.value] if isinstance(node, ast.keyword) and node.arg == "help" else
                 [node.value] if isinstance(node, ast.Assign) and any(
                     isinstance(t, ast.Name) and "HELP" in t.id for t in node.targets) else [])
        for value in helps:
            quiet.update(id(n) for n in ast.walk(value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in quiet:
            yield node.lineno, node.value


def test_the_library_raises_and_warns_in_its_settings_words():
    found = []
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if path.name in COMMANDS or where in FLAG_TALK:
                continue
            for line, text in _said(ast.parse(path.read_text())):
                # a command line quoted as advice ("python -m tfresnet.train ...") is kept
                if FLAG.search(text) and "python -m " not in text:
                    found.append(f"{where}:{line}: {text.strip()[:80]}")
    assert not found, "flags in the library's words:\n" + "\n".join(found)


def test_one_mapping_says_the_settings_as_flags():
    """Every value (``given=None``), or only the values the flags gave; a setting in
    backticks is its flag wherever it stands."""
    flags = {"freeze_epochs": "--freeze-epochs", "epochs": "--epochs", "out_dir": "--out",
             "overwrite": "--overwrite", "formats": "--formats", "batch_size": "--batch-size"}
    text = ("`freeze_epochs` (3) is larger than `epochs` (2). "
            "Received: freeze_epochs=3, epochs=2")
    said = "--freeze-epochs (3) is larger than --epochs (2). Received: --freeze-epochs=3, --epochs=2"
    assert cli.flag_words(text, flags) == said
    assert cli.flag_words(text, flags, {"freeze_epochs": 3, "epochs": 2}) == said
    assert cli.flag_words(text, flags, {"freeze_epochs": 3}).endswith(
        "Received: --freeze-epochs=3, epochs=2")  # the recipe's epochs, not the flag's
    assert cli.flag_words("pass `overwrite=True` or choose another `out_dir`", flags) == (
        "pass --overwrite or choose another --out")
    assert cli.flag_words("formats must hold int8. Received: formats=['a', 'b']", flags) == (
        "--formats must hold int8. Received: --formats=a b")
    assert cli.flag_words("batch_size=8 then. Received: out_dir='r'", flags) == (
        "--batch-size 8 then. Received: --out=r")
    kept = "run MobileNet(batch_size=8). Received: batch_size=128"
    assert cli.flag_words(kept, flags, {"batch_size": 8}) == kept


@pytest.mark.parametrize("call", ["fit", "variant"])
def test_a_library_call_gets_the_api_words(call, tmp_path):
    """No command line: the settings' names, no ``--``."""
    with pytest.raises(ValueError) as err:
        if call == "fit":
            from tfresnet.training.phases import plan_phases
            plan_phases(2, 3, None, None)  # what fit(..., weights=..., epochs=2, freeze_epochs=3) runs first
        else:
            from tfresnet.models.variant import ModelVariant
            ModelVariant("mobilenet_v1", 0, 160).check()
    assert "--" not in str(err.value)
    assert re.search(r"Received: (freeze_epochs=3, epochs=2|alpha=0)$", str(err.value))

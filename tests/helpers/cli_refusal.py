"""The in-process check every CLI's bad-input tests share."""

import pytest

from tfresnet.utils import cli


def refused(main, argv, *, prog, capsys, out=None) -> str:
    """Runs ``main`` as its command line does, with ``--out OUT`` added when ``out`` is
    given; asserts exit status 2, one line on stderr and nothing written at ``out``.
    Returns that line."""
    argv = [*argv, "--out", str(out)] if out is not None else list(argv)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, argv, prog=prog)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert out is None or not out.exists()
    return err

"""The README's Python blocks run as pasted, and every relative link in the docs resolves.

README.md is the package's front page (see docs/): each fenced ```python block in it is
executed, in a fresh namespace with the working folder in a tmp dir, so what a user
pastes works offline. Links between README.md, docs/*.md and the rest of the repository
must point to files that exist, and the front page stays short.
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_BYTES = 12_500

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# [text](target): a target without a scheme or a leading '#' is a relative link.
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def python_blocks(text):
    """(first line number, code) of each fenced ```python block of a Markdown text."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]


def relative_links(text):
    """The link targets of a Markdown text that are paths in the repository."""
    targets = []
    for target in _LINK.findall(text):
        if target.startswith("#") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue  # an anchor on the same page, or http:, https:, mailto:, ...
        targets.append(target.split("#", 1)[0])
    return targets


def doc_pages():
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_has_python_blocks():
    assert python_blocks(README.read_text(encoding="utf-8")), (
        "README.md has no ```python block: the API example is missing")


@pytest.mark.parametrize("line,code", python_blocks(README.read_text(encoding="utf-8")),
                         ids=lambda v: f"line{v}" if isinstance(v, int) else None)
def test_readme_python_block_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the block writes stays in the tmp dir
    namespace = {"__name__": "__readme__"}
    try:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
    except Exception as err:
        pytest.fail(f"README.md's ```python block at line {line} failed: "
                    f"{type(err).__name__}: {err}")


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    missing = [t for t in relative_links(text) if t and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_docs_pages_exist():
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages, "docs/ holds no .md page"
    linked = {os.path.normpath(t) for t in relative_links(README.read_text(encoding="utf-8"))}
    unlinked = [p for p in pages if os.path.join("docs", p) not in linked]
    assert not unlinked, f"docs pages the README does not link to: {unlinked}"


def test_readme_is_a_front_page():
    size = README.stat().st_size
    assert size <= MAX_README_BYTES, (
        f"README.md is {size:,} bytes; the front page stays under {MAX_README_BYTES:,}: "
        "move the details into a docs/ page")

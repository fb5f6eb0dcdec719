"""One table formatter for every report and terminal table of the package."""

from __future__ import annotations


def table(header, rows, *, markdown: bool = False, left: int = 1, rule: bool = False) -> str:
    """Rows as a Markdown table or as aligned plain text.

    Args:
      header: the column titles.
      rows: sequences of cells (each shown with ``str``), as many as ``header``.
      markdown: ``| a | b |`` lines under a ``|---|---:|`` alignment row; else columns
        padded to their widest cell and separated by two spaces.
      left: how many leading columns are left-aligned; the others (numbers) are
        right-aligned.
      rule: plain text only: a dashed line under the header.

    Returns:
      The table, lines joined by newlines (no trailing newline).
    """
    header = [str(c) for c in header]
    rows = [[str(c) for c in row] for row in rows]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"every row needs {len(header)} cells. Received: {row}")
    if markdown:
        align = "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"
        return "\n".join([_markdown_line(header), align] + [_markdown_line(r) for r in rows])
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths))).rstrip()
             for line in [header, *rows]]
    if rule:
        lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _markdown_line(cells) -> str:
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

"""Rendering executed notebooks to HTML: nbconvert with no script from the network, and the reader's layout of a
report (the answer first, code hidden, the machine's folders redacted).

Not running notebooks (``report.py``). The page is standalone: nbconvert's lab template would load require.js and
MathJax from a CDN; this module leaves them (and the widget and mermaid loaders) out, so a report opens offline and
calls no third party. Math in markdown is shown as its TeX source.
"""
from __future__ import annotations

import re
from pathlib import Path

from .files import atomic_write

TOP_TAG = "report-top-"  # report-top-1, report-top-2, ...: these cells' outputs open the reader's page, in that order
HIDE_TAG = "report-hide"  # left out of the reader's page (the teaching introduction, exercises); kept with the code
# nbconvert's lab template without the blocks that load scripts from a CDN (require.js, MathJax, mermaid, widgets)
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def to_html(notebook: str | Path, html: str | Path, with_code: bool = True, layout: dict | None = None) -> Path:
    """Render an executed notebook to a standalone HTML file.

    ``with_code=False`` hides every code cell's input (nbconvert's documented ``exclude_input``, with the prompts).
    ``layout``: keyword arguments of :func:`arrange_report` (title, command, redact) and ``page_title`` (the
    browser tab's), for the reader's report.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    name = Path(notebook).stem
    if layout is not None:
        layout = dict(layout)
        name = layout.pop("page_title", None) or name
        nb = arrange_report(nb, with_code=with_code, **layout)
    hide = not with_code
    exporter = HTMLExporter(template_name="lab", exclude_input=hide, exclude_input_prompt=hide,
                            exclude_output_prompt=hide)
    exporter.raw_template = OFFLINE_TEMPLATE
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    return atomic_write(html, body)


def _top_rank(cell) -> int | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(TOP_TAG) and tag[len(TOP_TAG):].isdigit():
            return int(tag[len(TOP_TAG):])
    return None


def _redactor(redact):
    """A function replacing each absolute folder of ``redact`` (``[(folder, shown as)]``, longest first) in a text."""
    pairs = []
    for folder, shown in redact or ():
        folder = str(folder).rstrip("/\\")
        if len(Path(folder).parts) >= 2:  # never "/" or "C:\\": that would rewrite every path
            pairs.append((folder, shown))
    pairs.sort(key=lambda p: -len(p[0]))
    patterns = [(re.compile(re.escape(f) + r"(?![\w.-])"), shown) for f, shown in pairs]

    def apply(text):
        if isinstance(text, list):
            return [apply(t) for t in text]
        if not isinstance(text, str):
            return text
        for pattern, shown in patterns:
            text = pattern.sub(lambda _m, s=shown: s, text)
        return text

    return apply


def arrange_report(nb, title: str = "", command: str = "", with_code: bool = False, redact=()):
    """The reader's layout of an executed report notebook (a copy; the notebook itself is not changed).

    The page opens with ``title`` (markdown), the outputs of the cells tagged ``report-top-N`` in the order of N
    (without their code), and ``command`` (the exact command line that reproduces the run), then "Details": the
    notebook in its own order. Without the code (the default report), the cells tagged ``report-hide`` and code
    cells with no output are left out, and a tagged cell's old place says where its output went; with the code,
    every cell stays where it was. ``redact``: ``[(absolute folder, shown as)]`` replaced in every output (and, with
    the code, every source), so no folder of the machine that ran it appears.
    """
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    clean = _redactor(redact)
    for cell in nb.cells:
        if with_code:
            cell.source = clean(cell.source)
        for out in cell.get("outputs", []):
            for key in ("text", "traceback", "evalue"):
                if key in out:
                    out[key] = clean(out[key])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    out["data"][mime] = clean(value)
    top = sorted((rank, i) for i, c in enumerate(nb.cells) if (rank := _top_rank(c)) is not None)
    head = [nbformat.v4.new_markdown_cell(title)] if title else []
    for _, i in top:
        shown = copy.deepcopy(nb.cells[i])
        if "id" in shown:
            shown.id = f"top-{shown.id}"[:64]  # the original may stay in place (with the code): ids must differ
        if shown.cell_type == "code":  # the output only: nbconvert's templates honour this flag
            shown.metadata.setdefault("transient", {})["remove_source"] = True
            shown.execution_count = None
        head.append(shown)
    if command:
        head.append(nbformat.v4.new_markdown_cell("**Reproduce this run**\n\n```bash\n" + command + "\n```"))
    head.append(nbformat.v4.new_markdown_cell(
        "---\n## Details\nEvery table and figure of the run, in the order the notebook computes them. "
        + ("" if with_code else "The code is in `report.ipynb` next to this page (or run with `--with-code`).")))
    moved = {i for _, i in top}
    body = []
    for i, cell in enumerate(nb.cells):
        if not with_code:
            if HIDE_TAG in cell.get("metadata", {}).get("tags", []):
                continue
            if i in moved:
                if body and body[-1].cell_type == "markdown":  # a heading would otherwise stand over nothing
                    body.append(nbformat.v4.new_markdown_cell("*(shown at the top of this report)*"))
                continue
            if cell.cell_type == "code" and not cell.get("outputs"):
                continue
        body.append(cell)
    nb.cells = head + body
    return nb



"""Every notebook runs headless under papermill with small parameters, and renders to HTML.

nbval (run by `make test` over notebooks/) re-executes the committed notebooks with their defaults and compares the
cells marked NBVAL_CHECK_OUTPUT; this file covers the parameterized, headless path that `make report` uses.
With ``COURSE_EXECUTED_DIR`` set (.ci/run sets it), each executed copy is kept there, and the browser check
(`make check-lab CHECK_LAB_ARGS="--executed DIR"`) opens those copies instead of running the same notebooks with the
same parameters again. The MovieLens run of 00 always runs here.
"""
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib import report
from tests.ci_parameters import CI_PARAMETERS

NOTEBOOKS = report.list_notebooks()
FIXTURE = Path(__file__).parent / "fixtures" / "ml-100k-tiny"
SMALL = CI_PARAMETERS  # small parameters per notebook, shared with the browser check; others run at defaults


def _errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.papermill
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path, tmp_path):
    out = tmp_path / path.name
    params = dict(SMALL.get(path.stem, {}))
    if "OUTPUT_DIR" in report.notebook_parameters(path):
        params["OUTPUT_DIR"] = str(tmp_path / "out")
    report.execute(path, out, params)
    nb = nbformat.read(str(out), as_version=4)
    assert not _errors(nb)
    html = report.to_html(out, tmp_path / f"{path.stem}.html")
    assert html.stat().st_size > 10_000
    keep = os.environ.get("COURSE_EXECUTED_DIR")
    if keep:  # for the browser check: the same run, opened in JupyterLab rather than run twice
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, Path(keep) / path.name)


@pytest.mark.slow
@pytest.mark.notebook
def test_welcome_runs_on_movielens_files(tmp_path):
    data = tmp_path / "ml"
    shutil.copytree(FIXTURE, data)
    out = tmp_path / "00.ipynb"
    report.execute(report.NOTEBOOK_DIR / "00_welcome.ipynb", out,
                   {"DATASET": "movielens-100k", "DATA_DIR": str(data), "N_ITEMS_SHOWN": 2})
    nb = nbformat.read(str(out), as_version=4)
    assert not _errors(nb)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells for o in c.get("outputs", []))
    assert "Toy Story" in text or "movielens" in text.lower()


def test_committed_notebooks_are_executed_and_clean():
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{path.name}: commit it executed (make notebooks)"
        assert not _errors(nb), f"{path.name} has an error output"
        tags = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tags) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
        uses = any("INTERACTIVE" in c.source for c in code if c is not tags[0])
        assert uses == ("INTERACTIVE" in tags[0].source), (
            f"{path.name}: declare INTERACTIVE in the parameters cell exactly when a cell uses it (widgets)")
        assert nb.metadata["kernelspec"]["name"] == report.KERNEL_NAME, (
            f"{path.name}: kernelspec must be {report.KERNEL_NAME!r} (the kit's kernel, registered by make install)")
        assert "widgets" not in nb.metadata, f"{path.name}: commit it without JupyterLab's widget state (make notebooks)"

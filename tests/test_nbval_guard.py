"""nbval guards the lessons' numbers: with the Makefile's own nbval flags, a notebook whose committed output of a
`# NBVAL_CHECK_OUTPUT` cell was edited fails, while a timing in it (sanitised) and an unmarked cell do not."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def nbval_flags() -> list[str]:
    """The flags `make test` gives nbval (NBVAL_ARGS in the Makefile), without the notebooks folder."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(r"^NBVAL_ARGS\s*:=\s*((?:.*\\\n)*.*)$", text, re.M)
    assert m, "the Makefile defines NBVAL_ARGS"
    words = m.group(1).replace("\\\n", " ").split()
    assert words[0] == "notebooks" and "--nbval-lax" in words
    return [w.replace("tests/", str(ROOT / "tests") + "/") for w in words[1:]]


def _notebook(path: Path, checked_output: str, unchecked_output: str = "anything\n") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(f'NDCG@10 {0.1343:.4f} in {1.25:.2f} s')")
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text=checked_output)]
    checked.execution_count = 1
    free = nbformat.v4.new_code_cell("print('a value nbval does not compare')")
    free.outputs = [nbformat.v4.new_output("stream", name="stdout", text=unchecked_output)]
    free.execution_count = 2
    nb.cells = [checked, free]
    nbformat.write(nb, str(path))
    return path


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(path), *nbval_flags(), "-p", "no:cacheprovider",
                           "-q", "--rootdir", str(path.parent)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_edited_checked_output_fails_and_a_timing_does_not(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "NDCG@10 0.1343 in 9.99 s\n")  # a different time: sanitised
    run = _nbval(good)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    edited = _notebook(tmp_path / "edited.ipynb", "NDCG@10 0.1500 in 1.25 s\n")  # the lesson's number changed
    run = _nbval(edited)
    assert run.returncode != 0 and "0.1500" in run.stdout, run.stdout[-2000:]


def test_every_notebook_checks_some_output():
    """Each notebook marks at least one cell whose output carries its lesson's numbers."""
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        marked = [c for c in nb.cells if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source]
        assert marked, f"{path.name}: mark the cells that print the lesson's numbers with # NBVAL_CHECK_OUTPUT"
        assert all(c.outputs for c in marked), f"{path.name}: a NBVAL_CHECK_OUTPUT cell has no committed output"

"""The report's parts, each on its own: kernels (no IPython history, git read without its lock), parameters (an
escaped comma, the pre-checks following SPLIT / FAST / SEED like the run), and rendering (no script from the
network)."""
import re
import sqlite3
import subprocess

import nbformat
import pytest

from course_lib import constants as C
from course_lib import kernels, params, render, report
from course_lib.data import load_shop, make_split


# ---- parameters ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    (r"TEXT_MODEL=a\,b", "a,b"),             # an escaped comma is part of the value
    ('TEXT_MODEL="a,b"', "a,b"),             # so is a comma inside a quoted (Python or JSON) string
    ("TEXT_MODEL='a,b'", "a,b"),
])
def test_a_comma_can_be_part_of_one_string_value(text, value):
    name, parsed = report.parse_param(text)
    assert (name, parsed) == ("TEXT_MODEL", value)
    fixed, sweep = report.find_sweep({name: parsed})
    assert sweep is None and fixed == {"TEXT_MODEL": value} and type(fixed["TEXT_MODEL"]) is str


def test_escaped_commas_stay_inside_sweep_values():
    fixed, sweep = report.find_sweep(dict([report.parse_param(r"TEXT_MODEL=a\,b,c")]))
    assert fixed == {} and sweep == ("TEXT_MODEL", ["a,b", "c"])
    assert all(type(v) is str for v in sweep[1])
    fixed, sweep = report.find_sweep(dict([report.parse_param("TEXT_MODEL=a,b")]))  # plain commas still sweep
    assert sweep == ("TEXT_MODEL", ["a", "b"])


def test_the_reproducing_command_escapes_commas_so_it_reads_back():
    cmd = report.report_command("out", {"DATASET": "shop", "TEXT_MODEL": "a,b", "K": 5}).splitlines()[0]
    import shlex

    args = shlex.split(cmd)
    given = dict(report.parse_param(args[i + 1]) for i, a in enumerate(args) if a == "--param")
    fixed, sweep = report.find_sweep(given)
    assert sweep is None and fixed == {"TEXT_MODEL": "a,b", "K": 5}


def test_help_and_readme_say_how_to_escape_a_comma():
    from conftest import ROOT

    r = subprocess.run([__import__("sys").executable, "-m", "course_lib", "report", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "\\," in r.stdout, r.stdout
    assert "\\," in (ROOT / "README.md").read_text(encoding="utf-8")


def _expected_facts(dataset_kwargs, split_kind, frac):
    """The test and validation users the run will see, computed without the pre-check's code."""
    from conftest import ROOT

    ds = load_shop(ROOT / "data" / "shop")
    if dataset_kwargs:
        ds = ds.sample_users(**dataset_kwargs)
    outer = make_split(ds.interactions, split_kind, frac)
    inner = make_split(outer.train, split_kind, frac)
    return {"users": len(ds.users), "test users": outer.test[C.USER].nunique(),
            "validation users": inner.test[C.USER].nunique()}


@pytest.mark.parametrize("given, sample, split_kind", [
    ({"SPLIT": "per-user"}, None, "per-user"),
    ({"SPLIT": "global", "FAST": True, "SEED": 7}, {"n": 300, "seed": 7}, "global"),
    ({"SPLIT": "per-user", "FAST": True, "SEED": 3}, {"n": 300, "seed": 3}, "per-user"),
])
def test_prechecks_see_the_split_and_users_the_run_will(given, sample, split_kind):
    facts = report.precheck_report({"DATASET": "shop", "TEST_FRAC": 0.2, **given})
    expected = _expected_facts(sample, split_kind, 0.2)
    assert {k: facts[k] for k in expected} == expected
    assert params.FAST_USERS == 300 and params.run_settings(True)["note"].startswith("FAST run: 300 random users")


def test_report_splits_is_make_split_twice(shop):
    outer, inner = params.report_splits(shop.interactions, "per-user", 0.25)
    ref = make_split(shop.interactions, "per-user", 0.25)
    assert outer.fingerprint() == ref.fingerprint()
    assert inner.fingerprint() == make_split(ref.train, "per-user", 0.25).fingerprint()


# ---- kernels -------------------------------------------------------------------------------------------------
def test_a_headless_run_adds_no_session_to_the_ipython_history(tmp_path, monkeypatch):
    """The kernel starts with history off: the user's history database gets no row (here a private IPYTHONDIR)."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print('history', get_ipython().history_manager.enabled)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(src))
    done = report.execute(src, tmp_path / "out" / "tiny.ipynb")
    assert "history False" in done.cells[0].outputs[0]["text"]
    db = tmp_path / "ipython" / "profile_default" / "history.sqlite"
    if db.exists():  # IPython may create the file; it must hold no session of this run
        with sqlite3.connect(db) as con:
            assert con.execute("select count(*) from sessions").fetchone()[0] == 0
    assert "--HistoryManager.enabled=False" in kernels.KERNEL_ARGUMENTS


def test_the_kit_version_is_read_without_the_index_lock(monkeypatch):
    calls = []
    real = subprocess.run

    def spy(args, **kw):
        calls.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    version = report._kit_version()
    assert calls and calls[0][:2] == ["git", "--no-optional-locks"] and "describe" in calls[0]
    assert version is None or re.fullmatch(r"at commit [0-9a-f]{7,}(-dirty)?", version), version


# ---- rendering -----------------------------------------------------------------------------------------------
def test_html_loads_no_script_from_the_network(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\nSome text."),
        nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[nbformat.v4.new_output(
            "execute_result", {"text/plain": "2"}, execution_count=1)])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                           "version_minor": 0}}
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    for kwargs in ({}, {"with_code": False, "layout": {"title": "# Report", "command": "python -m x"}}):
        html = render.to_html(tmp_path / "n.ipynb", tmp_path / "n.html", **kwargs).read_text()
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", html), re.findall(r"<script[^>]*>", html)
        assert "cdnjs" not in html and "unpkg" not in html and "jsdelivr" not in html and "require.js" not in html
        assert "Title" in html and ">2<" in html.replace("\n", "")

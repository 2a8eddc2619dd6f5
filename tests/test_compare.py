"""Comparing report runs (fake run folders with per-user values chosen by hand: no notebook runs), sweeps' parsing,
and the reader's layout of a report page (a tiny notebook, not executed)."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import bootstrap

from course_lib import compare, report
from course_lib.__main__ import main
from html_page import Page

USERS = [f"u{i}" for i in range(1, 7)]
GROUPS = ["returning"] * 4 + ["new"] * 2
EASE_A = [0.1, 0.2, 0.3, 0.4, 0.5, 0.0]
CONTENT_A = [0.0, 0.5, 0.2, 0.2, 0.1, 0.3]
CONTENT_STEP = [0.2, -0.1, 0.0, 0.3, 0.1, 0.1]  # run B − run A for content, user by user: mean 0.1


def write_run(folder: Path, values: dict, dataset="shop", fingerprint="sha256:" + "ab" * 32, shuffle=False,
              config=None) -> Path:
    """A run folder as the report writes it: per_user.csv (one row per (method, user)) and metrics.json."""
    rows = [{"method": m, "user": u, "group": g, "segment": "tail", "ndcg": v, "recall": v / 2}
            for m, vals in values.items() for u, g, v in zip(USERS, GROUPS, vals)]
    pu = pd.DataFrame(rows)
    if shuffle:  # pairing must follow the user ids, not the row order
        pu = pu.sample(frac=1, random_state=3)
    folder.mkdir(parents=True)
    pu.to_csv(folder / "per_user.csv", index=False)
    info = {"schema_version": 2, "config": {"dataset": dataset, "alpha": 0.4, "k": 10, **(config or {})},
            "split": {"fingerprint": fingerprint}, "per_user": {"file": "per_user.csv", "rows": len(pu)},
            "users": {"evaluated": len(USERS)}, "content_space": "text + picture (alpha 0.4)"}
    (folder / "metrics.json").write_text(json.dumps(info))
    return folder


@pytest.fixture()
def two_runs(tmp_path):
    a = write_run(tmp_path / "A", {"EASE": EASE_A, "content": CONTENT_A, "random": [0.0] * 6})
    b = write_run(tmp_path / "B", {"EASE": [v + 0.1 for v in EASE_A],
                                   "content": [v + s for v, s in zip(CONTENT_A, CONTENT_STEP)],
                                   "popularity": [0.1] * 6}, shuffle=True, config={"alpha": 1.0})
    return a, b


def test_compare_gives_the_known_paired_differences(two_runs):
    c = compare.compare_runs(two_runs, metrics=["ndcg"], n_boot=500, seed=7)
    p = c.paired.set_index("method")
    assert set(p.index) == {"EASE", "content"}  # in both runs; random and popularity are in one each
    assert any("random" in n and "popularity" in n and "one run only" in n for n in c.notes)
    # EASE: +0.1 for every user, so every resample of users gives +0.1: the interval is the point
    assert p.loc["EASE", ["difference", "lo", "hi"]].tolist() == pytest.approx([0.1, 0.1, 0.1])
    assert p.loc["EASE", "verdict"] == "B better" and p.loc["EASE", "users"] == 6
    # content: the interval is scipy's paired bootstrap of the hand-made per-user steps
    ref = bootstrap((np.array(CONTENT_A) + CONTENT_STEP, np.array(CONTENT_A)),
                    lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True, vectorized=True, n_resamples=500,
                    method="percentile", rng=np.random.default_rng(7)).confidence_interval
    assert p.loc["content", "difference"] == pytest.approx(0.1)
    assert p.loc["content", ["lo", "hi"]].tolist() == pytest.approx([ref.low, ref.high])
    assert p.loc["content", "mean (reference)"] == pytest.approx(np.mean(CONTENT_A))
    # side by side: the means of each run, and the parameter that differs is marked
    m = c.metrics.loc["ndcg"]
    assert m.loc["EASE", "A"] == pytest.approx(np.mean(EASE_A)) and m.loc["EASE", "B"] == pytest.approx(
        np.mean(EASE_A) + 0.1)
    assert np.isnan(m.loc["popularity", "A"]) and m.loc["popularity", "B"] == pytest.approx(0.1)
    assert c.parameters.loc["alpha", "differs"] == "≠" and c.parameters.loc["k", "differs"] == ""
    assert c.parameters.loc["alpha"].tolist()[1:] == ["0.4", "1.0"]


def test_compare_restricted_to_a_group(two_runs):
    c = compare.compare_runs(two_runs, metrics=["ndcg", "recall"], group="new", n_boot=200)
    p = c.paired.set_index(["metric", "method"])
    assert p.loc[("ndcg", "content"), "difference"] == pytest.approx(np.mean(CONTENT_STEP[4:]))  # u5, u6
    assert p.loc[("recall", "EASE"), "difference"] == pytest.approx(0.05)
    assert (c.paired["users"] == 2).all()


def test_different_splits_are_shown_side_by_side_but_never_paired(tmp_path):
    a = write_run(tmp_path / "A", {"EASE": EASE_A})
    b = write_run(tmp_path / "B", {"EASE": EASE_A}, fingerprint="sha256:" + "cd" * 32)
    c = compare.compare_runs([a, b])
    assert c.paired.empty
    assert any("different splits" in n and "not paired" in n for n in c.notes)
    assert c.metrics.loc[("ndcg", "EASE"), "B"] == pytest.approx(np.mean(EASE_A))
    assert "different splits" in c.to_text() and "split fingerprint" in c.to_text()


def test_same_split_but_other_users_are_not_paired(tmp_path):
    a = write_run(tmp_path / "A", {"EASE": EASE_A})
    b = write_run(tmp_path / "B", {"EASE": EASE_A})
    pu = pd.read_csv(b / "per_user.csv").iloc[1:]  # e.g. another TASK excludes a user
    pu.to_csv(b / "per_user.csv", index=False)
    info = json.loads((b / "metrics.json").read_text())
    info["per_user"]["rows"] = len(pu)
    (b / "metrics.json").write_text(json.dumps(info))
    c = compare.compare_runs([a, b])
    assert c.paired.empty and any("EASE: B scored 5 users and A 6" in n for n in c.notes)


def test_compare_cli_prints_and_writes_html(two_runs, tmp_path, capsys):
    rc = main(["compare", str(two_runs[0]), str(two_runs[1]), "--metric", "ndcg", "--out", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert rc == 0 and "Paired differences against A" in out and "B better" in out
    page = Page((tmp_path / "cmp" / "compare.html").read_text())
    text = " ".join(page.text)
    assert "Comparison of 2 runs of shop" in text and "+0.1000" in text and "B better" in text
    assert str(tmp_path) not in text + " ".join(page.attrs)


def fake_notebook():
    import nbformat

    v4 = nbformat.v4
    nb = v4.new_notebook()

    def code(source, text, tags=()):
        cell = v4.new_code_cell(source, execution_count=1, metadata={"tags": list(tags)})
        cell.outputs = [v4.new_output("stream", name="stdout", text=text)] if text is not None else []
        return cell

    nb.cells = [
        v4.new_markdown_cell("# 07 · teaching title", metadata={"tags": ["report-hide"]}),
        code("DATASET = 'shop'", None, ["parameters"]),
        code("config = load()", "config table: data in /machine/home/data/shop\n", ["report-top-3"]),
        v4.new_markdown_cell("## 4. Paired differences"),
        code("plot()", "the key figure\n", ["report-top-2"]),
        v4.new_markdown_cell("## 8. What this run says"),
        code("print(headlines)", "Best ndcg: hybrid\n", ["report-top-1"]),
        code("exercise = None", "not answered yet\n", ["report-hide"]),
        code("warn()", "/machine/kit/course_lib/x.py:3: Warning\n"),
    ]
    return nb


def test_reader_layout_puts_the_answer_first_and_hides_code(tmp_path):
    import nbformat

    layout = {"title": "# Recommendation report: shop", "command": "python -m course_lib report --out reports/x",
              "redact": [("/machine/kit", "<kit>"), ("/machine/home/data/shop", "data/shop"), ("/", "never")]}
    nb = report.arrange_report(fake_notebook(), **layout)
    texts = [c.source if c.cell_type == "markdown" else "".join(o.get("text", "") for o in c.outputs)
             for c in nb.cells]
    assert texts[:5] == ["# Recommendation report: shop", "Best ndcg: hybrid\n", "the key figure\n",
                         "config table: data in data/shop\n", "**Reproduce this run**\n\n```bash\n"
                         "python -m course_lib report --out reports/x\n```"]
    rest = texts[5:]
    assert rest[0].startswith("---\n## Details")
    assert "# 07 · teaching title" not in rest and "not answered yet\n" not in rest  # report-hide
    assert rest[1:] == ["## 4. Paired differences", "*(shown at the top of this report)*", "## 8. What this run says",
                        "*(shown at the top of this report)*", "<kit>/course_lib/x.py:3: Warning\n"]
    with_code = report.arrange_report(fake_notebook(), with_code=True, **layout)
    assert len(with_code.cells) == 6 + 9  # the head (title, 3 outputs, command, "Details"), then every cell
    assert [c.source for c in with_code.cells[6:]] == [c.source for c in fake_notebook().cells]
    # rendered: the head's cells show no code even with the code, and the default page has no input at all
    path = tmp_path / "nb.ipynb"
    nbformat.write(fake_notebook(), str(path))
    page = Page(report.to_html(path, tmp_path / "r.html", with_code=False, layout=layout).read_text())
    assert page.code_inputs() == [] and "Reproduce this run" in page.text  # the command is markdown, not code
    shown = Page(report.to_html(path, tmp_path / "c.html", with_code=True, layout=layout).read_text())
    assert shown.code_inputs()  # the check above can fail: with the code, inputs are there
    text = " ".join(page.text)
    assert "load()" not in text and "/machine" not in text and text.index("Best ndcg") < text.index("Details")


def test_report_command_reads_back_as_the_same_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    given = {"DATASET": "movielens-100k", "DATA_DIR": str(tmp_path / "data"), "ALPHA": 0.25, "FAST": True,
             "TEXT_MODEL": "a model, with spaces", "K": 5}
    line = report.report_command(tmp_path / "reports" / "x", given).splitlines()[0]
    assert str(tmp_path) not in line
    args = __import__("shlex").split(line)
    assert args[:4] == ["python", "-m", "course_lib", "report"]
    assert args[args.index("--data-dir") + 1] == "data" and args[args.index("--out") + 1] == "reports/x"
    params = dict(report.parse_param(a) for a, flag in zip(args[1:], args) if flag == "--param")
    assert params == {"ALPHA": 0.25, "FAST": True, "TEXT_MODEL": "a model, with spaces", "K": 5}
    outside = report.report_command("/elsewhere/out", {"DATASET": "shop", "DATA_DIR": "/elsewhere/data"})
    assert "'<data>'" in outside and "'<out>'" in outside and "/elsewhere" not in outside


@pytest.mark.parametrize("text,expected", [
    ("ALPHA=0,0.25,0.5", ("ALPHA", [0, 0.25, 0.5])),
    ("ALPHA=[0, 1]", ("ALPHA", [0, 1])),
    ("POOLING=mean,cls", ("POOLING", ["mean", "cls"])),
    ("FAST=true,false", ("FAST", [True, False])),
    ("ALPHA=0.5", None),
])
def test_find_sweep(text, expected):
    fixed, sweep = report.find_sweep(dict([report.parse_param(text), ("K", 5)]))
    assert sweep == expected and fixed == ({"K": 5} if expected else {"K": 5, **dict([report.parse_param(text)])})


@pytest.mark.parametrize("params,message", [
    (["ALPHA=[]"], "ALPHA=[]: the sweep is empty"),
    (["ALPHA=,"], "ALPHA=,: the sweep is empty"),
    (["ALPHA=0,,1"], "an empty value in the sweep"),
    (["ALPHA=0,"], "a sweep needs two or more values, got only 0"),
    (["ALPHA=0,1", "K=5,10"], "sweep one parameter at a time: ALPHA and K"),
    (["DATASET=shop,movielens-100k"], "DATASET cannot be swept: runs of different datasets"),
])
def test_bad_sweeps_are_refused(params, message):
    with pytest.raises(report.ReportParameterError, match=re.escape(message)):
        report.find_sweep(dict(report.parse_param(p) for p in params))


def test_sweep_runs_each_value_after_checking_them_all(tmp_path, monkeypatch):
    """The runner is replaced by one that writes fake runs: what is tested is the order, folders and comparison."""
    calls = []

    def fake_execute(out, given, timeout, with_code):
        calls.append(given["ALPHA"])
        shift = 0.1 * len(calls)
        write_run(out, {"EASE": [v + shift for v in EASE_A]}, config={"alpha": given["ALPHA"]})
        return {"seconds": 0.0, "html": out / "report.html"}

    monkeypatch.setattr(report, "_execute_report", fake_execute)
    lines = []
    done = report.run_sweep(tmp_path / "sweep", params={"FAST": True}, sweep=("ALPHA", [0, 0.5]), echo=lines.append)
    assert calls == [0.0, 0.5]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["ALPHA=0.0", "ALPHA=0.5", "compare.html"]
    assert lines == ["[1/2] ALPHA=0.0: running -> " + str(tmp_path / "sweep" / "ALPHA=0.0") + "/report.html",
                     "[1/2] ALPHA=0.0: done in 0.0 s",
                     "[2/2] ALPHA=0.5: running -> " + str(tmp_path / "sweep" / "ALPHA=0.5") + "/report.html",
                     "[2/2] ALPHA=0.5: done in 0.0 s"]
    p = done["comparison"].paired
    assert p["difference"].tolist() == pytest.approx([0.1, 0.05])  # ndcg, recall of EASE: +0.1 per user
    # a bad value anywhere in the sweep stops everything before the first run
    calls.clear()
    with pytest.raises(report.ReportParameterError, match=r"sweep value 3 of 3 \(ALPHA=2\): ALPHA must be between"):
        report.run_sweep(tmp_path / "bad", sweep=("ALPHA", [0, 0.5, 2]))
    assert calls == [] and not (tmp_path / "bad").exists()


def cli_error(capsys, *args) -> str:
    rc = main(list(map(str, args)))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (rc, err)
    return err[0]


def test_compare_refuses_runs_it_cannot_read_or_compare(tmp_path, capsys):
    a = write_run(tmp_path / "A", {"EASE": EASE_A})
    ml = write_run(tmp_path / "ML", {"EASE": EASE_A}, dataset="movielens-100k")
    assert "runs with different datasets (A: shop, ML: movielens-100k)" in cli_error(capsys, "compare", a, ml)
    old = write_run(tmp_path / "old", {"EASE": EASE_A})
    (old / "per_user.csv").unlink()
    assert "has no per_user.csv" in cli_error(capsys, "compare", a, old)
    bad = write_run(tmp_path / "bad", {"EASE": EASE_A})
    (bad / "metrics.json").write_text("{not json")
    assert "is not a report's metrics.json: not JSON" in cli_error(capsys, "compare", a, bad)
    other = write_run(tmp_path / "other", {"EASE": EASE_A})
    (other / "metrics.json").write_text(json.dumps({"schema_version": 1}))
    assert "schema_version 2 with a config expected, got 1" in cli_error(capsys, "compare", a, other)
    mixed = write_run(tmp_path / "mixed", {"EASE": EASE_A})
    pd.read_csv(mixed / "per_user.csv").iloc[:3].to_csv(mixed / "per_user.csv", index=False)
    assert "has 3 rows but its metrics.json says 6" in cli_error(capsys, "compare", a, mixed)
    b = write_run(tmp_path / "B", {"EASE": EASE_A})
    assert "--metric must be among the runs' metrics ['ndcg', 'recall'], got ['nope']" in cli_error(
        capsys, "compare", a, b, "--metric", "nope")
    assert "--group must be one of" in cli_error(capsys, "compare", a, b, "--group", "old")


def test_display_path_never_shows_an_absolute_folder(tmp_path, monkeypatch):
    from course_lib.files import KIT_ROOT, display_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "shop").mkdir(parents=True)
    assert display_path(tmp_path / "data" / "shop") == "data/shop"
    assert display_path("data/shop") == "data/shop" and display_path(tmp_path) == "."
    assert display_path(KIT_ROOT / "data" / "shop") == "data/shop"  # the kit's folder is the second base
    assert display_path("/somewhere/else") == "<data>"
    assert display_path("/somewhere/else", "<out>", bases=[tmp_path]) == "<out>"
    assert display_path(KIT_ROOT / "data", bases=[tmp_path]) == "<data>"


def test_three_runs_are_each_paired_with_the_first(two_runs, tmp_path):
    c_run = write_run(tmp_path / "C", {"EASE": [v - 0.2 for v in EASE_A], "content": CONTENT_A})
    c = compare.compare_runs([*two_runs, c_run], metrics=["ndcg", "recall"], n_boot=100)
    assert list(zip(c.paired["metric"], c.paired["method"], c.paired["run"])) == [
        ("ndcg", "EASE", "B"), ("ndcg", "EASE", "C"), ("ndcg", "content", "B"), ("ndcg", "content", "C"),
        ("recall", "EASE", "B"), ("recall", "EASE", "C"), ("recall", "content", "B"), ("recall", "content", "C")]
    assert c.paired["difference"].tolist() == pytest.approx([0.1, -0.2, 0.1, 0.0, 0.05, -0.1, 0.05, 0.0])
    assert c.paired["verdict"].tolist()[:2] == ["B better", "A better"]
    assert list(c.metrics.columns) == ["A", "B", "C"]

"""The report CLI: parameters are validated before anything runs; a FAST run writes a sane metrics.json."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_lib import compare, report
from html_page import Page
from ml_like import write_movielens_like

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "course_lib", "report", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args,message", [
    (["--dataset", "netflix", "--out", "x"], r"DATASET must be one of \('shop', 'movielens-100k'\), got 'netflix'"),
    (["--data-dir", "/no/such/dir", "--out", "x"], "data dir /no/such/dir does not exist"),
    (["--param", "K=abc", "--out", "x"], "K must be an integer, got 'abc'"),
    (["--param", "K=0", "--out", "x"], "K must be > 0, got 0"),
    (["--param", "ALPHA=2", "--out", "x"], "ALPHA must be between 0 and 1"),
    (["--param", "POOLING=max", "--out", "x"], r"POOLING must be one of \('mean', 'cls', 'pooler'\)"),
    (["--param", "FAST=maybe", "--out", "x"], "FAST must be True or False"),
    (["--param", "SPLIT=random", "--out", "x"], r"SPLIT must be one of \('global', 'per-user'\)"),
    (["--param", "TASK=masked-but-counted", "--out", "x"], r"TASK must be one of \('discovery', 'repeat-aware'\)"),
    (["--param", "KK=3", "--out", "x"], r"unknown parameter\(s\) \['KK'\]; valid: .*K,"),
    (["--param", "K", "--out", "x"], "expected NAME=VALUE"),
    (["--dataset", "movielens-100k", "--data-dir", ".", "--out", "x"], "has no u.data"),
    ([], "--out DIR is required"),
])
def test_bad_parameters_get_one_clear_line(args, message):
    r = cli(*args)
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if "WARNING" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    import re

    assert re.search(message, lines[0]), lines[0]


def test_parse_and_validate_coerce_types():
    assert report.parse_param("ALPHA=1") == ("ALPHA", 1)
    assert report.parse_param("FAST=true") == ("FAST", True)
    assert report.parse_param("TEXT_MODEL=bert-base-uncased") == ("TEXT_MODEL", "bert-base-uncased")
    v = report.validate_params({"ALPHA": 1, "K": 5, "FAST": False})
    assert v == {"ALPHA": 1.0, "K": 5, "FAST": False} and isinstance(v["ALPHA"], float)


def test_report_parameters_are_documented():
    spec = report.notebook_parameters()
    required = {"DATASET", "DATA_DIR", "TEXT_MODEL", "POOLING", "ALPHA", "HALF_LIFE_DAYS", "K", "SPLIT", "TASK",
                "TEST_FRAC", "SEED", "OUTPUT_DIR", "FAST"}
    assert required <= set(spec)
    assert all(spec[name]["help"] for name in required)


def check_metrics(path: Path, dataset: str, k: int = 10, extra_methods: tuple = ()):
    m = json.loads(path.read_text())  # strict JSON: json.loads would accept NaN, so look for it explicitly
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert m["schema_version"] == 2 and m["config"]["dataset"] == dataset and m["k"] == k
    assert m["task"] == m["config"]["task"] == "discovery" and m["config"]["split"] == "global"
    assert list(m["methods"]) == ["random", "popularity", "item-kNN", "EASE", "content", "hybrid", "multi-interest",
                               "tier-aware", "TF-IDF", *extra_methods]
    assert set(m["metrics"]) == {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc"}
    assert set(m["segments"]) <= {"cold", "tail", "torso", "head"} and m["groups"] == ["all", "returning", "new"]
    u = m["users"]
    assert u["evaluated"] == u["returning"] + u["new"] and u["test users"] == u["evaluated"] + u["excluded"]
    for name, entry in m["methods"].items():
        assert entry["fallback"], name  # every method declares what new users get
        for metric in m["metrics"]:
            o = entry["overall"][metric]
            assert o["mean"] is not None and 0 <= o["lo"] <= o["mean"] <= o["hi"] <= 1, (name, metric, o)
        assert set(entry["groups"]) == {"returning", "new"}
        assert entry["groups"]["returning"]["users"] == u["returning"]
        assert 0 < entry["beyond"]["coverage"] <= 1
    ov = {k: v["overall"] for k, v in m["methods"].items()}
    assert abs(ov["random"]["auc"]["mean"] - 0.5) < 0.1  # random ranks at chance
    assert ov["EASE"]["ndcg"]["mean"] > ov["random"]["ndcg"]["mean"]  # and a real method beats it
    paired = m["paired"]
    assert paired and all(p["lo"] <= p["diff"] <= p["hi"] for p in paired if p["lo"] is not None)
    assert {p["verdict"] for p in paired} <= {"tied", "too few users"} | {f"{p['a']} better" for p in paired} | {
        f"{p['b']} better" for p in paired}
    assert {v["claim (中文)"] for v in m["verdicts"]} >= {"覆盖长尾用户", "新物品推荐", "多模态融合", "个性化推荐", "冷启动用户"}
    assert all(v["verdict"] in ("supported", "refuted", "mixed (tied)", "not testable here", "not run")
               or re.fullmatch(r"too few users to judge \(\d+\)", v["verdict"]) for v in m["verdicts"]), m["verdicts"]
    by_claim = {v["claim (中文)"]: v for v in m["verdicts"]}
    # a method the run left out is "not run", saying how to run it; "not testable" only for a reason in the data
    assert by_claim["依赖大模型性能"]["verdict"] == "not run" and "LARGER_MODEL" in by_claim["依赖大模型性能"]["evidence"]
    for claim in ("新物品推荐 (vs TF-IDF)", "冷启动用户 (vs TF-IDF)"):  # TF-IDF runs in every report
        assert by_claim[claim]["verdict"] != "not run", by_claim[claim]
    assert m["headlines"][0].startswith("Task: **discovery**")
    assert [f["method"] for f in m["fidelity"]] == ["content", "item-kNN", "EASE"]  # explanations, tested (08)
    for f in m["fidelity"]:
        assert f["users"] > 0 and 0 <= f["leaves top-K, random removed"] <= 1
        assert 0 <= f["leaves top-K, cited removed"] <= 1
        assert f["faithful"] == (f["lo"] is not None and f["lo"] > 0)
    if u["new"]:  # new users are served on purpose: no method with a fallback is below popularity by more than noise
        for p in paired:
            # TF-IDF reads new users' words by construction (no fallback chosen on validation): it may lose, and
            # the verdict table says so (冷启动用户 (vs TF-IDF))
            if p["group"] == "new" and p["b"] == "popularity" and p["a"] not in ("random", "TF-IDF") \
                    and p["hi"] is not None:
                assert p["hi"] >= 0, p
    # per_user.csv beside it: one row per (method, user), and its means are the numbers of metrics.json
    pu = pd.read_csv(path.parent / "per_user.csv", dtype={"user": str})
    assert m["per_user"] == {"file": "per_user.csv", "rows": len(pu), "columns": list(pu.columns)}
    assert not pu.duplicated(["method", "user"]).any() and len(pu) == len(m["methods"]) * u["evaluated"]
    for name, entry in m["methods"].items():
        for metric in m["metrics"]:
            assert pu.loc[pu["method"] == name, metric].mean() == pytest.approx(entry["overall"][metric]["mean"])
    assert m["split"]["fingerprint"].startswith("sha256:") and m["split"]["test interactions"] > 0
    assert str(ROOT) not in m["config"]["data_dir"] and not m["config"]["data_dir"].startswith("/")
    return m


def check_reader_page(html: Path, dataset: str, machine: list):
    """The default report page: no code, no folder of this machine, and the answer first (title, headlines, the key
    figure, the parameters, the command), then the details."""
    page = Page(html.read_text())
    assert page.code_inputs() == [], page.code_inputs()[:3]
    everything = " ".join(page.text + page.attrs)
    for folder in machine + [str(ROOT), str(Path.home()), sys.prefix]:
        assert folder not in everything, folder
    flow = " ".join(page.flow)
    marks = [f"Recommendation report: {dataset}", "Task: discovery", "[image]", "data_dir", "Reproduce this run",
             "python -m course_lib report --dataset " + dataset, "Details", "1. The dataset"]
    at = [flow.index(mark) for mark in marks]
    assert at == sorted(at), list(zip(marks, at))
    assert "import " not in flow and "Learning objectives" not in flow and "not answered yet" not in flow
    return page


@pytest.mark.slow
@pytest.mark.notebook
def test_fast_report_on_the_shop(tmp_path):
    paths = report.run_report(tmp_path / "shop", "shop", params={"FAST": True})
    m = check_metrics(paths["metrics"], "shop", extra_methods=("content (text only)",))  # pictures fused: both spaces
    assert m["tier_recovery"]["all"]["core found as core"] > 0.2
    assert m["config"]["data_dir"] == "data/shop"
    assert paths["html"].stat().st_size > 50_000
    page = check_reader_page(paths["html"], "shop", [str(tmp_path)])
    assert "data/shop" in page.text and (tmp_path / "shop" / "report.ipynb").exists()  # the code stays next to it


@pytest.mark.slow
@pytest.mark.notebook
def test_sweep_on_movielens_files_gives_two_reports_and_one_comparison(tmp_path):
    data = write_movielens_like(tmp_path / "ml")
    out = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "course_lib", "report", "--dataset", "movielens-100k", "--data-dir",
                        str(data), "--param", "FAST=True", "--param", "K=5,10", "--param", "FINETUNE=True",
                        "--param", "FINETUNE_PAIRS=64", "--param", "FINETUNE_EPOCHS=1", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    progress = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in progress] == ["[1/2] K=5"] * 2 + ["[2/2] K=10"] * 2
    assert "running" in progress[0] and "done in" in progress[1]
    assert sorted(p.name for p in out.iterdir()) == ["K=10", "K=5", "compare.html"]
    runs = {}
    for k in (5, 10):
        m = runs[k] = check_metrics(out / f"K={k}" / "metrics.json", "movielens-100k", k=k,
                                    extra_methods=("content (fine-tuned)", "hybrid (fine-tuned)"))
        assert m["config"]["finetune"] is True and m["config"]["finetune_pairs"] == 64
        assert m["config"]["finetune_method"] == "adapter"  # the report's default: the adapter
        assert any(n.startswith("fine-tuned text model (adapter): ") for n in m["notes"])
        assert m["finetuned_hybrid_content_share"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert m["content_space"] == "text only" and any("no item pictures" in n for n in m["notes"])
        assert m["tier_recovery"] is None and m["config"]["data_dir"] == "<data>"
        check_reader_page(out / f"K={k}" / "report.html", "movielens-100k", [str(tmp_path)])
    assert runs[5]["split"]["fingerprint"] == runs[10]["split"]["fingerprint"]  # K does not change who is tested
    # the comparison: every method paired, each difference the mean of the per-user differences
    c = compare.compare_runs([out / "K=5", out / "K=10"], metrics=["ndcg"], n_boot=200)
    assert set(c.paired["method"]) == set(runs[5]["methods"]) and not c.notes
    pu5, pu10 = (pd.read_csv(out / f"K={k}" / "per_user.csv", dtype={"user": str}) for k in (5, 10))
    for _, row in c.paired.iterrows():
        a = pu10[pu10["method"] == row["method"]].set_index("user")["ndcg"]
        b = pu5[pu5["method"] == row["method"]].set_index("user")["ndcg"]
        assert row["difference"] == pytest.approx((a - b.reindex(a.index)).mean())
        assert row["lo"] <= row["difference"] <= row["hi"]
    side = compare.verdicts_side_by_side([out / "K=5", out / "K=10"])  # same dataset: labelled by folder
    assert side.loc["多模态融合", "K=5: verdict"] == "not testable (movielens-100k has no item pictures)"
    assert side.loc["大模型辅助推荐", "K=10: users"] == runs[10]["verdicts"][0]["users"]
    assert "Paired differences against K=5" in r.stdout and "Paired differences against K=5" in " ".join(
        Page((out / "compare.html").read_text()).text)

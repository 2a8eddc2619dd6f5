"""The report CLI: parameters are validated before anything runs; a FAST run writes a sane metrics.json."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib import report

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
    required = {"DATASET", "DATA_DIR", "TEXT_MODEL", "POOLING", "ALPHA", "HALF_LIFE_DAYS", "K", "TEST_FRAC", "SEED",
                "OUTPUT_DIR", "FAST"}
    assert required <= set(spec)
    assert all(spec[name]["help"] for name in required)


def check_metrics(path: Path, dataset: str):
    m = json.loads(path.read_text())
    assert m["schema_version"] == 1 and m["config"]["dataset"] == dataset and m["k"] == 10
    assert list(m["methods"]) == ["random", "popularity", "item-kNN", "EASE", "content", "hybrid", "multi-interest"]
    assert set(m["metrics"]) == {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc"}
    assert set(m["segments"]) <= {"cold", "tail", "torso", "head"}
    for name, entry in m["methods"].items():
        for metric in m["metrics"]:
            o = entry["overall"][metric]
            assert o["mean"] is not None and 0 <= o["lo"] <= o["mean"] <= o["hi"] <= 1, (name, metric, o)
        assert 0 < entry["beyond"]["coverage"] <= 1
    ov = {k: v["overall"] for k, v in m["methods"].items()}
    assert abs(ov["random"]["auc"]["mean"] - 0.5) < 0.1  # random ranks at chance
    assert ov["EASE"]["ndcg"]["mean"] > ov["random"]["ndcg"]["mean"]  # and a real method beats it
    return m


@pytest.mark.slow
@pytest.mark.notebook
def test_fast_report_on_the_shop(tmp_path):
    paths = report.run_report(tmp_path / "shop", "shop", params={"FAST": True})
    m = check_metrics(paths["metrics"], "shop")
    assert m["tier_recovery"]["all"]["core found as core"] > 0.2
    assert paths["html"].stat().st_size > 50_000


def write_movielens_like(folder: Path, n_users=150, n_items=220, seed=0):
    """Synthetic ratings in the exact GroupLens ml-100k layout (the real files cannot be shipped)."""
    from course_lib.data.movielens import GENRES

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    item_genre = rng.integers(1, len(GENRES), n_items)
    with open(folder / "u.item", "w", encoding="latin-1") as f:
        for i in range(n_items):
            flags = ["1" if g == item_genre[i] else "0" for g in range(len(GENRES))]
            f.write(f"{i + 1}|Movie {i + 1} ({1980 + i % 20})|01-Jan-1995||http://example.org/{i}|" + "|".join(flags) + "\n")
    with open(folder / "u.user", "w") as f:
        for u in range(n_users):
            f.write(f"{u + 1}|{20 + u % 40}|{'MF'[u % 2]}|student|0{u:04d}\n")
    with open(folder / "u.data", "w") as f:
        for u in range(n_users):
            fav = rng.integers(1, len(GENRES), 2)
            pool = np.flatnonzero(np.isin(item_genre, fav))
            for i in rng.choice(pool, size=min(len(pool), rng.integers(5, 40)), replace=False):
                f.write(f"{u + 1}\t{i + 1}\t{rng.integers(1, 6)}\t{880000000 + int(rng.integers(0, 20_000_000))}\n")


@pytest.mark.slow
@pytest.mark.notebook
def test_report_on_movielens_files(tmp_path):
    data = tmp_path / "ml"
    write_movielens_like(data)
    r = cli("--dataset", "movielens-100k", "--data-dir", str(data), "--param", "FAST=True", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]
    m = check_metrics(tmp_path / "out" / "metrics.json", "movielens-100k")
    assert m["content_space"] == "text only" and any("no item pictures" in n for n in m["notes"])
    assert m["tier_recovery"] is None

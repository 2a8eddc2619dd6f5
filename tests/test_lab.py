"""JupyterLab as learners use it, minus the browser: the kernel they land on, the settings that keep widgets, the
progress-bar rule, the warm-up that fills *their* cache, and the pieces of `make check-lab` that need no Chromium.

The browser part itself runs in CI as `make check-lab` (tools/labcheck.py), which also proves on a canary
notebook that it catches widgets saved without their state.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import report
from tools import labcheck
from course_lib.encode import PROGRESS_MIN, ImageEncoder, TextEncoder, _show_progress

ROOT = Path(__file__).resolve().parents[1]


# ---- Makefile, CI and the teachers' guide ----------------------------------------------------------------
def make_rules() -> dict:
    """target -> (prerequisites, recipe text) of the Makefile (enough of make's syntax for this file)."""
    rules, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.$()/\-]+):(?!=)\s*(.*)$", line)
        if m and not line.startswith("\t"):
            current = m.group(1)
            rules[current] = [m.group(2).split(), ""]
        elif line.startswith("\t") and current:
            rules[current][1] += line + "\n"
        elif line.strip() and not line.startswith(("#", "ifeq", "endif", "else")):
            current = None
    return rules


def recipe_with_prerequisites(rules: dict, target: str, seen=None) -> str:
    seen = set() if seen is None else seen
    if target in seen or target not in rules:
        return ""
    seen.add(target)
    deps, recipe = rules[target]
    return recipe + "".join(recipe_with_prerequisites(rules, d, seen) for d in deps)


def test_warm_up_commands_fill_the_learners_cache_and_tests_keep_their_own():
    rules = make_rules()
    for target in ("report", "warm", "lab"):
        assert "COURSE_CACHE_DIR" not in recipe_with_prerequisites(rules, target), (
            f"make {target} must warm ~/.cache/course_lib, the cache JupyterLab reads")
    assert "warm" in rules["lab"][0], "make lab warms the cache before opening JupyterLab"
    for target in ("test", "check-lab"):
        assert "COURSE_CACHE_DIR=$(CURDIR)/.cache/test" in rules[target][1], f"make {target} keeps its own cache"


def test_teachers_guide_asks_for_a_command_that_warms_the_learners_cache():
    guide = (ROOT / "notebooks" / "README.md").read_text()
    before = guide.split("## Before the workshop", 1)[1].split("\n## ", 1)[0]
    asked = set(re.findall(r"`make ([a-z\-]+)", before))
    assert asked, "the guide names the commands to run before class"
    rules = make_rules()
    for target in asked:
        assert target in rules, f"the guide asks for make {target}, which the Makefile lacks"
        assert "COURSE_CACHE_DIR" not in recipe_with_prerequisites(rules, target), (
            f"the guide's `make {target}` fills a test cache, not the one the notebooks read in JupyterLab")


def test_make_lab_ships_the_widget_settings_and_the_kernel_twice():
    rules = make_rules()
    settings = "$(VENV)/share/jupyter/lab/settings/overrides.json"
    assert "cp lab/overrides.json $(LAB_SETTINGS)" in rules["$(LAB_SETTINGS)"][1]
    assert settings in (ROOT / "Makefile").read_text()
    assert "$(LAB_SETTINGS)" in rules["lab"][0] and "$(LAB_SETTINGS)" in rules["check-lab"][0]
    kernel = rules["kernel"][1]
    assert "--sys-prefix --name $(KERNEL_NAME)" in kernel and "--user --name $(KERNEL_NAME)" in kernel
    assert re.search(r"^KERNEL_NAME\s*\?=\s*" + re.escape(report.KERNEL_NAME) + "$",
                     (ROOT / "Makefile").read_text(), re.M)


def test_ci_runs_make_test_whole_then_the_browser_on_papermills_copies():
    ci = (ROOT / ".ci" / "run").read_text()
    runs = [line for line in ci.splitlines() if re.search(r"(^|\s)make test(\s|$)", line)
            and not line.lstrip().startswith(("#", "echo", ".venv"))]
    assert len(runs) == 1 and "NBVAL=0" not in runs[0] and "not papermill" not in runs[0]  # make test, unchanged
    assert "COURSE_EXECUTED_DIR=" in runs[0] and 'CHECK_LAB_ARGS="--executed' in ci
    assert ci.index("make test") < ci.index("make check-lab")  # the check opens what make test executed
    assert "tools.ci_times" in ci  # and CI says where its time went
    import test_notebooks  # the papermill tests share the browser check's parameters

    assert test_notebooks.SMALL is labcheck.CI_PARAMETERS


def test_prepare_opens_papermills_copies_and_runs_only_live_widgets(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / "09_report.ipynb").write_text((ROOT / "notebooks" / "09_report.ipynb").read_text())
    paths = labcheck.prepare(["04_tiering", "09_report"], tmp_path / "nb", output_dir=tmp_path / "out",
                             executed=executed)
    assert labcheck.PREEXECUTED == {"09_report"}  # no INTERACTIVE parameter: the same run as papermill's
    assert paths[1].read_text() == (executed / "09_report.ipynb").read_text()
    cells = [c for c in nbformat.read(str(paths[0]), as_version=4).cells
             if "injected-parameters" in c.metadata.get("tags", [])]
    assert "INTERACTIVE = True" in cells[0].source  # 04 runs in the browser, live
    with pytest.raises(labcheck.LabCheckError, match="no executed copy .*COURSE_EXECUTED_DIR"):
        labcheck.prepare(["00_welcome"], tmp_path / "nb2", executed=executed)


def test_warm_up_skips_only_when_its_marker_matches(monkeypatch):
    from course_lib import data, warmup
    from course_lib.runtime import cache_dir

    marker = cache_dir() / warmup.MARKER  # tests get a private cache folder (conftest)
    marker.write_text(json.dumps(warmup.warm_key()))
    assert warmup.warm_cache(verbose=False) == []  # nothing loaded, nothing encoded

    def would_encode(*args, **kwargs):
        raise RuntimeError("would encode")

    monkeypatch.setattr(data, "load_shop", would_encode)
    for stale in ({**warmup.warm_key(), "image_size": 64}, {**warmup.warm_key(), "data": "other"}):
        marker.write_text(json.dumps(stale))
        with pytest.raises(RuntimeError, match="would encode"):
            warmup.warm_cache(verbose=False)
    marker.write_text(json.dumps(warmup.warm_key()))
    with pytest.raises(RuntimeError, match="would encode"):
        warmup.warm_cache(verbose=False, force=True)


def test_warm_key_follows_the_shop_files_and_picture_size(tmp_path):
    from course_lib import warmup

    for name in ("items.csv", "users.csv", "interactions.csv"):  # the log too: make warm trains 07's runs on it
        (tmp_path / name).write_bytes((ROOT / "data" / "shop" / name).read_bytes())
    key = warmup.warm_key(tmp_path)
    assert key == warmup.warm_key(ROOT / "data" / "shop") and key != warmup.warm_key(tmp_path, image_size=64)
    with open(tmp_path / "users.csv", "a") as f:
        f.write("u9999,a new learner\n")
    assert warmup.warm_key(tmp_path)["data"] != key["data"]
    key = warmup.warm_key(tmp_path)
    with open(tmp_path / "interactions.csv", "a") as f:
        f.write("u0001,i0001,2026-01-01,view\n")
    assert warmup.warm_key(tmp_path)["data"] != key["data"]


# ---- the settings file -----------------------------------------------------------------------------------
def test_shipped_settings_save_widget_state():
    data = labcheck.lab_settings()
    assert data == {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def test_settings_without_save_state_are_refused(tmp_path):
    bad = tmp_path / "overrides.json"
    bad.write_text(json.dumps({"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False}}))
    with pytest.raises(ValueError, match="saveState must be true"):
        labcheck.lab_settings(bad)
    bad.write_text("{}")
    with pytest.raises(ValueError, match="model not found"):
        labcheck.lab_settings(bad)


# ---- the kernel --------------------------------------------------------------------------------------------
def write_kernel(folder: Path, python: str) -> Path:
    spec = folder / "kernels" / report.KERNEL_NAME / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                "display_name": "Python (course kit)", "language": "python"}))
    return spec


def test_kernel_name_is_the_kits_when_it_runs_this_python(tmp_path, monkeypatch):
    write_kernel(tmp_path, sys.executable)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))  # searched before every other kernel folder
    assert report.kernel_name() == "course-kit"


def test_kernel_name_ignores_a_kit_kernel_of_another_clone(tmp_path, monkeypatch):
    other = tmp_path / "other-clone" / ".venv" / "bin"
    other.mkdir(parents=True)
    (other / "python").symlink_to(os.path.realpath(sys.executable))  # same interpreter, another environment
    write_kernel(tmp_path, str(other / "python"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert report.kernel_name() == "python3"  # ipykernel's own spec: always the current Python


def test_same_env_compares_folders_without_following_links(tmp_path):
    exe = Path(sys.executable)
    assert report._same_env(str(exe), str(exe.parent / "python3"))
    link = tmp_path / "python"
    link.symlink_to(os.path.realpath(sys.executable))
    assert not report._same_env(str(link), sys.executable)
    assert not report._same_env("python", sys.executable)  # a bare name is whatever PATH finds


def test_remove_user_kernel_only_removes_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    spec = write_kernel(tmp_path, "/somewhere/else/.venv/bin/python")
    assert not report.remove_user_kernel() and spec.exists()
    spec.write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher"]}))
    assert report.remove_user_kernel() and not spec.parent.exists()
    assert not report.remove_user_kernel()  # nothing left: no error


def test_committed_notebooks_ask_for_the_kits_kernel():
    for path in report.list_notebooks():
        spec = nbformat.read(str(path), as_version=4).metadata["kernelspec"]
        assert (spec["name"], spec["display_name"]) == (report.KERNEL_NAME, report.KERNEL_DISPLAY_NAME), path.name


# ---- progress bars -----------------------------------------------------------------------------------------
def live_kernel(monkeypatch):
    """As inside a JupyterLab kernel: not under pytest, no COURSE_PROGRESS, ipykernel imported. Call it in the
    test body: pytest sets PYTEST_CURRENT_TEST again at the start of each phase."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("COURSE_PROGRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel") or type(sys)("ipykernel"))


def test_progress_rule_draws_bars_only_for_long_steps(monkeypatch):
    live_kernel(monkeypatch)
    assert PROGRESS_MIN == {"text": 200, "image": 50}
    assert not _show_progress(None, 3, "text") and not _show_progress(None, 199, "text")
    assert _show_progress(None, 200, "text") and _show_progress(None, 1200, "text")
    assert not _show_progress(None, 49, "image") and _show_progress(None, 50, "image")
    with pytest.raises(ValueError, match="kind must be one of"):
        _show_progress(None, 10, "audio")


def test_progress_rule_explicit_flag_wins_and_headless_runs_stay_quiet(monkeypatch):
    live_kernel(monkeypatch)
    assert _show_progress(True, 1, "text") and not _show_progress(False, 10_000, "text")
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert not _show_progress(None, 10_000, "text")
    monkeypatch.delenv("COURSE_PROGRESS")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    assert not _show_progress(None, 10_000, "text")


class RecordingBar:
    """Stands in for tqdm.auto.tqdm and remembers every bar made."""

    made = []

    def __init__(self, total=None, disable=False, **kwargs):
        self.total, self.disable, self.n = total, disable, 0
        RecordingBar.made.append(self)

    def update(self, n):
        self.n += n

    def close(self):
        pass


def recording_bars(monkeypatch) -> list:
    import tqdm.auto

    live_kernel(monkeypatch)
    RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    return RecordingBar.made


def test_one_bar_per_long_text_step_none_for_small_or_cached_calls(tiny_bert, monkeypatch):
    bars = recording_bars(monkeypatch)
    enc = TextEncoder(tiny_bert, batch_size=16, device="cpu")
    texts = [f"red shoes for running {i}" for i in range(250)]
    enc.encode(texts)
    assert [(b.total, b.disable, b.n) for b in bars] == [(250, False, 250)]  # one bar, not one per batch
    enc.encode(["the camera", "a tent", "blue shoes"])
    assert [b.disable for b in bars[1:]] == [True]  # 3 texts: no visible bar
    n = len(bars)
    enc.encode(texts)
    assert len(bars) == n  # all cached: nothing to encode, no bar at all


@pytest.mark.slow
def test_one_bar_per_long_image_step(monkeypatch):
    bars = recording_bars(monkeypatch)
    enc = ImageEncoder("efficientnet", image_size=32, batch_size=16, device="cpu")
    rng = np.random.default_rng(0)
    enc.encode([rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(60)])
    enc.encode([rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(10)])
    assert [(b.total, b.disable) for b in bars] == [(60, False), (10, True)]


# ---- the browser check's parts that need no browser ---------------------------------------------------------
def nb_with(outputs_per_cell, state=None):
    nb = nbformat.v4.new_notebook()
    for i, outs in enumerate(outputs_per_cell):
        cell = nbformat.v4.new_code_cell(f"x = {i}", execution_count=i + 1)
        cell.outputs = [nbformat.from_dict(o) for o in outs]
        nb.cells.append(cell)
    if state is not None:
        nb.metadata["widgets"] = {labcheck.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return json.loads(nbformat.writes(nb))


def view(model_id):
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/plain": "HBox()", labcheck.WIDGET_VIEW: {"model_id": model_id, "version_major": 2,
                                                                     "version_minor": 0}}}


def test_widget_views_without_saved_state_are_found():
    nb = nb_with([[view("a1")], [], [view("b2"), view("c3")]], state={"a1": {}, "c3": {}})
    assert labcheck.widget_views(nb) == ["a1", "b2", "c3"]
    assert labcheck.missing_widget_state(nb) == ["b2"]
    assert labcheck.missing_widget_state(nb_with([[view("a1")]])) == ["a1"]  # what JupyterLab saved before


def test_error_outputs_and_unexecuted_cells_are_found():
    error = {"output_type": "error", "ename": "ModuleNotFoundError", "evalue": "No module named 'course_lib'",
             "traceback": []}
    nb = nb_with([[], [error], []])
    nb["cells"][2]["execution_count"] = None
    assert labcheck.error_outputs(nb) == ["cell 1: ModuleNotFoundError: No module named 'course_lib'"]
    assert labcheck.unexecuted_cells(nb) == [2]
    assert labcheck.error_outputs(nb_with([[view("a")]])) == []


def test_canary_has_the_widgets_the_check_must_catch():
    nb = labcheck.canary_notebook()
    sources = [c.source for c in nb.cells]
    assert any("IntSlider" in s for s in sources) and any("tqdm" in s for s in sources)
    assert nb.metadata["kernelspec"]["name"] == report.KERNEL_NAME


def test_ci_parameters_are_parameters_of_their_notebooks():
    names = {p.stem for p in report.list_notebooks()}
    assert set(labcheck.CI_PARAMETERS) <= names
    for name, params in labcheck.CI_PARAMETERS.items():
        spec = report.notebook_parameters(report.NOTEBOOK_DIR / f"{name}.ipynb")
        assert set(params) <= set(spec), f"{name}: {set(params) - set(spec)} are not parameters"


def test_prepare_injects_ci_parameters_and_keeps_the_kernel(tmp_path):
    paths = labcheck.prepare(["04_tiering", "09_report"], tmp_path / "nb", output_dir=tmp_path / "out")
    assert [p.name for p in paths] == ["04_tiering.ipynb", "09_report.ipynb"]
    injected = []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1
        assert ("INTERACTIVE = True" in cells[0].source) == (path.stem == "04_tiering")  # the explorer is live
        assert nb.metadata["kernelspec"]["name"] == report.KERNEL_NAME
        injected.append(cells[0].source)
    assert "THRESHOLDS = [0.6]" in injected[0]
    assert f'OUTPUT_DIR = "{(tmp_path / "out").resolve()}"' in injected[1] and "FAST = True" in injected[1]
    with pytest.raises(labcheck.LabCheckError, match="no notebook matches"):
        labcheck.prepare(["99_nothing"], tmp_path / "none")


def test_free_port_can_be_bound():
    import socket

    port = labcheck.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_find_browser_says_what_to_install(tmp_path):
    with pytest.raises(labcheck.LabCheckError, match="apt-get install -y chromium chromium-driver"):
        labcheck.find_browser({"PATH": str(tmp_path)})
    for name in ("chromium", "chromedriver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert labcheck.find_browser({"PATH": str(tmp_path)}) == (str(tmp_path / "chromium"), str(tmp_path / "chromedriver"))


def test_check_lab_fails_loudly_without_a_browser(tmp_path):
    """No Chromium and no permission to install it: exit 2 and one line that says what to install (CI fails)."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "tools.labcheck", "--no-install", "--out", str(tmp_path / "lab")],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "cannot run: chromium and chromedriver not found" in r.stderr and "apt-get install" in r.stderr


def test_the_browser_check_is_not_in_the_learners_package():
    """`pip install` of the kit ships course_lib only: no labcheck module, no selenium outside the `lab` extra."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    assert not (ROOT / "course_lib" / "labcheck.py").exists() and (ROOT / "tools" / "labcheck.py").is_file()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == ["course_lib*"]
    extras = meta["project"]["optional-dependencies"]
    shipped = meta["project"]["dependencies"] + [d for name, deps in extras.items() if name != "lab" for d in deps]
    assert not [d for d in shipped if d.lower().startswith("selenium")]
    assert any(d.startswith("selenium") for d in extras["lab"])
    assert "-m tools.labcheck" in make_rules()["check-lab"][1]


def test_tests_that_may_reach_the_hub_are_marked_network_and_slow():
    """make test-fast (-m "not slow") must need no network: a test that lifts the offline switch is marked."""
    import ast

    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
                   and n.name != "test_tests_that_may_reach_the_hub_are_marked_network_and_slow"):
            src = ast.get_source_segment(path.read_text(encoding="utf-8"), fn)
            online = 'delenv("HF_HUB_OFFLINE"' in src or 'not in ("HF_HUB_OFFLINE"' in src
            if online:
                marks = {d.attr for d in fn.decorator_list if isinstance(d, ast.Attribute)}
                found.append(fn.name)
                assert {"network", "slow"} <= marks, (path.name, fn.name, marks)
    assert len(found) >= 2  # the scan saw the known ones
    assert '-m "not slow"' in make_rules()["test-fast"][1]


@pytest.mark.parametrize("has_mpnet", [True, False])
def test_warm_up_encodes_the_shop_with_the_larger_model_only_when_installed(monkeypatch, has_mpnet):
    import numpy as np

    from course_lib import encode, warmup

    seen = []

    class FakeText:  # records what the warm-up asks for; no model is loaded
        def __init__(self, model="all-MiniLM-L6-v2", pooling="mean", **kwargs):
            self.model = model
            seen.append((model, pooling))

        def encode(self, texts):
            return np.ones((len(texts), 3), dtype=np.float32)

    class FakeImage:
        def __init__(self, *args, **kwargs):
            pass

        def encode_items(self, ds):
            return np.ones((len(ds.items), 3), dtype=np.float32)

    monkeypatch.setattr(encode, "TextEncoder", FakeText)
    monkeypatch.setattr(encode, "ImageEncoder", FakeImage)
    monkeypatch.setattr(warmup, "warm_finetuning", lambda ds: None)
    monkeypatch.setattr(warmup, "_warm_llm", lambda: None)
    monkeypatch.setattr(warmup, "installed", lambda model: has_mpnet)
    steps = [r["step"] for r in warmup.warm_cache(verbose=False, force=True)]
    mpnet_steps = [s for s in steps if "all-mpnet-base-v2" in s]
    assert (("all-mpnet-base-v2", "mean") in seen) == has_mpnet
    assert len(mpnet_steps) == (3 if has_mpnet else 0), steps

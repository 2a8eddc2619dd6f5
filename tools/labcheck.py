"""The real-browser check behind ``make check-lab``: every notebook opened, run, saved and reopened in JupyterLab.

Not a unit test and not part of the learner's library: it drives headless Chromium (Debian's ``chromium`` and
``chromium-driver``) with selenium against a JupyterLab started on 127.0.0.1 with a token, on copies of the notebooks
prepared by papermill with the small CI parameters of the tests. It fails on an error output, on "Error displaying
widget" after a reopen, on a kernel that cannot import this checkout's ``course_lib``, and on a tier explorer whose
output does not change when a control moves. Screenshots and the saved copies stay in ``--out`` for humans.

    python -m tools.labcheck [--out reports/lab] [--only 04_tiering ...] [--defaults]   (from the repository root)

It lives in ``tools/``, outside the learner's package: ``pip install`` of the kit installs neither this module nor
selenium (the ``lab`` extra brings it). The small parameters are the tests' (``tests/ci_parameters.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.report import KERNEL_NAME, NOTEBOOK_DIR, list_notebooks
from tests.ci_parameters import CI_PARAMETERS

REPO = NOTEBOOK_DIR.parent
CI_PARAMETERS_FILE = REPO / "tests" / "ci_parameters.py"
SETTINGS_FILE = REPO / "lab" / "overrides.json"  # shipped JupyterLab settings; `make lab` copies it into .venv
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EXPLORER_NOTEBOOK = "04_tiering"
REPORT_NOTEBOOK = "09_report"  # its reader's HTML is also opened with the network off
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000")
APT_PACKAGES = ("chromium", "chromium-driver", "fonts-wqy-microhei")  # the font: 中文 in screenshots
INSTALL_HINT = ("install Chromium and its driver: `sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu), "
                "or put a chromium/chrome binary and a matching chromedriver on PATH "
                "(or set $CHROMIUM and $CHROMEDRIVER to their paths)")

PREEXECUTED: set[str] = set()  # notebooks opened as papermill executed them (not run again in the browser)


class LabCheckError(RuntimeError):
    """The check could not run (no browser, no JupyterLab, settings missing): says what to install or run."""


# ---------------------------------------------------------------------------------------------------------
# pieces that need no browser (tested in tests/test_lab.py)
# ---------------------------------------------------------------------------------------------------------
def error_outputs(nb: dict) -> list[str]:
    """``"cell N: Name: message"`` for every error output of a notebook (JSON as saved)."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:300]}")
    return found


def unexecuted_cells(nb: dict) -> list[int]:
    """Indices of code cells without an execution count (Run All stopped before them)."""
    return [i for i, c in enumerate(nb.get("cells", []))
            if c.get("cell_type") == "code" and c.get("source") and not c.get("execution_count")]


def widget_views(nb: dict) -> list[str]:
    """Model ids of every widget view in the outputs (progress bars, the explorer)."""
    ids = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view:
                ids.append(view["model_id"])
    return ids


def missing_widget_state(nb: dict) -> list[str]:
    """Widget views whose model is not saved in the notebook: each shows "Error displaying widget: model not
    found" when the notebook is reopened without its kernel."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return [m for m in widget_views(nb) if m not in state]


def lab_settings(path: Path = SETTINGS_FILE) -> dict:
    """The shipped JupyterLab settings (``overrides.json``), checked: widget state must be saved with notebooks."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get(WIDGETS_PLUGIN, {}).get("saveState") is not True:
        raise ValueError(f"{path}: {WIDGETS_PLUGIN} -> saveState must be true, or reopened notebooks show "
                         "'Error displaying widget: model not found'")
    return data


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_browser(env=None) -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths from ``$CHROMIUM``/``$CHROMEDRIVER`` or PATH; LabCheckError if absent."""
    env = os.environ if env is None else env
    browser = env.get("CHROMIUM") or next(
        (p for p in (shutil.which(n, path=env.get("PATH")) for n in ("chromium", "chromium-browser", "google-chrome"))
         if p), None)
    driver = env.get("CHROMEDRIVER") or shutil.which("chromedriver", path=env.get("PATH"))
    missing = [name for name, p in (("chromium", browser), ("chromedriver", driver)) if not p or not Path(p).exists()]
    if missing:
        raise LabCheckError(f"{' and '.join(missing)} not found: {INSTALL_HINT}")
    return browser, driver


def ensure_browser(install: bool = True) -> tuple[str, str]:
    """Find Chromium and chromedriver; as root with apt-get, install Debian's packages first when missing."""
    try:
        return find_browser()
    except LabCheckError:
        can_apt = shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0
        if not (install and can_apt):
            raise
    print(f"installing {' '.join(APT_PACKAGES)} with apt-get ...", flush=True)
    t0 = time.perf_counter()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    opts = ["-o", "Acquire::Retries=2", "-o", "Acquire::http::Timeout=60"]
    for cmd in (["apt-get", "update", "-q", *opts], ["apt-get", "install", "-y", "-q", *opts, *APT_PACKAGES]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode:
            raise LabCheckError(f"`{' '.join(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-800:]}\n{INSTALL_HINT}")
    print(f"installed in {time.perf_counter() - t0:.0f} s", flush=True)
    return find_browser()


def prepare(names: list[str], workdir: Path, defaults: bool = False, output_dir: Path | None = None,
            executed: Path | None = None) -> list[Path]:
    """Copies of the notebooks in ``workdir``: CI parameters injected by papermill (``prepare_only``, nothing
    runs), ``INTERACTIVE=True`` so the explorer is live, the report's ``OUTPUT_DIR`` inside ``workdir``.

    ``executed``: a folder of papermill's executed copies (the tests' small-parameter runs). A notebook without live
    widgets (no ``INTERACTIVE`` parameter) would run here with exactly those parameters, so its executed copy is
    opened instead (listed in ``PREEXECUTED``); one with live widgets runs again, with ``INTERACTIVE=True``."""
    import papermill as pm

    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    PREEXECUTED.clear()
    for nb in list_notebooks():
        if names and nb.stem not in names:
            continue
        dest = workdir / nb.name
        if executed is not None and not defaults and "INTERACTIVE" not in pm.inspect_notebook(str(nb)):
            copy = Path(executed) / nb.name
            if not copy.is_file():
                raise LabCheckError(f"no executed copy {copy}: run `make test` with COURSE_EXECUTED_DIR={executed} "
                                    "first, or leave --executed out")
            shutil.copyfile(copy, dest)
            PREEXECUTED.add(nb.stem)
            paths.append(dest)
            continue
        if defaults:
            shutil.copyfile(nb, dest)
        else:
            spec = pm.inspect_notebook(str(nb))
            params = {**CI_PARAMETERS.get(nb.stem, {}), **({"INTERACTIVE": True} if "INTERACTIVE" in spec else {})}
            if "OUTPUT_DIR" in spec:
                params["OUTPUT_DIR"] = str((output_dir or workdir / "output").resolve())
            unknown = sorted(set(params) - set(spec))
            if unknown:
                raise LabCheckError(f"{nb.name} has no parameter(s) {unknown}: "
                                    f"update CI_PARAMETERS in {CI_PARAMETERS_FILE}")
            pm.execute_notebook(str(nb), str(dest), parameters=params, prepare_only=True, progress_bar=False,
                                log_output=False)
        paths.append(dest)
    if not paths:
        raise LabCheckError(f"no notebook matches {names}; choose among {[p.stem for p in list_notebooks()]}")
    return paths


# ---------------------------------------------------------------------------------------------------------
# the JupyterLab server
# ---------------------------------------------------------------------------------------------------------
class LabServer:
    """JupyterLab on 127.0.0.1:<free port> with a random token, serving ``root``; its own config, user settings
    and workspaces (in a temporary folder), so a developer's own settings cannot change the result. The
    application settings (``overrides.json`` in the environment) are the ones the learner gets."""

    def __init__(self, root: Path, log: Path, startup_s: float = 120, user_settings: dict | None = None):
        self.root, self.log, self.startup_s = Path(root), Path(log), startup_s
        self.user_settings = user_settings or {}  # {"plugin:id": {...}} as if the user had changed them
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="labcheck-")
        self.proc = None

    def env(self) -> dict:
        tmp = Path(self._tmp.name)
        env = {k: v for k, v in os.environ.items() if k not in ("COURSE_HEADLESS", "COURSE_PROGRESS", "MPLBACKEND",
                                                                  "PYTEST_CURRENT_TEST", "JUPYTER_PATH")}
        env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        settings = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
                    **self.user_settings}  # no news toast (offline), then the caller's
        for plugin, values in settings.items():
            package, name = plugin.split(":")
            f = tmp / "user-settings" / package / f"{name}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        return env

    def __enter__(self):
        try:
            import jupyterlab  # noqa: F401
        except ImportError:
            raise LabCheckError("JupyterLab is not installed in this environment: run `make check-lab` "
                                "(it installs the kit's `lab` extra), or pip install -e '.[lab]'") from None
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
               "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--ServerApp.allow_root=True")  # CI runs as root
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, env=self.env(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     cwd=self.root, start_new_session=True)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabCheckError(f"JupyterLab exited with code {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise LabCheckError(f"JupyterLab did not answer on {self.url} within {self.startup_s:.0f} s; see {self.log}")

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}", timeout=30) as r:
            return json.loads(r.read().decode())

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log_file.close()
        self._tmp.cleanup()


# ---------------------------------------------------------------------------------------------------------
# the browser
# ---------------------------------------------------------------------------------------------------------
# Bodies of async functions (arguments in `args`); Browser.run_js starts one and polls for its value, so a long
# Run All never holds selenium's HTTP connection to chromedriver open.
_JS_OPEN = """
const app = window.jupyterapp;
if (!app) return {error: 'window.jupyterapp missing: start JupyterLab with --LabApp.expose_app_in_browser=True'};
await app.restored;
const panel = await app.commands.execute('docmanager:open', {path: args[0], factory: 'Notebook'});
await panel.context.ready;
const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), args[1] * 1000));
if (await Promise.race([panel.sessionContext.ready.then(() => 'ready'), timeout]) === 'timeout') {
  const dialog = document.querySelector('.jp-Dialog');
  return {error: 'no kernel started within ' + args[1] + ' s' +
          (dialog ? '; JupyterLab asks: ' + dialog.textContent.slice(0, 300) : '') +
          ' (is the kernel course-kit registered? make kernel; jupyter kernelspec list)'};
}
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {kernel: kernel ? kernel.name : null, display: panel.sessionContext.kernelDisplayName};
"""

_JS_KERNEL_IMPORTS = """
const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
const code = 'import sys, course_lib; print(course_lib.__file__); print(sys.executable)';
const future = kernel.requestExecute({code, silent: false, store_history: false});
let out = '';
future.onIOPub = msg => {
  if (msg.header.msg_type === 'stream') out += msg.content.text;
  if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
};
await future.done;
return out;
"""

_JS_RUN_ALL = """
return {ok: await window.jupyterapp.commands.execute('notebook:run-all-cells')};
"""

_JS_SAVE = """
const panel = window.jupyterapp.shell.currentWidget;
await window.jupyterapp.commands.execute('docmanager:save');
return {dirty: panel.context.model.dirty};
"""

_JS_SHUTDOWN_CLOSE = """
const panel = window.jupyterapp.shell.currentWidget;
await panel.sessionContext.shutdown();
panel.dispose();
return {ok: true};
"""

_JS_MODEL_VIEWS = """
const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
let n = 0;
for (let i = 0; i < cells.length; i++) {
  const cell = cells.get(i);
  if (cell.type !== 'code') continue;
  for (let j = 0; j < cell.outputs.length; j++) {
    const data = cell.outputs.get(j).data;
    if (data && data['application/vnd.jupyter.widget-view+json']) n++;
  }
}
return n;
"""

_JS_WIDGET_TEXTS = """
const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
return {
  loading: outs.filter(o => (o.textContent || '').includes('Loading widget')).length,
  errors: outs.filter(o => /Error displaying widget|model not found/.test(o.textContent || ''))
              .map(o => (o.textContent || '').slice(0, 200)),
  views: document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length,
  bars: document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets .widget-hprogress').length,
};
"""


@dataclass
class Result:
    """What happened to one notebook in the browser."""

    notebook: str
    seconds: dict = field(default_factory=dict)
    kernel: str = ""
    widget_views: int = 0
    progress_bars: int = 0
    problems: list = field(default_factory=list)
    screenshots: list = field(default_factory=list)


class Browser:
    """Headless Chromium through selenium, with the flags that work on the CI machine and a fresh profile."""

    def __init__(self, chromium: str, chromedriver: str, log: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self._profile = tempfile.TemporaryDirectory(prefix="labcheck-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in (*BROWSER_FLAGS, f"--user-data-dir={self._profile.name}"):
            opts.add_argument(flag)
        os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for a driver online
        self.driver = webdriver.Chrome(options=opts, service=Service(executable_path=chromedriver, log_output=str(log)))

    def run_js(self, body: str, *args, timeout: float = 60):
        """Run the body of an async JS function (its arguments are ``args``); poll until it returns or throws."""
        self.driver.execute_script(
            "const args = Array.from(arguments); window.__labcheck = {done: false};"
            "(async function () {" + body + "})().then("
            "  v => { window.__labcheck = {done: true, value: v}; },"
            "  e => { window.__labcheck = {done: true, value: {error: String(e && e.stack || e)}}; });", *args)
        state = self.wait(lambda: (lambda st: st if st and st.get("done") else None)(
            self.driver.execute_script("return window.__labcheck")), timeout, "the page", poll=0.5)
        return state["value"]

    def wait(self, predicate, timeout: float, what: str, poll: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(poll)

    def close(self):
        try:
            self.driver.quit()
        finally:
            self._profile.cleanup()


def _screenshot(browser: Browser, out: Path, name: str, result: Result, element=None) -> None:
    path = out / f"{name}.png"
    if element is not None:  # twice: cells above change height as they are laid out, which moves the target
        for _ in range(2):
            browser.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
            time.sleep(0.7)
    browser.driver.save_screenshot(str(path))
    result.screenshots.append(path.name)


def _settle_widgets(browser: Browser, expected: int = 0, timeout: float = 60) -> dict:
    """Wait until ``expected`` widget views have rendered or failed and none says "Loading widget...": views
    render some time after their output, once their models arrive (from the kernel, or from the saved state)."""
    state = {}

    def settled():
        state.update(browser.driver.execute_script(_JS_WIDGET_TEXTS))
        return state["loading"] == 0 and state["views"] + len(state["errors"]) >= expected

    try:
        browser.wait(settled, timeout, "widgets to render")
    except TimeoutError:
        pass  # reported by the caller through state["loading"]
    return state


def _first_output(browser: Browser):
    """What a screenshot should show: the first widget (a bar, the explorer), else the first figure."""
    for css in (".jp-OutputArea-output .jupyter-widgets", ".jp-OutputArea-output img"):
        found = browser.driver.find_elements("css selector", css)
        if found:
            return found[0]
    return None


def _move_explorer(browser: Browser, out: Path, result: Result, timeout: float = 180) -> None:
    """Pick another user in the tier explorer's dropdown and wait for its output to change."""
    from selenium.webdriver.support.ui import Select

    boxes = browser.driver.find_elements("css selector", ".widget-interact")
    if not boxes:
        result.problems.append("the tier explorer (an ipywidgets interact with a user dropdown) is not on the page")
        return
    box = boxes[-1]
    output = box.find_element("css selector", ".widget-output")
    before = browser.wait(lambda: output.get_attribute("textContent").strip(), 120, "the explorer's first output")
    _screenshot(browser, out, f"{EXPLORER_NOTEBOOK}-explorer-before", result, box)
    select = Select(box.find_element("css selector", "select"))
    old = select.first_selected_option.text
    select.select_by_index(2 if len(select.options) > 2 else len(select.options) - 1)
    new = select.first_selected_option.text
    t0 = time.perf_counter()
    seen = []

    def redrawn():  # changed, and the same on two polls a second apart (the figure and both tables are in)
        seen.append(output.get_attribute("textContent").strip())
        return len(seen) > 1 and seen[-1] and seen[-1] != before and seen[-1] == seen[-2]

    try:
        browser.wait(redrawn, timeout, f"the explorer to redraw for user {new}", poll=1.0)
    except TimeoutError as e:
        result.problems.append(f"explorer: user {old} -> {new}, but the output did not change ({e})")
        return
    result.seconds["explorer redraw"] = round(time.perf_counter() - t0, 1)
    _screenshot(browser, out, f"{EXPLORER_NOTEBOOK}-explorer-after", result, box)


def _load_lab(browser: Browser, server: LabServer, timeout: float = 120) -> None:
    """A fresh JupyterLab page; returns once its application object exists (the page's scripts have run)."""
    browser.driver.get(f"{server.url}/lab?token={server.token}")
    browser.wait(lambda: browser.driver.execute_script("return !!window.jupyterapp"), timeout,
                 "JupyterLab to load in the browser (window.jupyterapp; is expose_app_in_browser on?)")


def check_notebook(browser: Browser, server: LabServer, path: Path, out: Path, run_timeout: float) -> Result:
    """Open, run all, save, shut down, reopen in a fresh page; return what went wrong (empty problems: fine)."""
    name = path.stem
    result = Result(name)
    t0 = time.perf_counter()
    _load_lab(browser, server)
    opened = browser.run_js(_JS_OPEN, path.name, 120, timeout=180)
    if opened.get("error"):
        result.problems.append(f"could not open with a kernel: {opened['error'][:500]}")
        return result
    result.kernel = opened["kernel"] or ""
    if result.kernel != KERNEL_NAME:
        result.problems.append(f"kernel is {result.kernel!r} ({opened['display']}), not {KERNEL_NAME!r}: the "
                               "notebook's kernelspec or the registered kernels are wrong (make install registers it)")
    imports = browser.run_js(_JS_KERNEL_IMPORTS, timeout=60)
    if isinstance(imports, dict):
        imports = f"ERROR {imports.get('error')}"
    lines = imports.strip().splitlines()
    if imports.startswith("ERROR") or not lines:
        result.problems.append(f"kernel {result.kernel!r} cannot import course_lib: {imports.strip()[:300]}")
        return result
    if not Path(lines[0]).resolve().is_relative_to(REPO.resolve()):
        result.problems.append(f"kernel {result.kernel!r} imports course_lib from {lines[0]}, not from this "
                               f"checkout {REPO}: it runs another environment ({lines[-1]})")
    result.seconds["open"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    if name in PREEXECUTED:  # papermill ran it with these parameters: open, check, save and reopen its outputs
        ran = {"ok": True}
    else:
        ran = browser.run_js(_JS_RUN_ALL, timeout=run_timeout)
        result.seconds["run all"] = round(time.perf_counter() - t0, 1)
    if ran.get("error") or not ran.get("ok"):
        result.problems.append(f"Run All did not finish cleanly: {ran.get('error') or 'a cell failed'}")
    live = _settle_widgets(browser, expected=browser.driver.execute_script(_JS_MODEL_VIEWS))
    result.progress_bars = live.get("bars", 0)
    _screenshot(browser, out, f"{name}-ran", result, _first_output(browser))
    if name == EXPLORER_NOTEBOOK:
        _move_explorer(browser, out, result)

    t0 = time.perf_counter()
    saved = browser.run_js(_JS_SAVE, timeout=120)
    if saved.get("error") or saved.get("dirty"):
        result.problems.append(f"save failed: {saved}")
    nb = json.loads(path.read_text(encoding="utf-8"))
    result.widget_views = len(widget_views(nb))
    result.problems += [f"error output in {e}" for e in error_outputs(nb)]
    if unexecuted_cells(nb):
        result.problems.append(f"cells never ran: {unexecuted_cells(nb)}")
    missing = missing_widget_state(nb)
    if missing:
        result.problems.append(f"{len(missing)} of {result.widget_views} widget views saved without their state "
                               f"(is {WIDGETS_PLUGIN} saveState on?)")
    closed = browser.run_js(_JS_SHUTDOWN_CLOSE, timeout=60)
    if closed.get("error"):
        result.problems.append(f"could not shut the kernel down: {closed['error']}")
    result.seconds["save"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    _load_lab(browser, server)  # a fresh page: nothing of the old session survives
    reopened = browser.run_js(_JS_OPEN, path.name, 120, timeout=180)
    if reopened.get("error"):
        result.problems.append(f"could not reopen: {reopened['error'][:300]}")
        return result
    state = _settle_widgets(browser, expected=result.widget_views)
    result.seconds["reopen"] = round(time.perf_counter() - t0, 1)
    if state.get("loading"):
        result.problems.append(f"after reopening, {state['loading']} output(s) still say 'Loading widget...'")
    if state.get("views", 0) < result.widget_views and not state.get("errors"):
        result.problems.append(f"after reopening, {state.get('views', 0)} of {result.widget_views} widget views "
                               "rendered")
    for text in state.get("errors", []):
        result.problems.append(f"after reopening: {text!r}")
    _screenshot(browser, out, f"{name}-reopened", result, _first_output(browser))
    browser.run_js(_JS_SHUTDOWN_CLOSE, timeout=60)

    from course_lib.report import to_html

    html = to_html(path, out / f"{name}.html")
    if html.stat().st_size < 10_000:
        result.problems.append(f"{html} is only {html.stat().st_size} bytes")
    return result


def report_opens_offline(browser: Browser, executed: Path, out: Path) -> Result:
    """Render the executed report notebook as the reader's report and open it with the network switched off
    (Chrome's network emulation): it must render, and ask nothing of the web (no script, style or font)."""
    from course_lib.render import to_html

    result = Result("report.html, network off")
    html = to_html(executed, out / "report-offline.html", with_code=False, layout={"title": "Report"})
    driver = browser.driver
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                               "downloadThroughput": -1, "uploadThroughput": -1})
    canary_page = out / "offline-canary.html"  # proves the check can fail: a page that wants a script from the web
    canary_page.write_text('<html><head><script src="https://cdn.example.org/require.js"></script></head>'
                           "<body>canary</body></html>")

    def remote_requests(page: Path) -> list:
        driver.get(page.resolve().as_uri())
        browser.wait(lambda: driver.execute_script("return document.readyState") == "complete", 60, "the page")
        return driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => /^https?:/.test(n))")

    try:
        if not remote_requests(canary_page):
            result.problems.append("the offline check is blind: a page asking for a web script was not caught")
        remote = remote_requests(html)
        text = driver.execute_script("return document.body ? document.body.innerText.length : 0")
        tables = driver.execute_script("return document.querySelectorAll('table').length")
        _screenshot(browser, out, "report-offline", result)
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                                   "downloadThroughput": -1, "uploadThroughput": -1})
    if remote:
        result.problems.append(f"the report asked the network for {len(remote)} file(s), e.g. {remote[0]}")
    if text < 1000 or tables == 0:
        result.problems.append(f"the report rendered {text} characters and {tables} tables offline")
    return result


def canary_notebook() -> dict:
    """A two-cell notebook with a slider and a tqdm bar: what a lost widget state breaks, in seconds."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets as W\nW.IntSlider(value=3, description='canary')"),
                nbformat.v4.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass")]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (course kit)", "language": "python"}
    return nb


def canary(browser: Browser, out: Path) -> Result:
    """Prove the check can fail: with widget state *not* saved (the learner's bug), a reopened notebook must be
    reported. Raises LabCheckError when the check lets it pass, since then its green means nothing."""
    import nbformat

    folder = out / "canary"
    (folder / "notebook").mkdir(parents=True, exist_ok=True)
    path = folder / "notebook" / "canary.ipynb"
    nbformat.write(nbformat.from_dict(canary_notebook()), str(path))
    with LabServer(path.parent, folder / "jupyterlab.log", user_settings={WIDGETS_PLUGIN: {"saveState": False}}) as srv:
        r = check_notebook(browser, srv, path, folder, run_timeout=120)
    caught = [p for p in r.problems if "without their state" in p]
    shown = [p for p in r.problems if "model not found" in p or "Error displaying widget" in p]
    if not (caught and shown):
        raise LabCheckError("self-test failed: with saveState off, a reopened notebook with 2 widgets should be "
                            f"reported (saved without state, 'model not found' on screen); got {r.problems}")
    return r


def run(out: Path, names=None, defaults: bool = False, install: bool = True, run_timeout: float = 900,
        executed: Path | None = None) -> list[Result]:
    """The whole check; returns one Result per notebook (raises LabCheckError when it cannot run at all)."""
    out = Path(out).resolve()
    t_start = time.perf_counter()
    chromium, chromedriver = ensure_browser(install)
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise LabCheckError("selenium is not installed: run `make check-lab` (it installs the kit's `lab` extra)") from None
    if out.exists():
        shutil.rmtree(out)
    work = out / "notebooks"
    paths = prepare(list(names or []), work, defaults=defaults, output_dir=out / "report-output", executed=executed)
    results = []
    with LabServer(work, out / "jupyterlab.log") as server:
        plugin = server.api(f"/lab/api/settings/{WIDGETS_PLUGIN}")
        default = plugin.get("schema", {}).get("properties", {}).get("saveState", {}).get("default")
        save_state = (plugin.get("settings") or {}).get("saveState", default)  # overrides.json sets the default
        if save_state is not True:
            raise LabCheckError(f"this JupyterLab does not save widget state ({WIDGETS_PLUGIN} saveState is "
                                f"{save_state!r}): install {SETTINGS_FILE.relative_to(REPO)} with `make lab-settings`")
        browser = Browser(chromium, chromedriver, out / "chromedriver.log")
        try:
            t0 = time.perf_counter()
            canary(browser, out)
            print(f"  self-test: widgets saved without state are caught ({time.perf_counter() - t0:.0f} s)", flush=True)
            for path in paths:
                print(f"  {path.stem}: ", end="", flush=True)
                t0 = time.perf_counter()
                try:
                    r = check_notebook(browser, server, path, out, run_timeout)
                except Exception as e:  # a timeout or a browser crash fails this notebook, not the report
                    r = Result(path.stem, problems=[f"{type(e).__name__}: {str(e)[:500]}"])
                    try:
                        browser.driver.save_screenshot(str(out / f"{path.stem}-failed.png"))
                    except Exception:
                        pass
                r.seconds["total"] = round(time.perf_counter() - t0, 1)
                results.append(r)
                print(f"{'ok' if not r.problems else 'FAILED'} in {r.seconds['total']} s "
                      f"({', '.join(f'{k} {v} s' for k, v in r.seconds.items() if k != 'total')}; "
                      f"{r.widget_views} widget views, {r.progress_bars} progress bars)", flush=True)
                for p in r.problems:
                    print(f"      - {p}", flush=True)
            report_nb = next((p for p in paths if p.stem == REPORT_NOTEBOOK), None)
            if report_nb is not None:  # the reader's report must open on a train: no script or font from the web
                t0 = time.perf_counter()
                r = report_opens_offline(browser, report_nb, out)
                r.seconds["total"] = round(time.perf_counter() - t0, 1)
                results.append(r)
                print(f"  {r.notebook}: {'ok' if not r.problems else 'FAILED'} in {r.seconds['total']} s", flush=True)
                for p in r.problems:
                    print(f"      - {p}", flush=True)
        finally:
            browser.close()
    summary = {"seconds": round(time.perf_counter() - t_start, 1), "parameters": "defaults" if defaults else "ci",
               "opened as executed by papermill": sorted(PREEXECUTED),
               "results": [r.__dict__ for r in results]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.labcheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/lab", help="screenshots, saved notebooks, HTML, logs (default reports/lab)")
    p.add_argument("--only", nargs="*", help="notebook names, e.g. 04_tiering")
    p.add_argument("--defaults", action="store_true", help="run the notebooks with their defaults, not CI_PARAMETERS")
    p.add_argument("--no-install", action="store_true", help="never apt-get install Chromium; fail if it is missing")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed for one notebook's Run All")
    p.add_argument("--executed", help="folder of papermill's executed copies (COURSE_EXECUTED_DIR of make test): "
                                      "notebooks without live widgets are opened from there, not run again")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        results = run(Path(args.out), args.only, args.defaults, not args.no_install, args.timeout,
                      Path(args.executed) if args.executed else None)
    except LabCheckError as e:
        print(f"check-lab: cannot run: {e}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.problems]
    print(f"check-lab: {len(results) - len(failed)} of {len(results)} notebooks fine in "
          f"{time.perf_counter() - t0:.0f} s; screenshots in {args.out}/")
    for r in failed:
        print(f"check-lab: {r.notebook} FAILED: " + "; ".join(r.problems), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

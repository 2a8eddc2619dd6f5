"""Where CI's time went: one table from the phase timings of ``.ci/run``, pytest's JUnit XML and the browser check's
summary. Not part of the learner's library.

    python -m tools.ci_times --phase install=95 --phase "make test=1234" --junit reports/ci/junit.xml \\
        --lab reports/lab/summary.json

Rows: each phase; unit tests (every test that is not a notebook run); each notebook under papermill (its
small-parameter test), under nbval (the sum of its cells) and in the browser.
"""
from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

PAPERMILL_TEST = re.compile(r"test_notebook_runs_headless\[(?P<name>[^\]]+)\]")


def junit_times(path: Path) -> tuple[float, dict, dict, int]:
    """(unit-test seconds, papermill seconds per notebook, nbval seconds per notebook, number of unit tests)."""
    unit, papermill, nbval = 0.0, {}, defaultdict(float)
    n = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        t = float(case.get("time", 0) or 0)
        cls, name = case.get("classname", ""), case.get("name", "")
        m = PAPERMILL_TEST.search(name)
        if m:
            papermill[m.group("name")] = t
        elif cls.endswith(".ipynb") or ".ipynb" in cls or name.startswith("Cell "):
            stem = Path(cls.replace(".", "/").split("/ipynb")[0]).name if not cls.endswith(".ipynb") else Path(cls).stem
            nbval[re.sub(r"^notebooks[./]", "", stem)] += t
        else:
            unit += t
            n += 1
    return unit, papermill, dict(nbval), n


def table(phases: dict, junit: Path | None, lab: Path | None) -> str:
    rows = [f"| {name} | {sec:.0f} |" for name, sec in phases.items()]
    papermill, nbval, browser, opened = {}, {}, {}, set()
    if junit is not None and junit.is_file():
        unit, papermill, nbval, n = junit_times(junit)
        rows.append(f"| unit tests ({n} tests; the notebook runs are below) | {unit:.0f} |")
    if lab is not None and lab.is_file():
        summary = json.loads(lab.read_text())
        opened = set(summary.get("opened as executed by papermill", []))
        browser = {r["notebook"]: r.get("seconds", {}).get("total", 0.0) for r in summary.get("results", [])}
    names = sorted(set(papermill) | set(nbval) | set(browser))
    lines = ["| phase | seconds |", "|---|---|", *rows, "",
             "| notebook | papermill (small parameters) | nbval (defaults) | browser |", "|---|---|---|---|"]
    for name in names:
        b = browser.get(name)
        bcell = "–" if b is None else f"{b:.0f}" + (" (opened papermill's copy)" if name in opened else " (run)")
        pm, nv = (f"{d[name]:.0f}" if name in d else "–" for d in (papermill, nbval))
        lines.append(f"| {name} | {pm} | {nv} | {bcell} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.ci_times", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", action="append", default=[], help="NAME=SECONDS, in order")
    p.add_argument("--junit", help="pytest --junitxml file")
    p.add_argument("--lab", help="the browser check's summary.json")
    args = p.parse_args(argv)
    phases = {}
    for item in args.phase:
        name, _, sec = item.rpartition("=")
        phases[name] = float(sec)
    print(table(phases, Path(args.junit) if args.junit else None, Path(args.lab) if args.lab else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Wall time of every notebook at its defaults, with a cold and a warm cache -> benchmarks/notebook_times.md.

Cold: the notebook alone on an empty cache (what a learner who skipped `make warm` waits for: encoding, training).
Warm: after `make warm` into a fresh cache (its time is measured too), each notebook once more. Every run is headless
(papermill, the kit's kernel), on this machine; the teachers' guide takes its runtimes from the file this writes.

    .venv/bin/python benchmarks/notebook_times.py                 # all notebooks, cold and warm (tens of minutes)
    .venv/bin/python benchmarks/notebook_times.py --warm-only 07_finetuning 08_explanations
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "notebook_times.md"
TARGET_S = 60.0  # the class-speed target: every notebook in about a minute with a warm cache


def run_one(nb: Path, cache: Path, scratch: Path, in_place: bool = False) -> float:
    """Execute ``nb`` at its defaults into ``scratch`` (or in place, as `make notebooks` does) with ``cache`` as the
    kit's cache; wall seconds."""
    from course_lib.report import REPORT_NOTEBOOK, execute, refresh_in_place

    os.environ["COURSE_CACHE_DIR"] = str(cache)  # the kernel inherits it
    t0 = time.perf_counter()
    if in_place:
        refresh_in_place([nb.stem])
    else:
        params = {"OUTPUT_DIR": str(scratch / "report")} if nb.name == REPORT_NOTEBOOK.name else {}
        execute(nb, scratch / nb.name, params)
    return time.perf_counter() - t0


def rerun(notebooks, cache: Path, out: Path, in_place: bool) -> int:
    """A second warm pass on a cache that already holds what a first run left (the language model's outputs,
    which `make warm` does not generate), appended to the file as its own table."""
    scratch = Path(tempfile.mkdtemp(prefix="nbtimes-"))
    load = os.getloadavg()[0]
    try:
        times = {nb.stem: run_one(nb, cache, scratch, in_place=in_place) for nb in notebooks}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = ["", "## A second run on a warm cache", "",
             "The same notebooks run again on a cache that a first run already filled (the language model's outputs "
             "too, which `make warm` does not generate), at a load average of "
             f"{load:.1f} when they started.", "", "| notebook | second run (s) | ≤ 60 s |", "|---|---|---|"]
    lines += [f"| `{n}` | {t:.0f} | {'yes' if t <= TARGET_S else '**no**'} |" for n, t in times.items()]
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    from course_lib.report import select_notebooks

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="notebooks (default: all)")
    p.add_argument("--warm-only", action="store_true", help="skip the cold runs")
    p.add_argument("--in-place", action="store_true", help="the warm runs re-execute the committed notebooks in place "
                                                            "(what `make notebooks` does), so they are timed once")
    p.add_argument("--out", default=str(OUT), help=f"markdown file (default {OUT.relative_to(ROOT)})")
    p.add_argument("--rerun", metavar="CACHE", help="time the named notebooks again on this already warm cache (e.g. "
                                                    "~/.cache/course_lib after a first run) and append them to --out")
    args = p.parse_args(argv)
    notebooks = select_notebooks(args.names or None)
    if args.rerun:
        return rerun(notebooks, Path(args.rerun).expanduser(), Path(args.out), args.in_place)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    scratch = Path(tempfile.mkdtemp(prefix="nbtimes-"))
    load_start = os.getloadavg()[0]
    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    try:
        if not args.warm_only:
            for nb in notebooks:
                cache = scratch / f"cold-{nb.stem}"
                cold[nb.stem] = run_one(nb, cache, scratch)
                shutil.rmtree(cache, ignore_errors=True)
                print(f"cold {nb.stem}: {cold[nb.stem]:.1f} s", flush=True)
        cache = scratch / "warm"
        os.environ["COURSE_CACHE_DIR"] = str(cache)
        from course_lib.warmup import warm_cache

        t0 = time.perf_counter()
        warm_cache(verbose=False)
        warm_s = time.perf_counter() - t0
        print(f"make warm: {warm_s:.1f} s", flush=True)
        for nb in notebooks:
            warm[nb.stem] = run_one(nb, cache, scratch, in_place=args.in_place)
            print(f"warm {nb.stem}: {warm[nb.stem]:.1f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import torch

    lines = ["# Notebook runtimes", "",
             f"Written by `benchmarks/notebook_times.py` on {dt.date.today()}: {os.cpu_count()} CPU cores, "
             f"{platform.machine()}, torch {torch.__version__}, "
             f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}. "
             "Each notebook at its defaults, headless (papermill). Cold: alone on an empty cache. Warm: after "
             f"`make warm` into a fresh cache, which took **{warm_s:.0f} s**. Target: every notebook in about "
             f"{TARGET_S:.0f} s with a warm cache. Load average when the runs started: {load_start:.1f}, when they "
             f"ended: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores: above that, other jobs shared the machine "
             "and the times are inflated).", "",
             "| notebook | cold cache (s) | warm cache (s) | warm ≤ 60 s |", "|---|---|---|---|"]
    for nb in notebooks:
        c = f"{cold[nb.stem]:.0f}" if nb.stem in cold else "–"
        w = warm[nb.stem]
        lines.append(f"| `{nb.stem}` | {c} | {w:.0f} | {'yes' if w <= TARGET_S else '**no**'} |")
    total_w = sum(warm.values())
    lines += ["", f"All notebooks, warm: {total_w:.0f} s"
              + (f"; cold: {sum(cold.values()):.0f} s." if cold else "."), ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

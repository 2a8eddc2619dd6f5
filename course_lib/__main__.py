"""Command line.

    python -m course_lib notebooks [--out DIR | --in-place] [--only NAME ...]
    python -m course_lib report --dataset shop|movielens-100k [--data-dir DIR] [--param NAME=VALUE ...] --out DIR
                                [--with-code]
    python -m course_lib report ... --param NAME=V1,V2,... --out DIR     (a sweep: one report per value, compared)
    python -m course_lib compare RUN_A RUN_B [...] [--out DIR] [--metric ndcg ...] [--group all|returning|new]
    python -m course_lib compare --verdicts RUN_A RUN_B [...]   (the article's claims side by side, any datasets)
    python -m course_lib edition student OUT      (the notebooks without solutions, exercise outputs cleared)
    python -m course_lib grade SUBMISSIONS/ --out grades.csv [--timeout SECONDS]

Everything that can be checked before a run is checked first: a bad argument prints one line ``error: ...`` and
exits with code 2. A run that starts and then fails prints one line naming the cell and the kept notebook, and
exits with code 1. Outputs appear atomically (see ``course_lib/report.py``).
"""
from __future__ import annotations

import argparse
import sys
import time

from . import report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    nb = sub.add_parser("notebooks", help="execute the course notebooks headless (HTML into --out)")
    nb.add_argument("--out", default="reports", help="folder for executed notebooks and HTML (default: reports)")
    nb.add_argument("--in-place", action="store_true", help="re-execute the committed notebooks in place")
    nb.add_argument("--only", nargs="*", help="notebook names to run, e.g. 00_welcome (or just 00)")
    rp = sub.add_parser("report", help="run the report notebook for a dataset and configuration")
    rp.add_argument("--dataset", default="shop", help="shop or movielens-100k (default: shop)")
    rp.add_argument("--data-dir", help="the dataset's folder (default: data/shop or data/ml-100k)")
    rp.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="any report parameter, repeatable, e.g. --param K=20 --param ALPHA=1.0 --param FAST=True; "
                         "NAME=V1,V2,... sweeps one parameter: one report per value in DIR/NAME=V, then compared; "
                         "a comma inside one string value is escaped, 'NAME=a\\,b', or quoted, 'NAME=\"a,b\"'")
    rp.add_argument("--out", help="folder for report.html, report.ipynb, per_user.csv and metrics.json (required)")
    rp.add_argument("--with-code", action="store_true", help="keep the code cells in report.html (default: hidden)")
    rp.add_argument("--list-params", action="store_true", help="print the report's parameters and exit")
    cp = sub.add_parser("compare", help="compare report runs side by side, paired where the users match")
    cp.add_argument("runs", nargs="*", metavar="RUN",
                    help="report folders (the --out of `report`); the first is the reference")
    cp.add_argument("--out", help="folder to write compare.html into (default: print only)")
    cp.add_argument("--metric", action="append", help="per-user metric to compare, repeatable (default: ndcg, recall)")
    cp.add_argument("--group", default="all", help="users to compare on: all, returning or new (default: all)")
    cp.add_argument("--verdicts", action="store_true",
                    help="show the article's claims of each run side by side instead (runs of different datasets too)")
    ed = sub.add_parser("edition", help="write the student edition: solutions removed, exercise outputs cleared")
    ed.add_argument("kind", choices=["student"], help="the edition to write (student)")
    ed.add_argument("out", help="a new or empty folder, or an edition written before (replaced)")
    gr = sub.add_parser("grade", help="run SUBMISSIONS/<learner>/<notebook>.ipynb headless; one CSV row per exercise")
    gr.add_argument("submissions", help="folder of <learner>/<notebook>.ipynb")
    gr.add_argument("--out", default="grades.csv", help="CSV to write (default: grades.csv)")
    gr.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default: 300)")
    gr.add_argument("--reference", help="the teacher's executed notebooks, naming each notebook's exercises "
                                        "(default: the kit's notebooks/)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.cmd == "notebooks":
            if args.in_place:
                report.refresh_in_place(args.only)
            else:
                report.run_notebooks(args.out, names=args.only)
        elif args.cmd == "report":
            if args.list_params:
                for name, spec in report.notebook_parameters().items():
                    print(f"{name:16} {spec['type']:6} default {spec['default']:24} {spec['help']}")
                return 0
            if not args.out:
                raise report.ReportParameterError("--out DIR is required: where report.html and metrics.json go")
            params = {}
            for text in args.param:
                name, value = report.parse_param(text)
                if name in params:
                    raise report.ReportParameterError(f"--param {name} is given twice ({params[name]!r} and "
                                                      f"{value!r}); give it once")
                params[name] = value
            params, sweep = report.find_sweep(params)
            if sweep is None:
                paths = report.run_report(args.out, args.dataset, args.data_dir, params, with_code=args.with_code)
                for k in ("html", "metrics", "per_user", "notebook"):
                    print(f"{k:9} {paths[k]}")
            else:
                done = report.run_sweep(args.out, args.dataset, args.data_dir, params, sweep,
                                        with_code=args.with_code, echo=lambda line: print(line, flush=True))
                print()
                print(done["comparison"].to_text())
                print(f"\ncompare  {done['html']}")
        elif args.cmd == "compare":
            return _compare(args, t0)
        elif args.cmd == "edition":
            return _edition(args, t0)
        elif args.cmd == "grade":
            return _grade(args, t0)
    except report.ReportParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except report.ReportRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _compare(args, t0) -> int:
    from .compare import RunFolderError, compare_runs, verdicts_side_by_side, write_html

    if args.verdicts:
        import pandas as pd

        try:
            table = verdicts_side_by_side(args.runs)
        except RunFolderError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 80):
            print(table.to_string())
        print(f"done in {time.perf_counter() - t0:.1f} s")
        return 0
    try:
        out = report._output_folder(args.out) if args.out else None
        comparison = compare_runs(args.runs, metrics=args.metric or ("ndcg", "recall"), group=args.group)
    except (RunFolderError, report.ReportParameterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(comparison.to_text())
    if out is not None:
        print(f"\nhtml     {write_html(comparison, out / 'compare.html')}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _edition(args, t0) -> int:
    from .editions import EditionError, write_student_edition

    try:
        paths = write_student_edition(args.out)
    except EditionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"student edition: {len(paths)} notebooks in {args.out} (solutions removed, exercise outputs cleared)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _grade(args, t0) -> int:
    from collections import Counter

    from .grading import GradingError, grade

    try:
        rows = grade(args.submissions, args.out, timeout=args.timeout, reference=args.reference)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = Counter(r["status"] for r in rows)
    print(f"{len({r['learner'] for r in rows})} learners, {len(rows)} rows: "
          + ", ".join(f"{counts[s]} {s}" for s in ("passed", "failed", "not answered", "error")) + f" -> {args.out}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: ``python -m course_lib notebooks [--out DIR | --in-place] [--only NAME ...]``."""
from __future__ import annotations

import argparse
import time

from . import report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib")
    sub = p.add_subparsers(dest="cmd", required=True)
    nb = sub.add_parser("notebooks", help="execute the course notebooks headless (HTML into --out)")
    nb.add_argument("--out", default="reports", help="folder for executed notebooks and HTML (default: reports)")
    nb.add_argument("--in-place", action="store_true", help="re-execute the committed notebooks in place")
    nb.add_argument("--only", nargs="*", help="notebook names to run, e.g. 00_welcome")
    args = p.parse_args(argv)
    if args.cmd == "notebooks":
        t0 = time.perf_counter()
        if args.in_place:
            report.refresh_in_place(args.only)
        else:
            report.run_notebooks(args.out, names=args.only)
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

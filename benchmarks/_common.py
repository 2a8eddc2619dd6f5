"""Shared by the benchmark scripts: print results as an aligned table and optionally save them as JSON."""
from __future__ import annotations

import json


def emit(res: dict, json_path: str | None = None) -> dict:
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=2)
    return res

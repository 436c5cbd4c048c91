"""Generation as a tier capability (relforge.tiers): the local causal LM through transformers'
``generate`` (tiny Llama), the chat rendering and cleaning, and the remote backends against the
stand-in servers of tests/tiers (their retries and failure reporting are the scorers')."""

from __future__ import annotations

import pytest

from relforge.config import TierSpec
from relforge.errors import ConfigError
from relforge.tiers import (
    Example,
    LocalQueryGenerator,
    OpenAIQueryGenerator,
    RemotePolicy,
    TGIQueryGenerator,
    clean_query,
    load_generator,
    load_query_prompt,
    load_tokenizer,
    render_chat,
)
from tests.tiers._fake_servers import OpenAIFake, Script, TGIStandIn
from tests.tiny_models import train_bpe_tokenizer

ITEMS = ["red running shoes | acme | red | Shoes", "blue coffee mug with steel handle and a very long description",
         "lamp"]
FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}


def test_batched_greedy_generation_writes_what_one_at_a_time_writes(cs_models):
    prompt = load_query_prompt()
    chats = [prompt.messages(item) for item in ITEMS]  # prompts of different lengths: left padding
    with LocalQueryGenerator(cs_models["llama"], batch_size=3, max_new_tokens=6, device="cpu") as gen:
        together = gen.generate(chats)
        alone = [gen.generate([c]).texts[0] for c in chats]
    assert together.texts == alone
    assert not together.failed.any() and (together.cost > 0).all()
    assert all(len(t) == 1 and "\n" not in t[0] for t in together.texts)


def test_several_queries_per_chat_need_sampling_and_the_seed_repeats_them(cs_models):
    prompt = load_query_prompt()
    chats = [prompt.messages(ITEMS[0])]
    with LocalQueryGenerator(cs_models["llama"], max_new_tokens=6, device="cpu") as greedy, \
            pytest.raises(ValueError, match="needs sampling"):
        greedy.generate(chats, n=2)
    with LocalQueryGenerator(cs_models["llama"], max_new_tokens=6, temperature=1.0, device="cpu") as sampler:
        first = sampler.generate(chats, n=3, seed=5)
        second = sampler.generate(chats, n=3, seed=5)
    assert len(first.texts[0]) == 3 and first.texts == second.texts


def test_the_prompt_file_renders_examples_as_turns_or_a_style_note(cs_models):
    prompt = load_query_prompt()
    tokenizer = load_tokenizer(cs_models["llama"])
    paired = render_chat(tokenizer, prompt.messages("lamp", [Example("reading lamp", "desk lamp | acme")]))
    assert paired.count("<|im_start|>user") == 2 and "<|im_start|>assistant\nreading lamp<|im_end|>" in paired
    assert paired.endswith("<|im_start|>assistant\n")
    style = render_chat(tokenizer, prompt.messages("lamp", [Example("reading lamp"), Example("led bulb")]))
    assert style.count("<|im_start|>user") == 1 and "reading lamp; led bulb" in style
    shipped = render_chat(tokenizer, prompt.messages("lamp"))  # no query of the run: the file's own examples
    assert shipped.count("<|im_start|>assistant\n") == 1 + len(prompt.default_examples)


def test_chats_render_for_templates_without_a_system_role_and_without_any_template():
    messages = load_query_prompt().messages("lamp")
    gemma_like = train_bpe_tokenizer(chat_template=(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<model>{% endif %}"))
    text = render_chat(gemma_like, messages)
    assert text.startswith("<user>You write the search queries") and text.endswith("<model>")
    plain = render_chat(train_bpe_tokenizer(chat_template=None), messages)
    assert plain.endswith("Product: lamp\nWrite one search query a shopper could type to find this product. "
                          "Answer with the query only.\nQuery:")


@pytest.mark.parametrize(("raw", "query"), [
    ('Query: "red running shoes."', "red running shoes"),
    ("1. blue mug\n2. steel mug", "blue mug"),
    ("\n\n  - led   desk lamp  ", "led desk lamp"),
    ("", ""),
])
def test_clean_query_keeps_the_first_line_without_markers(raw, query):
    assert clean_query(raw) == query


def test_openai_generator_sends_the_rendered_chat_and_reports_a_dead_server_as_failed(cs_models):
    tokenizer = load_tokenizer(cs_models["llama"])
    script = Script(lambda prompt: [(0, " red shoes", 0.0)])
    chats = [load_query_prompt().messages(item) for item in ITEMS]
    with OpenAIFake(script) as server:
        gen = OpenAIQueryGenerator(server.url, name="writer", tokenizer=tokenizer, max_new_tokens=7,
                                   policy=RemotePolicy(**FAST))
        out = gen.generate(chats)
        gen.close()
    assert out.texts == [[" red shoes"]] * 3 and not out.failed.any()
    body = script.bodies[-1]
    assert body["max_tokens"] == 7 and body["stop"] == ["\n"] and body["temperature"] == 0
    assert body["prompt"].endswith("<|im_start|>assistant\n") and "Product: " in body["prompt"]
    failing = Script(lambda prompt: [(0, "x", 0.0)], fail_first=99, fail_status=503)
    with OpenAIFake(failing) as server:
        gen = OpenAIQueryGenerator(server.url, served_model="fake-model", name="writer", tokenizer=tokenizer,
                                   policy=RemotePolicy(retries=1, **FAST))
        out = gen.generate(chats[:2])
        gen.close()
    assert out.failed.all() and out.texts == [[], []]
    assert all("HTTP 503" in e for e in out.errors)


def test_tgi_generator_reads_the_generated_text(cs_models, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    tokenizer = load_tokenizer(cs_models["llama"])
    script = Script(lambda prompt: [(5, "desk lamp", -0.1)])
    with TGIStandIn(script) as server:
        gen = TGIQueryGenerator(server.url, name="writer", tokenizer=tokenizer, max_new_tokens=5,
                                policy=RemotePolicy(**FAST))
        out = gen.generate([load_query_prompt().messages("lamp")])
    assert out.texts == [["desk lamp"]] and not out.failed.any()
    params = script.bodies[-1]["parameters"]
    assert params["max_new_tokens"] == 5 and params["stop"] == ["\n"]


def test_a_tier_that_cannot_generate_is_refused_and_a_probe_folder_generates_with_its_base(cs_models, tmp_path):
    with pytest.raises(ConfigError, match="cannot generate"):
        load_generator(TierSpec(name="tier1", backend="cross-encoder", model=str(cs_models["ce"])))
    from relforge.grades import ESCI
    from relforge.tiers import TierDescriptor

    probe = tmp_path / "probe"
    probe.mkdir()
    TierDescriptor(backend="probe", head="softmax", grade_scale=ESCI, base_model=str(cs_models["llama"])).save(probe)
    with load_generator(TierSpec(name="tier2", backend="causal-lm", model=str(probe), device="cpu"),
                        max_new_tokens=3) as gen:
        assert isinstance(gen, LocalQueryGenerator) and gen.name == str(cs_models["llama"])

"""The tiny model's tokenizer: lossless round trips, one id per special token, grouped digits."""

from __future__ import annotations

import json
import re

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.tiny_model import (
    CONTROL_TOKENS,
    MARKUP_TOKENS,
    SPECIAL_TOKENS,
    build_model,
    chat_template,
    save_pretrained_bundle,
    tiny_config_for,
    train_tokenizer,
)

CORPUS = [
    "<|im_start|>user\nWhat is 1234 + 5678?<|im_end|>\n<|im_start|>assistant\n",
    '<tool_call>\n{"name": "add", "arguments": {"a": 1234, "b": 5678}}\n</tool_call><|im_end|>\n',
    '<|im_start|>user\n<tool_response>\n{"result": 6912}\n</tool_response><|im_end|>\n',
    "The quick brown fox jumps over the lazy dog. Numbers like 42, 3.14 and 2024 appear often.",
    "SELECT name, total FROM orders WHERE total > 100 ORDER BY total DESC;",
] * 20

ROUND_TRIPS = [
    "plain ascii text, with punctuation!? and  double  spaces",
    "  leading and trailing whitespace \t\n\n",
    "naïve café, Zürich, 日本語のテキスト, emoji 🙂🚀, Ελληνικά",
    json.dumps({"name": "add", "arguments": {"a": -17, "b": 2.5e3, "s": 'quote " and \\ slash'}}),
    "digits 0 7 42 123 4567 1234567890 and 3.14159 and -0.001",
    "<|im_start|>user\nHi<|im_end|>\n<tool_call>\n{}\n</tool_call><think>\n\n</think>",
    "never seen: \x00\x01 ∮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS, 400)


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_round_trip(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=False) == text


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_each_special_token_is_one_id(tokenizer, token: str) -> None:
    ids = tokenizer.encode(f"a{token}b", add_special_tokens=False)
    token_id = tokenizer.convert_tokens_to_ids(token)
    assert tokenizer.encode(token, add_special_tokens=False) == [token_id]
    assert ids.count(token_id) == 1
    assert tokenizer.decode([token_id]) == token


def test_control_tokens_are_skipped_markup_tokens_kept(tokenizer) -> None:
    """As in Qwen3: decoding without special tokens drops <|im_end|> but keeps <tool_call>."""
    text = "".join(CONTROL_TOKENS) + "x" + "".join(MARKUP_TOKENS)
    decoded = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False), skip_special_tokens=True)
    assert decoded == "x" + "".join(MARKUP_TOKENS)


def test_special_tokens_take_no_part_in_merges(tokenizer) -> None:
    """Training cut them out of the corpus, so no learned piece is a fragment such as '<|im_'."""
    fragments = [piece for piece in tokenizer.get_vocab() if "im_" in piece or "tool_" in piece]
    assert sorted(fragments) == sorted(t for t in SPECIAL_TOKENS if "im_" in t or "tool_" in t)


def digit_groups(tokenizer, text: str) -> list[str]:
    """The pre-tokenizer's pieces of ``text`` that contain digits: the units BPE may merge within."""
    pieces = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)
    return [piece for piece, _ in pieces if re.search(r"\d", piece)]


def digit_tokens(tokenizer, text: str) -> list[str]:
    """The tokens of ``text`` that contain digits."""
    tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode(text, add_special_tokens=False))
    return [t for t in tokens if re.search(r"\d", t)]


def test_digits_are_grouped_by_three(tokenizer) -> None:
    assert digit_groups(tokenizer, "x 1234567 y") == ["123", "456", "7"]
    assert digit_groups(tokenizer, "a12b") == ["12"]
    # the corpus taught whole groups such as "123" and "567": BPE may split a group, never join two
    assert "123" in digit_tokens(tokenizer, "1234")
    text = ROUND_TRIPS[4]
    tokens = iter(digit_tokens(tokenizer, text))
    for group in digit_groups(tokenizer, text):
        covered = ""
        while covered != group:
            covered += next(tokens)
            assert group.startswith(covered)


def test_digit_grouping_is_a_parameter() -> None:
    single = train_tokenizer(CORPUS, 400, digit_group=1)
    assert digit_groups(single, "x 1234567 y") == list("1234567")
    assert digit_tokens(single, "1234") == list("1234")


def test_settings_and_chat_template(tokenizer) -> None:
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.padding_side == "left"
    assert tokenizer.chat_template == chat_template()
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Add 2 and 3"}], tokenize=False, add_generation_prompt=True
    )
    assert ids == "<|im_start|>user\nAdd 2 and 3<|im_end|>\n<|im_start|>assistant\n"
    batch = tokenizer(["a", "a b c d"], padding=True)
    assert batch["input_ids"][0][0] == tokenizer.pad_token_id
    assert batch["attention_mask"][0][0] == 0


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(CORPUS, 100)
    with pytest.raises(ValueError, match="digit_group"):
        train_tokenizer(CORPUS, 400, digit_group=0)


def test_bundle_reloads_offline_with_auto_classes(tokenizer, tmp_path, monkeypatch) -> None:
    """What bootstrap writes loads with plain AutoModel/AutoTokenizer and no network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_model(tiny_config_for(tokenizer, hidden=32, layers=1, heads=2, kv_heads=1), seed=3)
    save_pretrained_bundle(model, tokenizer, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    loaded_model = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    for text in ROUND_TRIPS:
        assert loaded_tokenizer.encode(text, add_special_tokens=False) == tokenizer.encode(
            text, add_special_tokens=False
        )
    assert loaded_tokenizer.chat_template == chat_template()
    assert loaded_tokenizer.padding_side == "left"
    assert loaded_tokenizer.eos_token == "<|im_end|>"
    assert loaded_model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert loaded_model.config.tie_word_embeddings
    original = model.state_dict()
    assert all(value.equal(original[name]) for name, value in loaded_model.state_dict().items())


def test_same_seed_same_weights(tokenizer) -> None:
    config = tiny_config_for(tokenizer, hidden=32, layers=1, heads=2, kv_heads=1)
    first, second, other = build_model(config, 1), build_model(config, 1), build_model(config, 2)
    weight = "model.layers.0.mlp.up_proj.weight"
    assert first.state_dict()[weight].equal(second.state_dict()[weight])
    assert not first.state_dict()[weight].equal(other.state_dict()[weight])

"""Building blocks for the embedded tiny Qwen3: its tokenizer, its config, its weights, its bundle.

The tiny model is a real ``Qwen3ForCausalLM`` with a small byte-level BPE tokenizer that carries
Qwen3's special tokens and chat template, so every code path (rendering, parsing, generation, PPO)
is the one the real Qwen3 takes; only the sizes differ. The ``qwen-workbench bootstrap`` command
assembles these pieces into ``assets/tiny-qwen3``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "qwen3_chat.jinja"

# Control tokens: skipped by ``decode(skip_special_tokens=True)``, as in Qwen3's tokenizer.
CONTROL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Markup tokens: single ids that stay visible in decoded text, as in Qwen3 (the parser needs them).
MARKUP_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
SPECIAL_TOKENS: tuple[str, ...] = CONTROL_TOKENS + MARKUP_TOKENS
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# Qwen2/Qwen3's pre-tokenizer split, except numbers: Qwen splits every digit apart, we keep groups of
# up to ``digit_group`` digits, because a tiny model copies numbers from the question far more reliably
# when "4096" is two tokens rather than four.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1,{digits}}}"
    r"| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPECIAL_SPLIT = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))


@cache
def chat_template() -> str:
    """Our Qwen3 chat template (``templates/qwen3_chat.jinja``), read once."""
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def split_pattern(digit_group: int = 3) -> str:
    """The pre-tokenizer regex, keeping runs of digits together in groups of ``digit_group``."""
    if digit_group < 1:
        raise ValueError(f"digit_group must be at least 1, got {digit_group}")
    return _SPLIT_PATTERN.format(digits=digit_group)


def _ordinary_text(texts: Iterable[str]) -> Iterator[str]:
    """The texts with special tokens cut out: BPE training must not learn merges like ``<|im_``."""
    for text in texts:
        for piece in _SPECIAL_SPLIT.split(text):
            if piece:
                yield piece


def _empty_tokenizer(digit_group: int) -> Tokenizer:
    """An untrained byte-level BPE tokenizer with Qwen3's normalizer, split and special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern(digit_group)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    return tokenizer


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, digit_group: int = 3, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``, ready to save beside the tiny model.

    ``vocab_size`` counts everything: the special tokens, the 256 byte symbols and the merges (it
    is an upper bound; a small corpus may yield fewer merges). Every byte has a symbol, so any text
    encodes without unknown tokens and decodes back unchanged (after NFC normalisation, as in Qwen3).
    """
    floor = len(SPECIAL_TOKENS) + 256
    if vocab_size <= floor:
        raise ValueError(f"vocab_size must exceed {floor} (special tokens plus 256 bytes), got {vocab_size}")
    tokenizer = _empty_tokenizer(digit_group)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_ordinary_text(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=chat_template(),
        model_max_length=2048,
    )


def tiny_config(
    vocab_size: int,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    max_position: int = 2048,
    *,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Qwen3Config:
    """A small Qwen3 config with tied embeddings (the embedding matrix is most of a tiny model).

    ``intermediate`` defaults to three times ``hidden``, close to Qwen3's own MLP ratio.
    """
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    if heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        intermediate_size=intermediate if intermediate is not None else 3 * hidden,
        max_position_embeddings=max_position,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=None,
    )


def tiny_config_for(tokenizer: PreTrainedTokenizerFast, **sizes: int) -> Qwen3Config:
    """``tiny_config`` sized and labelled for ``tokenizer`` (vocabulary, eos and pad ids)."""
    return tiny_config(
        len(tokenizer),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
        **sizes,
    )


def build_model(config: Qwen3Config, seed: int) -> Qwen3ForCausalLM:
    """A freshly initialised float32 model; the same seed gives the same weights.

    The global torch RNG is forked, so building a model does not disturb the caller's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    return model.to(torch.float32).eval()


def save_pretrained_bundle(
    model: Qwen3ForCausalLM, tokenizer: PreTrainedTokenizerFast, folder: str | Path
) -> Path:
    """Write model (safetensors), generation config and tokenizer files into ``folder``.

    The result loads offline with ``AutoModelForCausalLM.from_pretrained(folder)`` and
    ``AutoTokenizer.from_pretrained(folder)``; the tokenizer is saved as a plain tokenizers-backed class
    so loading keeps our pre-tokenizer rather than rebuilding Qwen2's from the vocabulary.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = pad_id
    model.generation_config.eos_token_id = [eos_id, pad_id]
    model.generation_config.pad_token_id = pad_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_bundle(
    folder: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int,
    seed: int = 0,
    digit_group: int = 3,
    **sizes: int,
) -> Path:
    """Train a tokenizer on ``texts``, build a fresh model sized by ``sizes`` and save both to ``folder``.

    The whole recipe in one call, for ``bootstrap`` and for tests that need a throwaway model.
    """
    tokenizer = train_tokenizer(texts, vocab_size, digit_group=digit_group)
    model = build_model(tiny_config_for(tokenizer, **sizes), seed)
    return save_pretrained_bundle(model, tokenizer, folder)

"""Batched sampling for many episodes at once, and log-probs of completions for PPO.

``generate_batch`` is our own decoding loop over the KV cache rather than ``model.generate``: the
log-prob of every sampled token comes from the very forward pass that sampled it, so rollouts need no
second pass, and finished rows leave the batch so a long straggler does not pay for the rest.

Which log-prob: for each completion token we record ``log_softmax(logits / temperature)`` at that
token over the whole vocabulary, i.e. the temperature-scaled policy *before* top-p truncation. That is
the distribution PPO's ratio needs and the one ``sequence_logprobs(..., temperature=...)`` recomputes
exactly at training time; with ``top_p=1`` (the PPO setting) it is also precisely the distribution the
token was drawn from. Under top-p < 1 the token was drawn from the truncated, renormalised
distribution, whose log-prob is this value plus the log of the kept mass. Greedy decoding records the
same temperature-scaled log-prob of the argmax token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache

from trainer.tiny_model import EOS_TOKEN, PAD_TOKEN


@dataclass(frozen=True)
class Sample:
    """One generated assistant turn.

    ``token_ids`` ends with <|im_end|> when the turn stopped there (``stopped``); ``finish_reason`` is
    "stop" (<|im_end|>), "eos" (<|endoftext|>, a broken turn) or "length" (``max_new_tokens`` reached).
    ``text`` is the decoded completion without its closing end token, special tokens kept.
    """

    token_ids: list[int]
    logprobs: list[float]
    text: str
    stopped: bool
    finish_reason: str


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The causal-LM module under a peft wrapper (its LoRA layers are injected in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def left_pad(
    sequences: list[list[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists into (input_ids, attention_mask), padded on the left so all rows end together."""
    width = max(len(sequence) for sequence in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
            mask[row, width - len(sequence) :] = 1
    return ids.to(device), mask.to(device)


def is_right_padded(attention_mask: torch.Tensor) -> bool:
    """Whether every row is its real tokens followed by padding (ones, then zeros).

    Then a forward pass may leave the mask out: under causal attention a real token already sees only
    earlier real tokens, the padding's own states are never read, and without a mask SDPA takes its
    fast causal kernel instead of materialising a [B, heads, T, T] mask (about a fifth of a step).
    """
    return bool((attention_mask[:, :-1] >= attention_mask[:, 1:]).all())


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so a left-padded row starts at position 0."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _token_id(tokenizer: Any, token: str) -> int | None:
    """The id of a single-token string, or None when the vocabulary lacks it."""
    return tokenizer.get_vocab().get(token)


def _choose(
    logits: torch.Tensor, *, temperature: float, top_p: float, greedy: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row; return it with its temperature-scaled log-prob (see module docstring)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    if greedy:
        tokens = logp.argmax(dim=-1)
    else:
        probs = logp.exp()
        if top_p < 1.0:
            probs = _top_p_filter(probs, top_p)
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero every token outside the smallest set whose mass reaches ``top_p`` (the top one always stays)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


def _check_arguments(max_new_tokens: int, temperature: float, top_p: float, greedy: bool) -> None:
    """Reject settings that would silently produce nonsense."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature must be positive when sampling, got {temperature} (use greedy=True)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


@torch.inference_mode()
def generate_batch(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts_token_ids: list[list[int]],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    greedy: bool = False,
    on_step: Callable[[list[list[int]]], None] | None = None,
) -> list[Sample]:
    """Generate one assistant turn for every prompt, all in one left-padded batch.

    ``on_step(tokens)``, when given, is called after every decoding step with each row's tokens so
    far (chat streams its reply with it; keep it cheap, it runs between forward passes).

    Each row stops at <|im_end|> (kept as its last token), at <|endoftext|>, or after
    ``max_new_tokens``. Sampling draws from one ``torch.Generator`` seeded with ``seed``, so the same
    prompts, seed and model give the same samples. The model runs in eval mode (dropout off) for the
    call and gets its previous mode back afterwards.
    """
    _check_arguments(max_new_tokens, temperature, top_p, greedy)
    if not prompts_token_ids:
        return []
    if any(not prompt for prompt in prompts_token_ids):
        raise ValueError("every prompt needs at least one token")
    network = unwrap(model)
    was_training = network.training
    network.eval()
    try:
        rows = _decode(
            network, tokenizer, prompts_token_ids, max_new_tokens, temperature, top_p, seed, greedy, on_step
        )
    finally:
        network.train(was_training)
    return [_sample(tokenizer, tokens, logprobs) for tokens, logprobs in rows]


def _decode(
    network: torch.nn.Module,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    greedy: bool,
    on_step: Callable[[list[list[int]]], None] | None = None,
) -> list[tuple[list[int], list[float]]]:
    """The KV-cache loop: prefill every prompt once, then feed one new token per live row per step."""
    device = next(network.parameters()).device
    end_ids = torch.tensor(
        [i for i in (_token_id(tokenizer, EOS_TOKEN), _token_id(tokenizer, PAD_TOKEN)) if i is not None],
        device=device,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(end_ids[0])
    generator = torch.Generator(device=device).manual_seed(seed)
    input_ids, mask = left_pad(prompts, pad_id, device)
    positions = position_ids_from_mask(mask)
    cache = DynamicCache(config=network.config)
    logits = network(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    next_position = positions[:, -1] + 1
    live = torch.arange(len(prompts), device=device)  # original row of each batch row
    tokens_out: list[list[int]] = [[] for _ in prompts]
    logprobs_out: list[list[float]] = [[] for _ in prompts]
    for step in range(max_new_tokens):
        tokens, logprobs = _choose(
            logits, temperature=temperature, top_p=top_p, greedy=greedy, generator=generator
        )
        for row, token, logprob in zip(live.tolist(), tokens.tolist(), logprobs.tolist(), strict=True):
            tokens_out[row].append(token)
            logprobs_out[row].append(logprob)
        if on_step is not None:
            on_step(tokens_out)
        keep = ~torch.isin(tokens, end_ids)
        if step == max_new_tokens - 1 or not bool(keep.any()):
            break
        if not bool(keep.all()):
            kept = keep.nonzero().squeeze(-1)
            cache.batch_select_indices(kept)
            live, tokens, mask, next_position = live[kept], tokens[kept], mask[kept], next_position[kept]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        logits = network(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=next_position[:, None],
            cache=cache,
            use_cache=True,
        ).logits[:, -1]
        next_position = next_position + 1
    return list(zip(tokens_out, logprobs_out, strict=True))


def _sample(tokenizer: Any, tokens: list[int], logprobs: list[float]) -> Sample:
    """Package one row: find how it finished and decode its text without the closing end token."""
    last = tokenizer.convert_ids_to_tokens(tokens[-1])
    finish_reason = {EOS_TOKEN: "stop", PAD_TOKEN: "eos"}.get(last, "length")
    body = tokens[:-1] if finish_reason != "length" else tokens
    text = tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return Sample(
        token_ids=list(tokens),
        logprobs=list(logprobs),
        text=text,
        stopped=finish_reason == "stop",
        finish_reason=finish_reason,
    )


def _chunk_logprobs(
    head: torch.nn.Module, temperature: float, hidden: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """log_softmax(head(hidden) / temperature) at ``targets``, without keeping the full log-softmax."""
    logits = head(hidden).float() / temperature
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def sequence_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_mask: torch.Tensor,
    chunk_size: int = 1024,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-probs of the completion tokens of a batch, as a float32 tensor shaped like ``input_ids``.

    Entry (b, t) is log p(input_ids[b, t] | input_ids[b, :t]) under ``log_softmax(logits / temperature)``
    where ``completion_mask[b, t]`` is 1 (and t > 0), else 0. The decoder runs once over the batch
    (padding on either side is fine: positions come from ``attention_mask``); the vocabulary projection
    runs only on completion positions, ``chunk_size`` tokens at a time, and under autograd each chunk is
    recomputed in the backward pass instead of storing its logits, so memory stays at one chunk of
    vocabulary-wide logits even for Qwen3's 151k-token vocabulary. Gradients flow when grad is enabled.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    network = unwrap(model)
    hidden = network.get_decoder()(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
    ).last_hidden_state
    rows, columns = completion_mask[:, 1:].bool().nonzero(as_tuple=True)
    states = hidden[rows, columns]  # the state before each completion token predicts it
    targets = input_ids[rows, columns + 1]
    compute = partial(_chunk_logprobs, network.get_output_embeddings(), temperature)
    pieces = []
    for start in range(0, targets.shape[0], chunk_size):
        chunk = (states[start : start + chunk_size], targets[start : start + chunk_size])
        if torch.is_grad_enabled():
            pieces.append(checkpoint(compute, *chunk, use_reentrant=False))
        else:
            pieces.append(compute(*chunk))
    values = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    result = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    return result.index_put((rows, columns + 1), values)

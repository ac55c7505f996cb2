"""generate_batch and sequence_logprobs on a throwaway tiny Qwen3 (CPU, float32)."""

from __future__ import annotations

import pytest
import torch

from trainer.generation import generate_batch, left_pad, sequence_logprobs
from trainer.model_loading import LoraSettings, load_policy
from trainer.tiny_model import build_bundle

CORPUS = [
    "<|im_start|>user\nWhat is 1234 + 5678?<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n",
    '<tool_call>\n{"name": "add", "arguments": {"a": 1234, "b": 5678}}\n</tool_call><|im_end|>\n',
    "The quick brown fox jumps over the lazy dog.",
] * 10
QUESTIONS = ["Hi", "What is 1234 + 5678?", "Tell me a very long story about a fox and a dog, please", "?"]


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    folder = build_bundle(
        tmp_path_factory.mktemp("tiny"),
        CORPUS,
        vocab_size=320,
        seed=0,
        hidden=64,
        layers=2,
        heads=4,
        kv_heads=2,
    )
    return load_policy(folder, device="cpu", lora=LoraSettings(r=4, alpha=8, dropout=0.0))


@pytest.fixture(scope="module")
def prompts(policy) -> list[list[int]]:
    """Prompts of different lengths, so left padding matters."""
    return [policy.prompt_ids([{"role": "user", "content": q}]) for q in QUESTIONS]


@pytest.fixture(scope="module")
def trained(policy, prompts):
    """A copy of the model taught to answer "ok<|im_end|>", so it stops on its own."""
    network = load_policy(policy.source.base, device="cpu", lora=None).model
    reply = policy.tokenizer.encode("ok<|im_end|>", add_special_tokens=False)
    ids, mask = left_pad([p + reply for p in prompts], policy.pad_token_id)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, : -len(reply)] = -100
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    network.train()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    for _ in range(40):
        optimizer.zero_grad()
        network(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels).loss.backward()
        optimizer.step()
    return network.eval()


def recompute(model, prompt: list[int], completion: list[int], temperature: float = 1.0) -> torch.Tensor:
    """Completion log-probs from one plain, unpadded full forward pass."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def test_batched_greedy_equals_one_at_a_time(policy, prompts) -> None:
    batched = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=20, greedy=True)
    for prompt, sample in zip(prompts, batched, strict=True):
        (alone,) = generate_batch(policy.model, policy.tokenizer, [prompt], max_new_tokens=20, greedy=True)
        assert sample.token_ids == alone.token_ids
        assert sample.logprobs == pytest.approx(alone.logprobs, abs=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_full_forward(policy, prompts, temperature: float) -> None:
    samples = generate_batch(
        policy.model, policy.tokenizer, prompts, max_new_tokens=16, temperature=temperature, seed=5
    )
    for prompt, sample in zip(prompts, samples, strict=True):
        expected = recompute(policy.model, prompt, sample.token_ids, temperature)
        assert torch.allclose(torch.tensor(sample.logprobs), expected, atol=1e-4)


def test_seeds_are_reproducible(policy, prompts) -> None:
    def run(seed: int) -> list[list[int]]:
        samples = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=12, seed=seed)
        return [s.token_ids for s in samples]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_tiny_top_p_is_greedy(policy, prompts) -> None:
    greedy = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=10, greedy=True)
    nucleus = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=10, top_p=1e-6, seed=3)
    assert [s.token_ids for s in nucleus] == [s.token_ids for s in greedy]


def test_length_limit(policy, prompts) -> None:
    samples = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=7, greedy=True)
    for sample in samples:
        if not sample.stopped:
            assert sample.finish_reason == "length" and len(sample.token_ids) == 7
        assert len(sample.token_ids) <= 7
        assert len(sample.logprobs) == len(sample.token_ids)


def test_stops_at_im_end(trained, policy, prompts) -> None:
    im_end = policy.stop_token_id
    samples = generate_batch(trained, policy.tokenizer, prompts, max_new_tokens=20, greedy=True)
    for sample in samples:
        assert sample.stopped and sample.finish_reason == "stop"
        assert sample.token_ids[-1] == im_end and im_end not in sample.token_ids[:-1]
        assert sample.text == "ok"


def test_rows_that_finish_early_leave_the_batch_correctly(trained, policy, prompts) -> None:
    """Hot sampling: some rows stop early, others run on; every log-prob must still be exact."""
    samples = generate_batch(
        trained, policy.tokenizer, prompts * 4, max_new_tokens=12, temperature=3.0, seed=1
    )
    lengths = {len(s.token_ids) for s in samples}
    assert len(lengths) > 1, "the test needs rows of different lengths"
    for prompt, sample in zip(prompts * 4, samples, strict=True):
        assert sample.stopped == (sample.token_ids[-1] == policy.stop_token_id)
        expected = recompute(trained, prompt, sample.token_ids, 3.0)
        assert torch.allclose(torch.tensor(sample.logprobs), expected, atol=1e-4)


def batch_of(policy, prompts, samples):
    """Prompt+completion rows, left padded, with the completion mask PPO would build."""
    sequences = [p + s.token_ids for p, s in zip(prompts, samples, strict=True)]
    ids, mask = left_pad(sequences, policy.pad_token_id)
    completion = torch.zeros_like(mask)
    for row, sample in enumerate(samples):
        completion[row, ids.shape[1] - len(sample.token_ids) :] = 1
    return ids, mask, completion


@pytest.mark.parametrize("chunk_size", [1, 5, 4096])
def test_sequence_logprobs_match_sampling(policy, prompts, chunk_size: int) -> None:
    samples = generate_batch(
        policy.model, policy.tokenizer, prompts, max_new_tokens=9, temperature=0.8, seed=2
    )
    ids, mask, completion = batch_of(policy, prompts, samples)
    with torch.no_grad():
        values = sequence_logprobs(policy.model, ids, mask, completion, chunk_size, temperature=0.8)
    assert values.shape == ids.shape
    assert torch.all(values[completion == 0] == 0)
    for row, sample in enumerate(samples):
        got = values[row, ids.shape[1] - len(sample.token_ids) :]
        assert torch.allclose(got, torch.tensor(sample.logprobs), atol=1e-4)


def test_sequence_logprobs_gradients_do_not_depend_on_chunking(policy, prompts) -> None:
    samples = generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=6, seed=4)
    ids, mask, completion = batch_of(policy, prompts, samples)
    lora_a = next(p for n, p in policy.model.named_parameters() if "lora_A" in n)
    with torch.no_grad():  # LoRA B starts at zero; move off it so gradients reach lora_A
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.fill_(0.01)
    grads = []
    for chunk_size in (3, 4096):
        policy.model.zero_grad()
        sequence_logprobs(policy.model, ids, mask, completion, chunk_size).sum().backward()
        grads.append(lora_a.grad.clone())
    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.zero_()
    policy.model.zero_grad()
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_mode_is_restored_and_arguments_checked(policy, prompts) -> None:
    policy.model.train()
    generate_batch(policy.model, policy.tokenizer, prompts[:1], max_new_tokens=2, seed=0)
    assert policy.model.training
    policy.model.eval()
    assert generate_batch(policy.model, policy.tokenizer, [], max_new_tokens=2) == []
    with pytest.raises(ValueError, match="temperature"):
        generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=2, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        generate_batch(policy.model, policy.tokenizer, prompts, max_new_tokens=2, top_p=0)
    with pytest.raises(ValueError, match="at least one token"):
        generate_batch(policy.model, policy.tokenizer, [[]], max_new_tokens=2)

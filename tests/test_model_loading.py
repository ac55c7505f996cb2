"""load_policy: a freshly built tiny model from a folder, offline; clear one-line errors otherwise."""

from __future__ import annotations

import peft
import pytest
import torch

from mcp_servers.assets import asset_path
from trainer.generation import generate_batch
from trainer.model_loading import (
    LoraSettings,
    ModelLoadError,
    estimate_parameters,
    load_policy,
    resolve_source,
)
from trainer.tiny_model import build_bundle

CORPUS = [
    "<|im_start|>user\nWhat is 1234 + 5678?<|im_end|>\n<|im_start|>assistant\n",
    '<tool_call>\n{"name": "add", "arguments": {"a": 1234, "b": 5678}}\n</tool_call><|im_end|>\n',
    "The quick brown fox jumps over the lazy dog.",
] * 10
SIZES = {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=320, seed=0, **SIZES)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test here runs as the workbench does without network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_loads_folder_offline_with_lora_on_cpu(folder) -> None:
    policy = load_policy(str(folder), device="auto" if not torch.cuda.is_available() else "cpu")
    assert policy.device == torch.device("cpu")
    assert not policy.quantized and policy.lora
    assert isinstance(policy.model, peft.PeftModel)
    assert policy.model.get_base_model().dtype == torch.float32
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    wrapped = {
        n.split(".")[-1] for n, m in policy.model.named_modules() if isinstance(m, peft.tuners.lora.Linear)
    }
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert policy.tokenizer.padding_side == "left"
    assert policy.tokenizer.convert_ids_to_tokens(policy.stop_token_id) == "<|im_end|>"
    assert policy.tokenizer.convert_ids_to_tokens(policy.pad_token_id) == "<|endoftext|>"
    assert not policy.model.training


def test_without_lora_every_weight_trains(folder) -> None:
    policy = load_policy(folder, device="cpu", lora=None)
    assert not isinstance(policy.model, peft.PeftModel) and not policy.lora
    assert all(p.requires_grad for p in policy.model.parameters())


def test_gradient_checkpointing_trains_lora(folder) -> None:
    policy = load_policy(folder, device="cpu", gradient_checkpointing=True, lora=LoraSettings(r=4, alpha=8))
    base = policy.model.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    base.train()
    ids = torch.tensor([policy.prompt_ids([{"role": "user", "content": "What is 1234 + 5678?"}])])
    loss = policy.model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in policy.model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_thinking_flag_reaches_the_template(folder) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    off = load_policy(folder, device="cpu", thinking=False).render(messages)
    on = load_policy(folder, device="cpu", thinking=True).render(messages)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_uncached_hub_id_fails_with_one_line() -> None:
    with pytest.raises(ModelLoadError) as error:
        load_policy("qwen-workbench-tests/no-such-model", device="cpu")
    message = one_line(error)
    assert "qwen-workbench-tests/no-such-model" in message
    assert "local folder" in message and "HF_HUB_OFFLINE" in message


@pytest.mark.parametrize("path", ["./no/such/model", "/no/such/model", "~/no-such-model-folder"])
def test_missing_folder_fails_with_one_line(path: str) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_policy(path, device="cpu")
    assert "no model folder" in one_line(error)


def test_folder_without_config_fails_with_one_line(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_policy(tmp_path, device="cpu")
    assert "config.json" in one_line(error)


def test_four_bit_on_cpu_is_refused(folder) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_policy(folder, device="cpu", quantize_4bit=True)
    message = one_line(error)
    assert "NF4" in message and "CUDA" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_request_without_cuda_is_refused(folder) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_policy(folder, device="cuda")
    assert "CUDA" in one_line(error)


def test_tiny_name_means_the_embedded_asset() -> None:
    expected = asset_path("tiny-qwen3")
    for name in (None, "tiny"):
        if (expected / "config.json").is_file():
            source = resolve_source(name)
            assert source.embedded and source.base == str(expected)
        else:
            with pytest.raises(ModelLoadError) as error:
                resolve_source(name)
            assert "qwen-workbench bootstrap" in one_line(error)


def test_adapter_folder_loads_on_its_base(folder, tmp_path) -> None:
    """A run's saved LoRA adapter reloads on top of the base model named in its config."""
    policy = load_policy(folder, device="cpu", lora=LoraSettings(r=4, alpha=8))
    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    policy.model.save_pretrained(tmp_path / "adapter")
    assert policy.model.peft_config["default"].base_model_name_or_path == str(folder.resolve())
    reloaded = load_policy(tmp_path / "adapter", device="cpu", lora=None)
    assert reloaded.source.adapter == tmp_path / "adapter"
    assert not any(p.requires_grad for p in reloaded.model.parameters())
    ids = torch.tensor([policy.prompt_ids([{"role": "user", "content": "Add 2 and 3"}])])
    with torch.no_grad():
        expected = policy.model(input_ids=ids).logits
        got = reloaded.model(input_ids=ids).logits
        base = load_policy(folder, device="cpu", lora=None).model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(base, expected, atol=1e-3)
    resumed = load_policy(tmp_path / "adapter", device="cpu")
    assert any(p.requires_grad for n, p in resumed.model.named_parameters() if "lora_" in n)


def test_parameter_estimate_is_close(folder) -> None:
    policy = load_policy(folder, device="cpu", lora=None)
    actual = sum(p.numel() for p in policy.model.parameters())
    assert abs(estimate_parameters(policy.model.config) - actual) / actual < 0.05


@pytest.mark.gpu
@needs_cuda
def test_nf4_lora_forward_backward_on_gpu(folder) -> None:
    import bitsandbytes as bnb

    policy = load_policy(folder, quantize_4bit=True, gradient_checkpointing=True)
    assert policy.device.type == "cuda" and policy.quantized
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in policy.model.modules())
    policy.model.train()
    ids = torch.tensor(
        [policy.prompt_ids([{"role": "user", "content": "What is 1234 + 5678?"}])], device="cuda"
    )
    loss = policy.model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in policy.model.named_parameters() if "lora_B" in n]
    assert torch.isfinite(loss) and grads and all(g is not None for g in grads)
    samples = generate_batch(policy.model, policy.tokenizer, [ids[0].tolist()], max_new_tokens=4, seed=0)
    assert len(samples[0].token_ids) >= 1

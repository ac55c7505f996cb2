"""One loader for every policy the workbench trains or chats with.

``load_policy`` takes the embedded tiny model (``None`` or ``"tiny"``), a local model folder, a
folder holding a LoRA adapter saved by a run, or a hub id such as ``"Qwen/Qwen3-4B"``, and returns the
model ready for PPO on the device it found: on CUDA a large model loads in 4-bit NF4 with double
quantisation and bf16 compute, prepared for k-bit training, with LoRA on every linear layer and (when
asked) non-reentrant gradient checkpointing; on CPU the model runs in float32 (4-bit needs CUDA). Every
failure a user can cause (a missing folder, an uncached hub id while offline, 4-bit without a GPU)
is a ``ModelLoadError`` whose message is one actionable line.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from mcp_servers.assets import asset_path
from trainer.tiny_model import EOS_TOKEN, PAD_TOKEN, chat_template

TINY_NAME = "tiny"
TINY_ASSET = "tiny-qwen3"
# Below this many parameters 4-bit costs precision and saves nothing worth having, so an automatic
# choice (quantize_4bit=None) loads such models unquantized even on CUDA (Qwen3-0.6B, the tiny model).
QUANTIZE_MIN_PARAMS = 1_000_000_000
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_TRUE = {"1", "true", "yes", "on"}


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; the message is one line telling the user what to do."""


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter shape; ``target_modules="all-linear"`` covers every linear layer but the head."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local folder or a hub id, and the adapter folder on top, if any."""

    base: str
    is_local: bool
    embedded: bool = False
    adapter: Path | None = None


@dataclass
class Policy:
    """A loaded policy: the (possibly LoRA-wrapped) model, its tokenizer, and how it was loaded."""

    model: torch.nn.Module
    tokenizer: Any
    device: torch.device
    source: ModelSource
    quantized: bool
    lora: bool
    gradient_checkpointing: bool
    thinking: bool
    stop_token_id: int
    pad_token_id: int

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        generation: bool = True,
    ) -> str:
        """The chat template's text for ``messages``, with ``enable_thinking`` set from ``thinking``."""
        return self.tokenizer.apply_chat_template(
            messages,
            tools=tools,
            tokenize=False,
            add_generation_prompt=generation,
            enable_thinking=self.thinking,
        )

    def prompt_ids(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        generation: bool = True,
    ) -> list[int]:
        """Token ids of ``render(...)``; the template already holds every special token."""
        return self.tokenizer.encode(
            self.render(messages, tools, generation=generation), add_special_tokens=False
        )


def hf_offline() -> bool:
    """Whether the Hugging Face hub must not be contacted, read from the environment at call time."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_source(model: str | Path | None) -> ModelSource:
    """Classify ``model`` as the embedded tiny model, a local folder (maybe an adapter) or a hub id."""
    if model is None or str(model) == TINY_NAME:
        folder = asset_path(TINY_ASSET)
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"the embedded tiny model is missing at {folder}; run `qwen-workbench bootstrap` to build it, "
                "or pass a local model folder or a hub id such as Qwen/Qwen3-4B"
            )
        return ModelSource(base=str(folder), is_local=True, embedded=True)
    path = Path(model).expanduser()
    if path.is_dir():
        return _folder_source(path)
    text = str(model)
    if path.exists():
        raise ModelLoadError(f"{text} is a file, not a model folder; pass the folder that holds config.json")
    if not _HUB_ID.match(text):
        raise ModelLoadError(
            f"no model folder at {text}; pass an existing folder with config.json and weights, "
            "or a hub id such as Qwen/Qwen3-4B"
        )
    return ModelSource(base=text, is_local=False)


def _folder_source(folder: Path) -> ModelSource:
    """A local folder: a full model, or a LoRA adapter whose config names its base model."""
    adapter_config = folder / "adapter_config.json"
    if adapter_config.is_file():
        base_name = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not base_name:
            raise ModelLoadError(f"adapter folder {folder} names no base model (base_model_name_or_path)")
        base = resolve_source(base_name)
        if base.adapter is not None:
            raise ModelLoadError(
                f"adapter folder {folder} names another adapter as its base; name the full model"
            )
        return ModelSource(base=base.base, is_local=base.is_local, embedded=base.embedded, adapter=folder)
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"{folder} is not a model folder: it has no config.json (expected a Hugging Face model folder "
            "or a LoRA adapter folder with adapter_config.json)"
        )
    return ModelSource(base=str(folder.resolve()), is_local=True)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; an explicit CUDA request without CUDA fails."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device} was requested but no CUDA GPU is available; use device='cpu'")
    return chosen


def estimate_parameters(config: PretrainedConfig) -> int:
    """Approximate parameter count from a decoder config, to decide on quantisation before loading."""
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * hidden * config.intermediate_size
    embeddings = config.vocab_size * hidden * (1 if getattr(config, "tie_word_embeddings", False) else 2)
    return embeddings + config.num_hidden_layers * (attention + mlp)


def _first_line(error: BaseException) -> str:
    """An exception's first line, so a library's multi-line message still yields a one-line error."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _hub_error(source: ModelSource, offline: bool) -> ModelLoadError:
    """The one-line message for a hub id that is neither cached nor reachable."""
    where = "the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline else "the cache or on the hub"
    return ModelLoadError(
        f"cannot load {source.base!r}: not found in {where}; pass a local folder instead "
        f"(e.g. download once with `hf download {source.base} --local-dir models/{source.base.split('/')[-1]}` "
        "and use that folder)"
    )


def _load_config(source: ModelSource, offline: bool) -> PretrainedConfig:
    """The model config, turning hub and folder failures into ModelLoadError."""
    try:
        return AutoConfig.from_pretrained(source.base, local_files_only=offline)
    except (OSError, ValueError) as error:
        if not source.is_local:
            raise _hub_error(source, offline) from error
        raise ModelLoadError(
            f"cannot read the model config in {source.base}: {_first_line(error)}"
        ) from error


def _load_tokenizer(source: ModelSource, offline: bool) -> Any:
    """The tokenizer, left-padded, with a pad token and a chat template, checked for Qwen3's tokens."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.base, local_files_only=offline)
    except (OSError, ValueError) as error:
        if not source.is_local:
            raise _hub_error(source, offline) from error
        raise ModelLoadError(f"cannot load the tokenizer in {source.base}: {_first_line(error)}") from error
    tokenizer.padding_side = "left"
    vocab = tokenizer.get_vocab()
    if EOS_TOKEN not in vocab:
        raise ModelLoadError(
            f"{source.base} has no {EOS_TOKEN} token: the workbench needs a Qwen3-style tokenizer"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD_TOKEN if PAD_TOKEN in vocab else EOS_TOKEN
    if not tokenizer.chat_template:
        tokenizer.chat_template = chat_template()
    return tokenizer


def _check_quantization_device(wanted: bool | None, device: torch.device) -> None:
    """Refuse 4-bit off CUDA before anything is loaded: bitsandbytes' NF4 kernels are CUDA-only."""
    if wanted and device.type != "cuda":
        raise ModelLoadError(
            "4-bit NF4 quantization needs a CUDA GPU (bitsandbytes); on CPU load the model unquantized "
            "(quantize_4bit=False), e.g. the embedded tiny model"
        )


def _quantization(wanted: bool | None, device: torch.device, small: bool) -> bool:
    """Resolve ``quantize_4bit``: None means 4-bit on CUDA for models of a billion parameters or more."""
    if wanted is None:
        return device.type == "cuda" and not small
    return wanted


def _load_weights(
    source: ModelSource, device: torch.device, quantized: bool, small: bool, offline: bool
) -> Any:
    """Load the base model: NF4 with bf16 compute when quantized; else float32, or bf16 for a large model
    on CUDA (float32 keeps a small model's PPO ratios exact, and costs little memory there)."""
    kwargs: dict[str, Any] = {"local_files_only": offline}
    if quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["dtype"] = torch.bfloat16
        kwargs["device_map"] = {"": device.index or 0}
    else:
        kwargs["dtype"] = torch.bfloat16 if device.type == "cuda" and not small else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(source.base, **kwargs)
    except (OSError, ValueError) as error:
        if not source.is_local:
            raise _hub_error(source, offline) from error
        raise ModelLoadError(f"cannot load the weights in {source.base}: {_first_line(error)}") from error
    return model if quantized else model.to(device)


def _enable_checkpointing(model: Any, kwargs: dict[str, Any]) -> None:
    """Non-reentrant activation checkpointing under transformers' current name, or its older one."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _prepare_for_training(
    model: Any,
    *,
    quantized: bool,
    lora: LoraSettings | None,
    gradient_checkpointing: bool,
    adapter: Path | None,
    embedded: bool,
    base_name: str,
) -> Any:
    """k-bit preparation, gradient checkpointing and the LoRA adapter (new, or loaded from a run)."""
    import peft

    checkpointing_kwargs = {"use_reentrant": False}
    trainable = lora is not None
    if quantized and trainable:
        model = peft.prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs=checkpointing_kwargs,
        )
    elif gradient_checkpointing:
        _enable_checkpointing(model, checkpointing_kwargs)
    if adapter is not None:
        return peft.PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    if lora is None:
        return model
    config = peft.LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules
        if isinstance(lora.target_modules, str)
        else list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    wrapped = peft.get_peft_model(model, config)
    # Adapters saved from this model name their base the way the user did, so "tiny" stays portable
    # across checkouts and installs instead of pinning this machine's asset path.
    wrapped.peft_config["default"].base_model_name_or_path = TINY_NAME if embedded else base_name
    return wrapped


def load_policy(
    model: str | Path | None = None,
    *,
    device: str | torch.device = "auto",
    quantize_4bit: bool | None = None,
    lora: LoraSettings | None = LoraSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    gradient_checkpointing: bool = False,
    thinking: bool = False,
) -> Policy:
    """Load a policy for PPO or chat.

    ``model``: None or "tiny" (the embedded model in assets/tiny-qwen3), a local folder, an adapter
    folder saved by a run (its base model is loaded first), or a hub id (only the local cache is used
    when HF_HUB_OFFLINE is set). ``quantize_4bit``: None decides by device and size (see
    ``QUANTIZE_MIN_PARAMS``); True on CPU is an error. ``lora``: the adapter to add; None means no new
    adapter, so an unquantized model trains all its weights, a quantized one is for inference only, and
    an adapter folder loads frozen. ``thinking`` becomes the template's ``enable_thinking``.
    """
    source = resolve_source(model)
    chosen = pick_device(device)
    _check_quantization_device(quantize_4bit, chosen)
    offline = hf_offline()
    config = _load_config(source, offline)
    small = estimate_parameters(config) < QUANTIZE_MIN_PARAMS
    quantized = _quantization(quantize_4bit, chosen, small)
    tokenizer = _load_tokenizer(source, offline)
    network = _load_weights(source, chosen, quantized, small, offline)
    network = _prepare_for_training(
        network,
        quantized=quantized,
        lora=lora,
        gradient_checkpointing=gradient_checkpointing,
        adapter=source.adapter,
        embedded=source.embedded,
        base_name=source.base,
    )
    network.eval()
    return Policy(
        model=network,
        tokenizer=tokenizer,
        device=chosen,
        source=source,
        quantized=quantized,
        lora=lora is not None or source.adapter is not None,
        gradient_checkpointing=gradient_checkpointing,
        thinking=thinking,
        stop_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.pad_token_id,
    )

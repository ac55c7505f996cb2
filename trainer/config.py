"""Every hyperparameter of a training run, in one typed config (no torch: the UI reads configs too).

A ``Config`` has one dataclass section per concern (model, lora, rollout, task, rewards, ppo, optim,
eval, checkpoint, run); each field carries its default and a one-line meaning, which ``describe()``
prints. A run's config is built in three layers, later ones winning:

1. a preset (``tiny-cpu``, the default, or ``qwen3-4b-gpu``; see ``PRESETS``);
2. a TOML file, with one table per section (and optionally ``preset = "..."`` at the top)::

       preset = "qwen3-4b-gpu"
       [ppo]
       clip_eps = 0.1

3. command-line overrides ``--set ppo.clip_eps=0.1``, each value parsed with the field's type.

Optional fields take ``none`` (``"none"`` in TOML, which has no null) to mean "no value".

Unknown keys and bad values raise ``ConfigError`` with one line naming the key. ``to_dict()`` and
``from_dict()`` round-trip through JSON, which is how a run stores its config.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_PRESET = "tiny-cpu"


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the offending key."""


def _f(default: Any, meaning: str, **bounds: float) -> Any:
    """A dataclass field with its one-line meaning and optional numeric bounds (ge, gt, le, lt)."""
    return field(default=default, metadata={"help": meaning, "bounds": bounds})


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """Which model is trained, on which device, with which critic.

    ``critic`` picks where the value estimates V(s_t) come from:

    - ``"head"`` (the default): a value head (one linear layer) reads the policy's own LoRA-adapted
      hidden states through a stop-gradient, so one forward pass gives both the logits and the values
      and the value loss trains the head alone. A linear probe of the policy's features: a weaker
      critic than the others, but one that can never pull the policy.
    - ``"shared"``: the same head, with the value loss also back-propagated into the policy's adapter
      (weighted by ``ppo.vf_coef``). On the tiny model the value loss is ~100x the policy loss, and
      its pull on the policy is not bounded by the PPO clip: 20 minutes of PPO with it went from
      31 % held-out success to 0 % (``bench/results/learning-tiny-v4-defaults-20min.json``).
    - ``"separate"``: the critic is a second LoRA adapter (plus its value head) on the same frozen base.
      Two forwards per minibatch (about twice the compute of the update phase) and a second set of
      adapter weights and optimizer state; the policy's features are its own.
    """

    name: str = _f(
        "tiny", 'model to train: "tiny" (embedded), a local folder or a hub id such as "Qwen/Qwen3-4B"'
    )
    device: Literal["auto", "cpu", "cuda"] = _f("cpu", "where to train; auto picks cuda when available")
    dtype: Literal["float32", "bfloat16", "float16"] = _f("float32", "compute dtype of the model weights")
    quantize_4bit: bool = _f(False, "load the base model in 4-bit NF4 (bitsandbytes, CUDA only)")
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass to save memory")
    thinking: bool = _f(False, "render prompts with Qwen3's enable_thinking (lets the model think first)")
    critic: Literal["head", "shared", "separate"] = _f(
        "head", "value function: head = value head on the policy's detached states; shared = the head's loss "
        "also trains the policy; separate = own adapter (2 forwards)"
    )


@dataclass
class LoraConfig:
    """The LoRA adapter that is trained (peft)."""

    enabled: bool = _f(True, "train a LoRA adapter; false = full fine-tune (unquantized models only)")
    r: int = _f(16, "LoRA rank", ge=1)
    alpha: int = _f(32, "LoRA scaling alpha (the update is scaled by alpha / r)", ge=1)
    # Off by default: PPO's update runs in train mode, and any dropout makes its log-probs disagree
    # with the sampling pass's, so the ratio drifts from 1 for no reason in the policy.
    dropout: float = _f(0.0, "dropout on the LoRA input (PPO ratios assume none)", ge=0, lt=1)
    target_modules: str = _f(
        "all-linear", 'layers to adapt: "all-linear" or comma-separated names (q_proj,v_proj)'
    )


@dataclass
class RolloutConfig:
    """How episodes are sampled from the policy."""

    batch_size: int = _f(16, "episodes played in parallel per PPO iteration", ge=1)
    group_size: int = _f(
        1, "samples of each task per iteration; 2 or more replaces the critic's baseline by the group's", ge=1
    )
    # The bundled suites' longest reference call is 67 tiny-model tokens (a SQL join); a cap below that
    # cuts the right answer off as invalid JSON (tests/test_config.py checks every suite fits).
    max_new_tokens: int = _f(96, "most tokens generated in one assistant turn", ge=1)
    temperature: float = _f(
        1.0, "sampling temperature (log-probs are taken from the same scaled policy)", gt=0
    )
    top_p: float = _f(1.0, "nucleus sampling threshold; 1.0 samples from the full distribution", gt=0, le=1)
    max_episode_tokens: int = _f(
        2048, "context cap: an episode ends once its token sequence reaches this", ge=16
    )


@dataclass
class TaskConfig:
    """Where tasks come from and how the environment runs them."""

    suite: str = _f("all", "task suite: math, search, database, data, or all")
    train_split: str = _f("train", "split the training tasks are drawn from")
    eval_split: str = _f("heldout", "split the evaluation tasks are drawn from")
    task_file: str | None = _f(None, "tasks from a JSONL task file, played instead of the suite's")
    servers_config: str | None = _f(None, "mcpServers JSON file with external tool servers")
    transport: Literal["inprocess", "stdio"] = _f("inprocess", "how bundled servers are reached")
    max_turns: int | None = _f(None, "turn limit per episode; none = each task's own limit", ge=1)
    max_structural_failures: int = _f(3, "consecutive structural failures that end an episode", ge=1)
    call_timeout_s: float = _f(5.0, "seconds a tool call may take before it counts as a tool error", gt=0)


@dataclass
class RewardsConfig:
    """The execution reward of each turn status (see trainer.rewards.Status)."""

    success: float = _f(10.0, "the call ran cleanly and the task's expected state now holds")
    tool_execution: float = _f(0.0, "the call ran cleanly; the objective is not complete yet")
    tool_error: float = _f(-0.5, "a real tool was called and failed")
    invalid_json: float = _f(-0.8, "a call was attempted but its JSON does not parse or lacks name/arguments")
    structural_fail: float = _f(-1.0, "unknown tool, no call where one was due, or a broken turn protocol")

    def as_reward_config(self) -> Any:
        """The environment's ``trainer.rewards.RewardConfig`` with these values."""
        from trainer.rewards import RewardConfig

        return RewardConfig(**dataclasses.asdict(self))


@dataclass
class PPOConfig:
    """The PPO update (see trainer.ppo_core for every formula)."""

    epochs: int = _f(2, "passes over each batch of episodes", ge=1)
    minibatch_size: int = _f(8, "episodes per optimizer step", ge=1)
    micro_batch_size: int = _f(
        8, "episodes per forward pass (gradient accumulation within a minibatch)", ge=1
    )
    clip_eps: float = _f(0.2, "policy ratio clip: rho is clipped to [1 - eps, 1 + eps]", gt=0)
    clip_value: float | None = _f(0.2, "value clip around the old value; none disables it", gt=0)
    vf_coef: float = _f(0.5, "weight of the value loss", ge=0)
    ent_coef: float = _f(0.0, "weight of the entropy bonus", ge=0)
    gamma: float = _f(1.0, "discount per action token", ge=0, le=1)
    lam: float = _f(0.95, "GAE lambda (bias/variance trade-off of the advantages)", ge=0, le=1)
    whiten_advantages: bool = _f(True, "normalise advantages to zero mean, unit variance per batch")
    kl_kind: Literal["k1", "k3"] = _f("k3", "per-token KL estimator against the reference policy")
    kl_coef: float = _f(0.02, "KL penalty coefficient beta (initial value when adaptive)", ge=0)
    adaptive_kl: bool = _f(False, "adapt beta to track kl_target (Ziegler et al.)")
    kl_target: float = _f(6.0, "adaptive KL target: summed KL per episode, in nats", gt=0)
    kl_horizon: int = _f(10000, "adaptive KL horizon in episodes: how slowly beta moves", ge=1)
    early_stop_kl: float | None = _f(None, "stop an iteration's epochs once approx_kl exceeds this", gt=0)


@dataclass
class OptimConfig:
    """The optimizer and its learning-rate schedule (the schedule steps once per PPO iteration)."""

    optimizer: Literal["adamw", "paged_adamw_8bit"] = _f(
        "adamw", "torch AdamW, or bitsandbytes' paged 8-bit AdamW (CUDA only)"
    )
    lr: float = _f(2e-4, "peak learning rate of the policy (adapter) weights", gt=0)
    value_head_lr: float | None = _f(None, "learning rate of the value head; none = lr", gt=0)
    weight_decay: float = _f(0.0, "decoupled weight decay", ge=0)
    adam_beta1: float = _f(0.9, "Adam first-moment decay", ge=0, lt=1)
    adam_beta2: float = _f(0.999, "Adam second-moment decay", ge=0, lt=1)
    adam_eps: float = _f(1e-8, "Adam denominator epsilon", gt=0)
    max_grad_norm: float = _f(1.0, "clip the global gradient norm to this", gt=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = _f(
        "constant", "decay after warmup, to 0 at the end"
    )
    warmup_iterations: int = _f(0, "iterations of linear warmup", ge=0)


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out tasks."""

    every: int = _f(5, "evaluate every N iterations; 0 = never", ge=0)
    num_tasks: int = _f(32, "held-out tasks per evaluation (the same tasks every time)", ge=1)
    greedy: bool = _f(True, "decode greedily during evaluation")
    seed: int = _f(1234, "seed that draws the held-out tasks")


@dataclass
class CheckpointConfig:
    """Saving adapters (or weights) to the run folder."""

    every: int = _f(10, "save every N iterations; 0 = only at the end", ge=0)
    keep_last: int = _f(3, "checkpoints kept on disk (older ones are deleted)", ge=1)
    save_final: bool = _f(True, "save a checkpoint when the run ends")


@dataclass
class RunConfig:
    """The run as a whole."""

    name: str | None = _f(None, "run folder name; none = a timestamp")
    runs_dir: str = _f("runs", "folder that holds the run folders")
    seed: int = _f(0, "seed of task sampling, generation and initialisation")
    iterations: int = _f(100, "PPO iterations (rollout + update) in the run", ge=1)


# --------------------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------------------


@dataclass
class Config:
    """Every hyperparameter of a run; the field defaults are the ``tiny-cpu`` preset."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict of JSON-serialisable values (what a run stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Config | None = None) -> Config:
        """A config from a nested dict; missing keys keep ``base``'s values (the defaults if none)."""
        return _apply(base or cls(), _flatten(data), from_text=False)

    def with_overrides(self, overrides: Sequence[str]) -> Config:
        """A copy with ``section.key=value`` overrides applied, each value parsed with the field's type."""
        return _apply(self, [parse_override(item) for item in overrides], from_text=True)

    def get(self, key: str) -> Any:
        """The value at ``section.key``."""
        section, name = _resolve(key)
        return getattr(getattr(self, section), name)

    def validate(self) -> Config:
        """Raise ConfigError on combinations of values that cannot work; returns self."""
        problems = _cross_field_problems(self)
        if problems:
            raise ConfigError(problems[0])
        return self

    def describe(self) -> str:
        """Every field, one line each: key = value (type, and the default where it differs), meaning."""
        return describe(self)

    def to_toml(self) -> str:
        """The config as a TOML file that ``load_config`` reads back to an equal config."""
        lines: list[str] = []
        for section, cls in SECTIONS.items():
            lines.append(f"[{section}]")
            for f in dataclasses.fields(cls):
                value = getattr(getattr(self, section), f.name)
                lines.append(f"{f.name} = {_format(value, toml=True)}")
            lines.append("")
        return "\n".join(lines)


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Presets and loading
# --------------------------------------------------------------------------------------------------

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The embedded tiny model on a laptop CPU: the dataclass defaults, spelled out where it matters.
    "tiny-cpu": {
        "model": {"name": "tiny", "device": "cpu", "dtype": "float32", "quantize_4bit": False},
        "lora": {"enabled": True, "r": 16},
        # lr 1e-3 with 4 epochs drove the per-episode KL to 8 nats in 8 iterations (bench/learning.py).
        "ppo": {"epochs": 2},
        "optim": {"optimizer": "adamw", "lr": 2e-4},
    },
    # Qwen3-4B on one CUDA GPU: 4-bit NF4 base, LoRA on all linear layers, paged 8-bit AdamW.
    "qwen3-4b-gpu": {
        "model": {
            "name": "Qwen/Qwen3-4B",
            "device": "cuda",
            "dtype": "bfloat16",
            "quantize_4bit": True,
            "gradient_checkpointing": True,
        },
        "lora": {"enabled": True, "r": 16, "alpha": 32, "target_modules": "all-linear"},
        "rollout": {"batch_size": 16, "max_new_tokens": 256, "max_episode_tokens": 8192},
        "ppo": {"epochs": 2, "minibatch_size": 8, "micro_batch_size": 1},
        "optim": {
            "optimizer": "paged_adamw_8bit",
            "lr": 1e-5,
            # A freshly initialised value head learns far too slowly at a LoRA learning rate.
            "value_head_lr": 1e-4,
            "lr_schedule": "cosine",
            "warmup_iterations": 5,
        },
        "run": {"iterations": 300},
    },
}


def preset(name: str = DEFAULT_PRESET) -> Config:
    """A fresh config of the named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return Config.from_dict(PRESETS[name]).validate()


def load_config(
    path: str | Path | None = None, *, preset_name: str | None = None, overrides: Sequence[str] = ()
) -> Config:
    """Preset, then the TOML file at ``path``, then ``--set`` overrides; validated.

    The preset is ``preset_name``, else the file's top-level ``preset`` key, else ``tiny-cpu``; a file
    naming a different preset than ``preset_name`` is an error (which one was meant is unclear).
    """
    data: dict[str, Any] = _read_toml(Path(path)) if path is not None else {}
    file_preset = data.pop("preset", None)
    if file_preset is not None and not isinstance(file_preset, str):
        raise ConfigError(f"config key 'preset' must be a string, got {file_preset!r}")
    if preset_name is not None and file_preset is not None and preset_name != file_preset:
        raise ConfigError(
            f"config file {str(path)!r} says preset {file_preset!r} but preset {preset_name!r} was asked"
        )
    config = Config.from_dict(data, base=preset(preset_name or file_preset or DEFAULT_PRESET))
    return config.with_overrides(overrides).validate()


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file, or a one-line ConfigError."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {error}") from None


def parse_override(item: str) -> tuple[str, str]:
    """``"ppo.clip_eps=0.1"`` -> ``("ppo.clip_eps", "0.1")``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. ppo.clip_eps=0.1")
    return key.strip(), value.strip()


# --------------------------------------------------------------------------------------------------
# Keys, types and values
# --------------------------------------------------------------------------------------------------


def all_keys() -> list[str]:
    """Every ``section.key`` of the config, in declaration order."""
    return [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _suggest(key: str, candidates: Sequence[str]) -> str:
    """A ' (did you mean ...?)' hint for a misspelt key, or nothing."""
    close = difflib.get_close_matches(key, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(key: str) -> tuple[str, str]:
    """Split ``section.key`` and check both parts exist."""
    section, _, name = key.partition(".")
    if section not in SECTIONS:
        raise ConfigError(f"unknown config key {key!r}{_suggest(key, all_keys())}")
    if name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        raise ConfigError(f"unknown config key {key!r}{_suggest(key, all_keys())}")
    return section, name


def _flatten(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A nested ``{section: {key: value}}`` mapping as ``[("section.key", value), ...]``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    items: list[tuple[str, Any]] = []
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section {section!r}{_suggest(str(section), list(SECTIONS))}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"config key {section!r} is a section; give it a table such as [{section}]")
        items.extend((f"{section}.{name}", value) for name, value in values.items())
    return items


def _apply(config: Config, items: Sequence[tuple[str, Any]], *, from_text: bool) -> Config:
    """A copy of ``config`` with each ``(key, value)`` checked, converted and set."""
    changes: dict[str, dict[str, Any]] = {}
    for key, raw in items:
        section, name = _resolve(key)
        spec = {f.name: f for f in dataclasses.fields(SECTIONS[section])}[name]
        hint = typing.get_type_hints(SECTIONS[section])[name]
        value = _convert(key, hint, raw, from_text)
        _check_bounds(key, value, spec.metadata["bounds"])
        changes.setdefault(section, {})[name] = value
    sections = {s: dataclasses.replace(getattr(config, s), **v) for s, v in changes.items()}
    return dataclasses.replace(config, **sections)


def _type_name(hint: Any) -> str:
    """A short human name of a field type: float, int | none, one of 'a', 'b'."""
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(hint))
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " | ".join("none" if a is type(None) else _type_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _convert(key: str, hint: Any, raw: Any, from_text: bool) -> Any:
    """``raw`` as a value of type ``hint``; text (from ``--set``) is parsed, other values are checked."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None  # TOML has no null, so "none" spells "no value" in files and --set alike
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(key, inner, raw, from_text)
    if origin is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise ConfigError(f"config key {key!r} must be {_type_name(hint)}, got {raw!r}")
        return raw
    converter = _FROM_TEXT[hint] if from_text else _FROM_VALUE[hint]
    try:
        return converter(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r} must be {_type_name(hint)}, got {raw!r}") from None


def bool_from_text(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(text)


def _finite(value: float) -> float:
    """The value, refusing NaN and infinities (no hyperparameter wants them)."""
    if not math.isfinite(value):
        raise ValueError(value)
    return value


def _strict(kind: type, accept: tuple[type, ...]) -> Any:
    """A checker that accepts instances of ``accept`` (never bool for numbers) and converts to ``kind``."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, accept):
            raise TypeError(value)
        return _finite(kind(value)) if kind is float else kind(value)

    return check


_FROM_TEXT: dict[type, Any] = {
    bool: bool_from_text,
    int: int,
    float: lambda text: _finite(float(text)),
    str: str,
}
_FROM_VALUE: dict[type, Any] = {
    bool: _strict(bool, (bool,)),
    int: _strict(int, (int,)),
    float: _strict(float, (int, float)),
    str: _strict(str, (str,)),
}


def _check_bounds(key: str, value: Any, bounds: Mapping[str, float]) -> None:
    """Raise ConfigError when a number falls outside its field's bounds."""
    if value is None:
        return
    tests = {
        "ge": (lambda v, b: v >= b, ">="),
        "gt": (lambda v, b: v > b, ">"),
        "le": (lambda v, b: v <= b, "<="),
        "lt": (lambda v, b: v < b, "<"),
    }
    for name, bound in bounds.items():
        passes, symbol = tests[name]
        if not passes(value, bound):
            raise ConfigError(f"config key {key!r} must be {symbol} {bound}, got {value!r}")


def _cross_field_problems(config: Config) -> list[str]:
    """One line per combination of values that cannot work together."""
    m, problems = config.model, []
    if m.quantize_4bit and m.device == "cpu":
        problems.append(
            "model.quantize_4bit=true needs model.device='cuda' (bitsandbytes 4-bit is CUDA only)"
        )
    if m.quantize_4bit and not config.lora.enabled:
        problems.append(
            "lora.enabled=false (full fine-tune) cannot train a 4-bit model; enable LoRA or unquantize"
        )
    if m.critic == "separate" and not config.lora.enabled:
        problems.append("model.critic='separate' is a second LoRA adapter; it needs lora.enabled=true")
    if config.optim.optimizer == "paged_adamw_8bit" and m.device == "cpu":
        problems.append("optim.optimizer='paged_adamw_8bit' needs model.device='cuda'; use 'adamw' on CPU")
    if config.rollout.batch_size % config.rollout.group_size:
        problems.append(
            f"rollout.batch_size ({config.rollout.batch_size}) is not a multiple of rollout.group_size "
            f"({config.rollout.group_size})"
        )
    if config.ppo.minibatch_size > config.rollout.batch_size:
        problems.append(
            f"ppo.minibatch_size ({config.ppo.minibatch_size}) exceeds rollout.batch_size ({config.rollout.batch_size})"
        )
    if config.ppo.micro_batch_size > config.ppo.minibatch_size:
        problems.append(
            f"ppo.micro_batch_size ({config.ppo.micro_batch_size}) exceeds ppo.minibatch_size "
            f"({config.ppo.minibatch_size})"
        )
    if config.optim.warmup_iterations > config.run.iterations:
        problems.append(
            f"optim.warmup_iterations ({config.optim.warmup_iterations}) exceeds run.iterations "
            f"({config.run.iterations})"
        )
    return problems


# --------------------------------------------------------------------------------------------------
# Describing
# --------------------------------------------------------------------------------------------------


def _format(value: Any, toml: bool = False) -> str:
    """A value as it is written in TOML and ``--set`` (strings quoted, booleans lowercase, none)."""
    if value is None:
        return '"none"' if toml else "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def describe(config: Config | None = None) -> str:
    """Every field of ``config`` (the defaults if none): one section header, then one line per key."""
    config = config or Config()
    defaults = Config()
    lines: list[str] = []
    for section, cls in SECTIONS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"[{section}]  {summary}")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            value = getattr(getattr(config, section), f.name)
            default = getattr(getattr(defaults, section), f.name)
            kind = _type_name(hints[f.name])
            if value != default:
                kind += f", default {_format(default)}"
            lines.append(f"  {section}.{f.name} = {_format(value)}  ({kind})  {f.metadata['help']}")
    return "\n".join(lines)

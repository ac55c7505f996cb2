"""The run config: presets, TOML files, --set overrides, one-line errors, round trips, describe()."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.config import (
    DEFAULT_PRESET,
    PRESETS,
    Config,
    ConfigError,
    all_keys,
    describe,
    load_config,
    preset,
)
from trainer.rewards import RewardConfig, Status

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def one_line_error(call, *args, **kwargs) -> str:
    """The message of the ConfigError the call raises, checked to be a single line."""
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------


def test_the_default_turn_cap_fits_every_reference_call_of_the_bundled_suites() -> None:
    """A turn is cut at ``rollout.max_new_tokens``: below the oracle's own call, a right answer is invalid JSON."""
    from transformers import AutoTokenizer

    from mcp_servers.assets import asset_path
    from mcp_servers.tasks.suites import DOMAIN_SUITES, SPLITS, sample_tasks
    from trainer.conversation import tool_call_text
    from trainer.model_loading import TINY_ASSET
    from trainer.tiny_model import EOS_TOKEN

    tokenizer = AutoTokenizer.from_pretrained(asset_path(TINY_ASSET))
    cap = load_config().rollout.max_new_tokens
    longest = {}
    for suite in DOMAIN_SUITES:
        for split in SPLITS:
            calls = [call for task in sample_tasks(suite, split, 300, seed=11) for call in task.reference_calls]
            longest[suite, split] = max(
                len(tokenizer(tool_call_text(call.name, call.arguments) + EOS_TOKEN)["input_ids"]) for call in calls)
    assert max(longest.values()) > 48, longest  # the database suite's joins: the check has teeth
    assert max(longest.values()) <= cap, longest


def test_tiny_cpu_is_the_default() -> None:
    assert DEFAULT_PRESET == "tiny-cpu"
    config = preset()
    assert config == Config() == load_config()
    assert (config.model.name, config.model.device, config.model.dtype) == ("tiny", "cpu", "float32")
    assert not config.model.quantize_4bit and config.lora.enabled and config.lora.r == 16
    assert config.rollout.batch_size == 16 and config.rollout.max_new_tokens == 96
    assert config.rollout.temperature == 1.0
    assert 2 <= config.ppo.epochs <= 4 and config.ppo.minibatch_size == 8
    assert config.optim.lr == 2e-4 and config.optim.optimizer == "adamw" and config.optim.max_grad_norm == 1.0
    ppo = config.ppo
    assert (ppo.kl_kind, ppo.kl_coef, ppo.adaptive_kl) == ("k3", 0.02, False)
    assert (ppo.gamma, ppo.lam, ppo.clip_eps, ppo.clip_value) == (1.0, 0.95, 0.2, 0.2)
    assert (ppo.vf_coef, ppo.ent_coef) == (0.5, 0.0)
    assert (config.eval.every, config.eval.num_tasks, config.checkpoint.keep_last) == (5, 32, 3)
    assert (config.task.suite, config.task.train_split, config.task.eval_split) == ("all", "train", "heldout")
    assert config.model.critic == "head" and config.lora.dropout == 0.0  # the value loss never pulls the policy


def test_qwen3_4b_gpu_preset() -> None:
    config = preset("qwen3-4b-gpu")
    m = config.model
    assert (m.name, m.device, m.dtype, m.quantize_4bit, m.gradient_checkpointing) == (
        "Qwen/Qwen3-4B",
        "cuda",
        "bfloat16",
        True,
        True,
    )
    assert (config.lora.r, config.lora.alpha, config.lora.target_modules) == (16, 32, "all-linear")
    assert config.optim.optimizer == "paged_adamw_8bit" and config.optim.lr == 1e-5
    assert config.rollout.batch_size == 16 and config.rollout.max_new_tokens == 256
    assert config.ppo.micro_batch_size <= config.ppo.minibatch_size


def test_every_preset_is_valid_and_unknown_presets_fail() -> None:
    for name in PRESETS:
        preset(name).validate()
    assert "tiny-cpu" in one_line_error(preset, "tiny-gpu")


def test_rewards_section_matches_the_environment() -> None:
    config = Config()
    assert config.rewards.as_reward_config() == RewardConfig()
    assert {f.name for f in dataclasses.fields(type(config.rewards))} == {s.value for s in Status}
    changed = config.with_overrides(["rewards.success=5"])
    assert changed.rewards.as_reward_config().reward(Status.SUCCESS) == 5.0


def test_config_module_does_not_import_torch() -> None:
    code = "import sys, trainer.config; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------------------------------------------------------
# TOML and overrides
# --------------------------------------------------------------------------------------------------


def test_toml_file_overrides_the_preset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[ppo]
clip_eps = 0.1
epochs = 3
adaptive_kl = true

[optim]
lr = 1        # an integer is fine for a float field
lr_schedule = "cosine"

[task]
suite = "math"
max_turns = 4
""",
    )
    config = load_config(path)
    assert (config.ppo.clip_eps, config.ppo.epochs, config.ppo.adaptive_kl) == (0.1, 3, True)
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.lr_schedule == "cosine"
    assert (config.task.suite, config.task.max_turns) == ("math", 4)
    assert config.ppo.gamma == 1.0  # untouched keys keep the preset's value


def test_toml_preset_key_and_explicit_preset(tmp_path: Path) -> None:
    path = write(tmp_path, 'preset = "qwen3-4b-gpu"\n[rollout]\nmax_new_tokens = 128\n')
    config = load_config(path)
    assert config.model.name == "Qwen/Qwen3-4B" and config.rollout.max_new_tokens == 128
    assert load_config(path, preset_name="qwen3-4b-gpu") == config
    message = one_line_error(load_config, path, preset_name="tiny-cpu")
    assert "qwen3-4b-gpu" in message and "tiny-cpu" in message
    plain = write(tmp_path, "[rollout]\nmax_new_tokens = 128\n")
    assert load_config(plain, preset_name="qwen3-4b-gpu").model.name == "Qwen/Qwen3-4B"


def test_set_overrides_parse_each_type() -> None:
    config = load_config(
        overrides=[
            "ppo.clip_eps=0.1",
            "ppo.epochs=2",
            "ppo.whiten_advantages=false",
            "ppo.kl_kind=k1",
            "ppo.clip_value=none",
            "task.task_file=tasks/mine.jsonl",
            "model.critic = separate",
            "run.name=first run",
        ]
    )
    assert config.ppo.clip_eps == 0.1 and config.ppo.epochs == 2
    assert config.ppo.whiten_advantages is False and config.ppo.kl_kind == "k1"
    assert config.ppo.clip_value is None
    assert config.task.task_file == "tasks/mine.jsonl"
    assert config.model.critic == "separate" and config.run.name == "first run"
    assert config.with_overrides(["ppo.clip_value=0.3"]).ppo.clip_value == 0.3


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[ppo]\nclip_eps = 0.1\n")
    assert load_config(path, overrides=["ppo.clip_eps=0.3"]).ppo.clip_eps == 0.3


# --------------------------------------------------------------------------------------------------
# Errors: one line, naming the key
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("ppo.clip_epz=0.1", "'ppo.clip_epz' (did you mean 'ppo.clip_eps'?)"),
        ("pop.clip_eps=0.1", "'pop.clip_eps'"),
        ("clip_eps=0.1", "'clip_eps'"),
        ("ppo.clip_eps=abc", "'ppo.clip_eps' must be float, got 'abc'"),
        ("ppo.clip_eps=nan", "'ppo.clip_eps' must be float"),
        ("ppo.epochs=2.5", "'ppo.epochs' must be int, got '2.5'"),
        ("ppo.adaptive_kl=maybe", "'ppo.adaptive_kl' must be bool"),
        ("ppo.kl_kind=k2", "'ppo.kl_kind' must be one of 'k1', 'k3', got 'k2'"),
        ("ppo.clip_eps=-0.1", "'ppo.clip_eps' must be > 0"),
        ("ppo.gamma=1.5", "'ppo.gamma' must be <= 1"),
        ("ppo.epochs=none", "'ppo.epochs' must be int"),
        ("ppo.clip_eps", "section.key=value"),
    ],
)
def test_bad_overrides_fail_with_one_line_naming_the_key(override: str, expected: str) -> None:
    assert expected in one_line_error(load_config, overrides=[override])


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[ppo]\nclip_eps = '0.1'\n", "'ppo.clip_eps' must be float, got '0.1'"),
        ("[ppo]\nepochs = 2.0\n", "'ppo.epochs' must be int"),
        ("[ppo]\nepochs = true\n", "'ppo.epochs' must be int, got True"),
        ("[ppo]\nadaptive_kl = 1\n", "'ppo.adaptive_kl' must be bool"),
        ("[model]\nname = 3\n", "'model.name' must be str"),
        ("[pppo]\nclip_eps = 0.1\n", "unknown config section 'pppo' (did you mean 'ppo'?)"),
        ("ppo = 3\n", "'ppo' is a section"),
        ("[ppo]\nclip_eps = \n", "is not valid TOML"),
        ("preset = 3\n", "'preset' must be a string"),
    ],
)
def test_bad_files_fail_with_one_line(tmp_path: Path, toml: str, expected: str) -> None:
    assert expected in one_line_error(load_config, write(tmp_path, toml))


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in one_line_error(load_config, tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.quantize_4bit=true"], "model.quantize_4bit=true needs model.device='cuda'"),
        (["model.device=cuda", "model.quantize_4bit=true", "lora.enabled=false"], "lora.enabled=false"),
        (["lora.enabled=false", "model.critic=separate"], "model.critic='separate'"),
        (["optim.optimizer=paged_adamw_8bit"], "optim.optimizer='paged_adamw_8bit' needs"),
        (["ppo.minibatch_size=32"], "ppo.minibatch_size (32) exceeds rollout.batch_size (16)"),
        (["rollout.group_size=3"], "rollout.batch_size (16) is not a multiple of rollout.group_size (3)"),
        (["ppo.micro_batch_size=9"], "ppo.micro_batch_size (9) exceeds ppo.minibatch_size (8)"),
        (["optim.warmup_iterations=500"], "optim.warmup_iterations (500) exceeds run.iterations"),
    ],
)
def test_combinations_that_cannot_work(overrides: list[str], expected: str) -> None:
    assert expected in one_line_error(load_config, overrides=overrides)


def test_full_fine_tune_of_the_tiny_model_is_allowed() -> None:
    assert load_config(overrides=["lora.enabled=false"]).lora.enabled is False


# --------------------------------------------------------------------------------------------------
# Round trips and describe
# --------------------------------------------------------------------------------------------------


def _unusual() -> Config:
    """A config away from the defaults, with optional fields both set and unset."""
    return load_config(
        preset_name="qwen3-4b-gpu",
        overrides=[
            "ppo.clip_value=none",
            "task.max_turns=3",
            'run.name=a "quoted" name',
            "ppo.early_stop_kl=0.05",
        ],
    )


def test_dict_round_trip_through_json() -> None:
    config = _unusual()
    stored = json.dumps(config.to_dict())
    assert Config.from_dict(json.loads(stored)) == config
    assert Config.from_dict(Config().to_dict()) == Config()


def test_from_dict_is_strict() -> None:
    assert "'ppo.clip_epz'" in one_line_error(Config.from_dict, {"ppo": {"clip_epz": 0.1}})
    assert "'ppo.epochs' must be int" in one_line_error(Config.from_dict, {"ppo": {"epochs": "2"}})
    partial = Config.from_dict({"ppo": {"epochs": 3}})  # older runs with fewer keys still load
    assert partial.ppo.epochs == 3 and partial.ppo.clip_eps == 0.2


def test_toml_round_trip(tmp_path: Path) -> None:
    config = _unusual()
    path = tmp_path / "dump.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config  # tiny-cpu base, every field comes from the file


def test_get_reads_a_key() -> None:
    assert Config().get("ppo.lam") == 0.95
    assert "'ppo.lamb'" in one_line_error(Config().get, "ppo.lamb")


def test_describe_lists_every_field_with_meaning_and_default() -> None:
    text = describe()
    field_lines = [re.fullmatch(r"  (\S+) = (.+?)  \(([^()]+)\)  (\S.*)", line) for line in text.splitlines()]
    described = [match.group(1) for match in field_lines if match]
    assert described == all_keys()  # each key once, in order, with value, type and meaning
    assert "  ppo.clip_eps = 0.2  (float)  policy ratio clip" in text
    assert "[ppo]" in text
    gpu = preset("qwen3-4b-gpu").describe()
    assert 'model.name = "Qwen/Qwen3-4B"  (str, default "tiny")' in gpu
    assert "ppo.clip_value = 0.2  (float | none)" in gpu
    assert len(all_keys()) == len(set(all_keys())) > 50

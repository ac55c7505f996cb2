"""The shipped tiny model: loads offline like any hub model, is small, is current, and evaluates.

Also: the bootstrap recipe is deterministic (a miniature recipe built twice gives the same files).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from mcp_servers.assets import asset_path
from tests.conftest import REPO
from trainer.bootstrap import BootstrapRecipe, bootstrap, is_current

TINY = asset_path("tiny-qwen3")


def test_shipped_files_are_small_and_built_from_the_current_recipe():
    total = sum(p.stat().st_size for p in TINY.iterdir() if p.is_file())
    assert total <= 8 * 2**20, f"{total / 2**20:.1f} MB"
    assert is_current(TINY, BootstrapRecipe()), "assets/tiny-qwen3 is stale: run `qwen-workbench bootstrap`"
    assert (TINY / "README.md").is_file()


def test_loads_offline_with_the_auto_classes():
    probe = (
        "import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer;"
        f"m = AutoModelForCausalLM.from_pretrained({str(TINY)!r}); t = AutoTokenizer.from_pretrained({str(TINY)!r});"
        "assert type(m).__name__ == 'Qwen3ForCausalLM', type(m);"
        "text = t.apply_chat_template([{'role': 'user', 'content': 'Add 2 and 3.'}],"
        " tools=[{'type': 'function', 'function': {'name': 'add', 'description': 'Add.', 'parameters': {}}}],"
        " tokenize=False, add_generation_prompt=True, enable_thinking=False);"
        "assert '<tools>' in text and text.endswith('<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n');"
        "ids = t(text, return_tensors='pt').input_ids;"
        "print(m(ids).logits.shape[-1] == len(t))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("True")


def test_eval_command_on_a_handful_of_episodes():
    result = subprocess.run([sys.executable, "-m", "trainer", "eval", "-n", "4", "--batch-size", "4",
                             "--max-new-tokens", "48", "--json"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["episodes"] == 4 and 0.0 <= report["success_rate"] <= 1.0
    assert sum(report["status_shares"].values()) == pytest.approx(1.0)
    assert report["tokens_per_s"] > 0


def test_eval_command_errors_are_one_line():
    result = subprocess.run([sys.executable, "-m", "trainer", "eval", "--model", "Nobody/NoSuchModel", "-n", "1"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0 and "local folder" in result.stderr


@pytest.mark.slow
def test_the_bootstrap_recipe_is_deterministic(tmp_path):
    recipe = BootstrapRecipe(episodes=30, steps=3, batch_size=4, vocab_size=400, hidden=32, layers=1, heads=2,
                             kv_heads=1, intermediate=64, warmup_steps=1)
    digests = []
    for name in ("a", "b"):
        folder = bootstrap(recipe, tmp_path / name, force=True)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())})
        assert json.loads((folder / "recipe.json").read_text()) == asdict(recipe)
    assert digests[0] == digests[1]
    assert bootstrap(recipe, tmp_path / "a") == tmp_path / "a"  # current: not rebuilt


def test_demonstrations_played_on_several_processes_equal_one_process():
    from dataclasses import replace

    from trainer.bootstrap import collect_demonstrations

    recipe = replace(BootstrapRecipe(), episodes=120)
    serial = collect_demonstrations(recipe, workers=1)
    parallel = collect_demonstrations(recipe, workers=2)
    assert len(serial) == 120
    assert [asdict(d) for d in parallel] == [asdict(d) for d in serial]


def test_mistaken_demonstrations_recover_and_never_teach_the_mistake():
    """With every demonstration making a mistake first: the environment really rejects it, the right
    calls follow and succeed, and only the right calls are training targets."""
    from transformers import AutoTokenizer

    from trainer.bootstrap import _play_reference, render_demonstration
    from trainer.env import MCPGymEnv

    tokenizer = AutoTokenizer.from_pretrained(TINY)
    env = MCPGymEnv(suite="all", split="train")
    try:
        demos = [_play_reference(env, seed, mistake_share=1.0) for seed in range(40)]
        tasks = [env.reset(seed=seed)[1]["task"] for seed in range(40)]
    finally:
        env.close()
    mistaken = [(demo, task) for demo, task in zip(demos, tasks, strict=True) if demo.mistakes]
    assert len(mistaken) >= 30  # only a mistake that happens to succeed is replaced by a clean episode
    rejected = 0
    for demo, task in mistaken:
        (index,) = demo.mistakes
        text, responses = demo.turns[index]
        assert text != demo.turns[index + 1][0]
        rejected += all(r.startswith("Error") for r in responses)
        right = [t for i, (t, _) in enumerate(demo.turns) if i != index]
        assert len(right) == len(task.reference_calls)
        pieces, flags = render_demonstration(tokenizer, demo)
        assert [p for p, f in zip(pieces, flags, strict=True) if f] == [t + "<|im_end|>" for t in right]
    assert rejected >= 0.8 * len(mistaken)  # a misnamed optional argument may run; the rest are errors


def test_bootstrap_boolean_flags_read_true_and_false(capsys):
    from trainer.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["bootstrap", "--short-form", "false"]).short_form is False
    assert parser.parse_args(["bootstrap", "--bf16-matmuls", "yes"]).bf16_matmuls is True
    assert parser.parse_args(["bootstrap"]).bf16_matmuls is None  # unset: the recipe's default
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["bootstrap", "--short-form", "maybe"])
    assert exit_info.value.code == 2 and "expected true or false" in capsys.readouterr().err

"""A Qwen3-4B-shaped PPO iteration on one CUDA GPU: peak memory and throughput (prints JSON).

    python bench/qwen3_4b_shape.py [--episodes 16] [--layers 36]

Random weights with Qwen3-4B's configuration (hidden 2560, 36 layers, 32 query and 8 key-value heads
of 128, intermediate 9728, vocabulary 151936) are written once to a temporary folder, then loaded
through the project's own loader in 4-bit NF4 with LoRA r=16 on all linear layers, and one PPO
iteration of the ``qwen3-4b-gpu`` preset runs over 16 parallel episodes against the bundled MCP
servers. The tokenizer is the embedded tiny model's (its ids are a subset of the vocabulary); the
weights are random, so the episodes fail, but every tensor has the real shape and size.
The goal is that this fits a 24 GB consumer GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from mcp_servers.assets import asset_path
from trainer.config import load_config
from trainer.train import Trainer

QWEN3_4B = dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                intermediate_size=9728, vocab_size=151936, max_position_embeddings=40960, rope_theta=1_000_000.0,
                tie_word_embeddings=True, rms_norm_eps=1e-6)


def write_random_model(folder: Path, layers: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tiny = asset_path("tiny-qwen3")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tiny / name).exists():
            shutil.copy(tiny / name, folder / name)
    config = Qwen3Config(**{**QWEN3_4B, "num_hidden_layers": layers}, torch_dtype="bfloat16")
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "qwen3_4b_shape", "skipped": "no CUDA device"}))
        return
    work = Path(tempfile.mkdtemp(prefix="qwen3-4b-shape-"))
    started = time.perf_counter()
    write_random_model(work / "model", args.layers)
    written_s = time.perf_counter() - started
    torch.cuda.reset_peak_memory_stats()
    config = load_config(preset_name="qwen3-4b-gpu", overrides=[
        f"model.name={work / 'model'}", f"rollout.batch_size={args.episodes}",
        f"rollout.max_new_tokens={args.max_new_tokens}", "task.max_turns=2", "eval.every=0", "checkpoint.every=0",
        "run.iterations=1", "optim.warmup_iterations=0", "checkpoint.save_final=false"])
    trainer = Trainer(config, work / "run", echo=lambda line: print(line, flush=True, file=sys.stderr))
    load_mem = torch.cuda.max_memory_allocated()
    try:
        metrics = trainer.train_iteration()
    finally:
        trainer.close()
    action_tokens = metrics["generated_tokens"]
    print(json.dumps({
        "benchmark": "qwen3_4b_shape",
        "device": torch.cuda.get_device_name(0),
        "layers": args.layers,
        "episodes": args.episodes,
        "random_weights_written_s": round(written_s, 1),
        "peak_gpu_mem_after_load_gb": round(load_mem / 2**30, 2),
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "fits_24gb": torch.cuda.max_memory_allocated() < 22 * 2**30,
        "rollout_tokens_per_s": round(metrics["tokens_per_s"], 1),
        "update_tokens_per_s": round(action_tokens / max(1e-9, metrics["update_time_s"]), 1),
        "iteration_split_s": {"rollout": round(metrics["rollout_time_s"], 1),
                              "reference_and_value": round(metrics["ref_value_time_s"], 1),
                              "update": round(metrics["update_time_s"], 1)},
        "generated_tokens": action_tokens,
    }, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

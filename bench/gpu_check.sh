#!/usr/bin/env bash
# Every GPU check in one call, for a lent single-GPU machine with no network (under 8 minutes).
#
#   bash bench/gpu_check.sh        -> logs and JSON in $OUT (or ./gpu-check-out)
#
# Packages the GPU image lacks (bitsandbytes, mcp and its needs such as cryptography, gymnasium) or has at other versions
# (transformers, peft, tokenizers, huggingface_hub) travel as wheels in .whl/, fetched beforehand with
# bench/gpu_wheels.sh; torch itself is the image's. Each step has its own time limit and log, so one
# failing step still leaves the others' results.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

source bench/use_wheels.sh "$OUT/install.log"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
python3 - <<'PY' | tee "$OUT/environment.json"
import importlib.metadata as metadata, json
info = {}
for name in ("torch", "transformers", "peft", "bitsandbytes", "mcp", "gymnasium", "tokenizers"):
    try:
        info[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        info[name] = "missing"
import torch
info["cuda"] = torch.cuda.is_available() and torch.cuda.get_device_name(0)
print(json.dumps(info))
PY

echo "== GPU-marked tests"
timeout 150 python3 -m pytest -m gpu -q -p no:cacheprovider -W ignore::FutureWarning \
  tests/test_gpu.py tests/test_model_loading.py 2>&1 | tee "$OUT/gpu_tests.txt" | tail -15

echo "== Qwen3-4B-shaped PPO iteration (NF4, LoRA r=16, 16 episodes)"
timeout 270 python3 bench/qwen3_4b_shape.py 2>"$OUT/qwen3_4b_shape.log" | tee "$OUT/qwen3_4b_shape.json"
tail -3 "$OUT/qwen3_4b_shape.log"

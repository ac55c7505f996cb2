#!/usr/bin/env bash
# Every GPU check in one call, for a lent single-GPU machine with no network (under 8 minutes).
# Usage (from the repository root): bash bench/gpu_check.sh   -> JSON lines in $OUT (or ./gpu-check-out)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Packages the GPU image may lack travel as wheels in bench/wheels (pip download them beforehand);
# torch, bitsandbytes and transformers are expected on the image itself.
if [ -d bench/wheels ]; then
  python -m pip install -q --no-index --find-links bench/wheels mcp textual gymnasium peft trl tokenizers 2>&1 | tail -2
fi
python - <<'PY' | tee "$OUT/environment.json"
import json, importlib
info = {}
for name in ("torch", "transformers", "peft", "bitsandbytes", "trl", "mcp", "gymnasium", "tokenizers"):
    try:
        info[name] = importlib.import_module(name).__version__
    except Exception as exc:  # noqa: BLE001
        info[name] = f"missing: {exc}"
import torch
info["cuda"] = torch.cuda.is_available() and torch.cuda.get_device_name(0)
print(json.dumps(info))
PY

timeout 240 python -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
timeout 300 python bench/qwen3_4b_shape.py 2>"$OUT/qwen3_4b_shape.log" | tee "$OUT/qwen3_4b_shape.json"

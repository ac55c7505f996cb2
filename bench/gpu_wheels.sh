#!/usr/bin/env bash
# Fetch, into .whl/ (git-ignored), the wheels that bench/gpu_check.sh installs on a GPU machine with no
# network: the versions installed here, for CPython 3.12 on x86-64 Linux (the GPU image's python).
# bitsandbytes keeps only its CPU and CUDA 13 libraries, so everything travels in about 30 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >>.git/info/exclude
names="bitsandbytes mcp mcp-types httpx2 httpcore2 truststore opentelemetry-api pydantic pydantic_core
  typing-inspection annotated-types PyJWT python-multipart sse-starlette starlette uvicorn jsonschema
  jsonschema-specifications referencing rpds-py gymnasium farama-notifications transformers huggingface_hub
  peft tokenizers anyio typing_extensions h11 pytest-asyncio cryptography cffi pycparser"
pins=()
for name in $names; do
  version=$(python3 -m pip show "$name" 2>/dev/null | awk '/^Version/{print $2}')
  [ -n "$version" ] || { echo "not installed here: $name" >&2; exit 1; }
  pins+=("$name==$version")
done
platforms=()
for p in manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${pins[@]}"
for wheel in .whl/bitsandbytes-*.whl; do
  zip -q -d "$wheel" 'bitsandbytes/libbitsandbytes_cuda1[12]*.so' 'bitsandbytes/libbitsandbytes_rocm*' \
    'bitsandbytes/libbitsandbytes_xpu*' 2>/dev/null || true
done
du -sh .whl

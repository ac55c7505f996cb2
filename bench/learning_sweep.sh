#!/usr/bin/env bash
# Several bench/learning.py configurations side by side on a many-core machine, 2 threads each (the
# 2-core budget of one run), to choose settings; confirm the winner with bench/learning.py alone.
#
#   bash bench/learning_sweep.sh CONFIGS [MINUTES]   -> $OUT/NAME.json each, their logs in $OUT/logs.tar.gz
#
# CONFIGS holds one configuration a line: a name, then KEY=VALUE overrides ("#" starts a comment).
set -uo pipefail
cd "$(dirname "$0")/.."
configs="$1"
minutes="${2:-6}"
OUT="${OUT:-$PWD/sweep-out}"
work=$(mktemp -d)
mkdir -p "$OUT"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
source bench/use_wheels.sh "$work/install.log"
while read -r name overrides; do
  case "$name" in ""|\#*) continue ;; esac
  args=()
  for override in $overrides; do args+=(--set "$override"); done
  python3 bench/learning.py --minutes "$minutes" --eval-tasks 128 "${args[@]}" >"$OUT/$name.json" 2>"$work/$name.log" &
done <"$configs"
wait
for json in "$OUT"/*.json; do
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1].rsplit('/',1)[1], d['iterations'], 'iterations', d['before']['success_rate'], '->', d['after']['success_rate'], d['overrides'])" "$json" 2>/dev/null \
    || { echo "$json failed:"; tail -3 "${json%.json}.log"; }
done
tar -czf "$OUT/logs.tar.gz" -C "$work" .

#!/usr/bin/env bash
# The headline run rehearsed on generated data: TinyImageNet IPC 50 with DataDAM, 2 iterations.
#
#   benchmarks/headline.sh DATA_DIR [OUT_DIR] [DEVICE]
#
# DATA_DIR holds tiny-imagenet-200/ (benchmarks/make_tinyimagenet.py writes a generated one).
# Runs `condense run` twice under /usr/bin/time -v: cold (the decoded cache DATA_DIR/.cache
# removed first; ITERATIONS, default 2) and warm (cache present; `--dry-run`, which loads the
# data from the cache and resolves the run, then stops: its "loaded in" is the warm load), each stderr line prefixed with the seconds since the
# command started. The first line after loading ("datadam on tinyimagenet ...") marks the end of
# the decode; "iteration 1/2" the end of the first iteration. Nothing is written outside OUT_DIR
# (default /tmp/condense-headline) and DATA_DIR/.cache.
set -euo pipefail
data=${1:?usage: headline.sh DATA_DIR [OUT_DIR] [DEVICE]}
out=${2:-/tmp/condense-headline}
device=${3:-cpu}
mkdir -p "$out"
stamp() { local t0=$1; while IFS= read -r line; do
  printf '%8.1f s  %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$line"; done; }
for phase in cold warm; do
  [ "$phase" = cold ] && rm -rf "$data/.cache"
  echo "== $phase"
  t0=$(date +%s.%N)
  { /usr/bin/time -v condense run datadam --dataset tinyimagenet --data-dir "$data" --ipc 50 \
      --iterations "${ITERATIONS:-2}" --device "$device" --set log_every=1 \
      $([ "$phase" = warm ] && echo --dry-run) \
      --out "$out/$phase.safetensors" 2>&1 1>&3 | stamp "$t0"; } 3>&1
  if [ "${WARM:-1}" = 0 ]; then break; fi
done

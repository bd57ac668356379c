#!/usr/bin/env bash
# Set up, then run the main job: DataDAM on Fashion-MNIST, 10 images per class, then evaluate it
# under the reduced protocol (3 ConvNet-BN nets × 300 epochs). Works offline with Debian's
# dataset-fashion-mnist; elsewhere add --download to the run line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ITER=${ITERATIONS:-500}
out=$(.venv/bin/condense run datadam --dataset fashion-mnist --ipc 10 --iterations "$ITER" \
      --out runs/datadam-fashion-mnist-ipc10.safetensors --force)
.venv/bin/condense eval "$out" --preset datadam-reduced

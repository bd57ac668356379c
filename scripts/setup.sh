#!/usr/bin/env bash
# Create .venv (if missing) and install condense, its first-party plugins and the test tools.
# Fashion-MNIST (the offline default dataset) comes from Debian's dataset-fashion-mnist package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
      || echo "note: could not apt-get install dataset-fashion-mnist; use --download instead" >&2
  else
    echo "note: run 'sudo apt-get install dataset-fashion-mnist' for offline Fashion-MNIST" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# The contributor install: the core with its test tools and every plugin of the checkout, editable.
# `.[dev]`, never `.[all]`: that extra names the plugins as package-index distributions (for
# `pip install "condense-toolbox[all]"`), which would be fetched instead of using plugins/*/.
args=(-e ".[dev]")
for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && args+=(-e "$p"); done
.venv/bin/python -m pip install -q "${args[@]}" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import condense, torch; print('condense', condense.__version__, 'torch', torch.__version__)"

#!/usr/bin/env bash
# One device run on a CUDA machine (H100/H200) whose python3 has torch and jax with CUDA, but not
# necessarily machlib's other dependencies: runs from the checkout with PYTHONPATH=. (no pip
# install) and needs only jax, numpy, scipy, torch, equinox, optax, jaxtyping, chex and pillow.
# Writes the GPU benchmark tables, logs and a PNG of the template frames into $OUT (~5 min on an H200).
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX and PyTorch share the GPU
status=0
step() {  # step NAME SECONDS CMD...: time-limited, logged to $OUT/NAME.log, failures noted
  local name=$1 limit=$2 rc
  shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  tail -n 30 "$OUT/$name.log"
  echo "== $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  python3 -c "import nvdiffrast.torch; print('nvdiffrast importable')" || echo "nvdiffrast: not installed"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
step render 150 python3 benchmarks/render.py --device gpu --repeats 5 --out "$OUT/render_gpu.md" --png "$OUT/render_gpu.png"
step fit_texture 120 python3 benchmarks/fit_texture.py --device gpu --repeats 1 --no-pipeline --out "$OUT/fit_texture_gpu.md"
if python3 -c "import pytest" 2>/dev/null; then
  opts=()  # the repo's addopts load beartype for jaxtyping's test-time checks: drop them if it is absent
  python3 -c "import beartype" 2>/dev/null || opts=(-o "addopts=-p no:cacheprovider")
  step pytest 240 python3 -m pytest "${opts[@]}" tests/interop/test_nvdiffrast.py tests/render -q
else
  echo "pytest is not installed: tests skipped" | tee "$OUT/pytest.log"
fi
exit "$status"

#!/usr/bin/env bash
# The CNN measured on a lent GPU machine in one device call (issue 18, part 2), prepared here.
#
# The GPU image (/work/.library/device/KINDS.md) has Python 3.12 and JAX with CUDA 13,
# numpy, scipy, scikit-learn, matplotlib, pandas, rich, grpcio and protobuf, and can fetch
# nothing. So what it lacks travels with the working tree, in two git-ignored folders:
#
#   here:   bash bench/gpu_session.sh fetch     # .whl/ (~40 MiB of wheels), .mnist/ (11 MiB)
#   there:  run(command="bash bench/gpu_session.sh run", carry=[".whl", ".mnist"],
#               timeout_s=540)
#
# `run` prints the device, then `bench/gpu_cnn.py` (full size), a 10-trial, 5-epoch CNN sweep
# with augmentation on full MNIST into a local store, the study's best trial, and one 30-epoch
# augmented `train`, each under its own time limit so that one slow step still leaves the
# others' figures; the logs and both stores (without model artifacts) come back from $OUT.
# `GPU_SESSION_QUICK=1 bash bench/gpu_session.sh run` rehearses it here in a few minutes on
# tiny sizes, with this checkout's virtual environment instead of the wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Our dependencies the image lacks; `fetch` resolves their dependencies too and then drops
# every wheel the image already holds (the names in IMAGE_HAS, read from KINDS.md).
WANTED=("mlflow>=3.0" "optuna>=4.9" "keras>=3.5" "mlxtend>=0.23" "cmaes>=0.10")
IMAGE_HAS="absl-py aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi
charset-normalizer click cloudpickle contourpy cycler fonttools frozenlist h11 h5py idna jinja2
joblib kiwisolver markdown-it-py markupsafe matplotlib mdurl ml-dtypes multidict narwhals numpy
packaging pandas pillow propcache protobuf pyarrow pygments pyparsing python-dateutil pyyaml
requests rich scikit-learn scipy six threadpoolctl tqdm typing-extensions urllib3 werkzeug yarl
zipp grpcio"

fetch() {
  for folder in /.whl/ /.mnist/; do
    grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >> .git/info/exclude
  done
  rm -rf .whl .mnist && mkdir -p .whl .mnist
  python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d .whl "${WANTED[@]}"
  for wheel in .whl/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
    if grep -qw -- "$name" <<<"$IMAGE_HAS"; then rm "$wheel"; fi
  done
  cp "${MNIST_DIR:-../shared/data/mnist}"/*-ubyte.gz .mnist/
  du -sh .whl .mnist
}

step() {  # step SECONDS NAME COMMAND...: runs it under a limit, its output also in $OUT/NAME.txt
  local limit=$1 name=$2
  shift 2
  echo "== $name (limit ${limit} s)"
  local start=$SECONDS
  set +e
  timeout "$limit" "$@" 2>&1 | grep -v -e '^WARNING: All log messages' -e '^I0000' |
    tee "$OUT/$name.txt"
  local code=${PIPESTATUS[0]}
  set -e
  echo "== $name: exit $code after $((SECONDS - start)) s"
}

run() {
  OUT=${OUT:-/tmp/gpu-session-out}
  mkdir -p "$OUT"
  local python=python3 quick=${GPU_SESSION_QUICK:-}
  if [ -n "$quick" ]; then
    python=$ROOT/.venv/bin/python
    export MNIST_DIR=${MNIST_DIR:-$ROOT/../shared/data/mnist}
  else
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$ROOT MNIST_DIR=$ROOT/.mnist
  fi
  export KERAS_BACKEND=jax MPLBACKEND=Agg PYTHONUNBUFFERED=1
  # The stores and the models' artifacts stay on the machine; the databases come back.
  local work=/tmp/gpu-session && rm -rf "$work" && mkdir -p "$work" && cd "$work"
  local stores=(--storage "sqlite:///$work/optuna.db" --tracking-uri "sqlite:///$work/mlflow.db")
  local size=() bench=() trials=10 epochs=5 long=30
  if [ -n "$quick" ]; then
    size=(--train-size 1000) bench=(--quick --rounds 1) trials=2 epochs=1 long=2
  fi
  {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
    "$python" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  } 2>&1 | tee "$OUT/device.txt"
  step 210 gpu_cnn "$python" "$ROOT/bench/gpu_cnn.py" "${bench[@]}"
  step 200 sweep "$python" -m sweeps.cli sweep --model cnn --study gpu "${stores[@]}" \
    --trials "$trials" --epochs "$epochs" --set augment=true "${size[@]}"
  step 30 best "$python" -m sweeps.cli best --study gpu "${stores[@]}" --output "$OUT/best.toml"
  step 110 train30 "$python" -m sweeps.cli train --model cnn --tracking-uri \
    "sqlite:///$work/mlflow.db" --epochs "$long" --set augment=true "${size[@]}"
  tar czf "$OUT/stores.tgz" optuna.db mlflow.db
  ls -la "$OUT"
}

case "${1:-}" in
  fetch) fetch ;;
  run) run ;;
  *) echo "usage: bash bench/gpu_session.sh fetch|run" >&2; exit 2 ;;
esac

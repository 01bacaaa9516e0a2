#!/usr/bin/env bash
# Fetches, here (PyPI reachable), the wheels that scripts/gpu_check.sh installs on the GPU machine,
# whose image has JAX, absl, protobuf and the scientific stack but not ml-collections, mlxtend or tensorboardX;
# Flax, Optax and Orbax travel too, at the versions the project is tested with (the image's own may be newer).
# Versions as in requirements.txt; pure Python, so one wheel serves any platform. .whl/ is git-ignored.
set -eu
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" requirements.txt; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "$(pin ml-collections)" "$(pin mlxtend)" "$(pin tensorboardX)" \
  "$(pin flax)" "$(pin optax)" "$(pin orbax-checkpoint)"
ls -l .whl

#!/usr/bin/env bash
# Prepare a training run on a lent GPU (README, "Training on a lent GPU"). Run here, in the repo root:
#   docs/device/prepare.sh CORPUS [MIB] [rtgan data pack options...]
# Writes .device/ (git-ignored): pack/ (a size-bounded copy of CORPUS, rtgan data pack) and whl/ (the
# wheels the GPU image lacks: soundfile and its cffi, for Python 3.12 on x86-64), then prints the size
# the call will carry (the working tree + .device, at most 64 MiB).
set -euo pipefail
corpus=${1:?usage: docs/device/prepare.sh CORPUS [MIB] [pack options]}
mib=${2:-12}
shift $(( $# >= 2 ? 2 : 1 ))
rm -rf .device
mkdir -p .device
rtgan data pack "$corpus" --out .device/pack --max-mib "$mib" --max-seconds 4 -q "$@"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .device/whl soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
extra=$(du -sb .device | cut -f1)
python3 - "$tree" "$extra" <<'PY'
import sys
tree, extra = (int(a) / 2**20 for a in sys.argv[1:])
print(f"carry: working tree {tree:.1f} MiB + .device {extra:.1f} MiB = {tree + extra:.1f} MiB (limit 64)")
if tree + extra > 63.5:
    sys.exit("too large: lower MIB")
PY

#!/usr/bin/env bash
# Train on the lent GPU (README, "Training on a lent GPU"). The device tool runs, in the repo root there:
#   bash docs/device/train.sh MODEL [rtgan train options...]
# with carry [".device"] (docs/device/prepare.sh). Installs the carried wheels, runs
# `rtgan train MODEL --data .device/pack --device cuda --run-dir /tmp/run OPTIONS`, and leaves in $OUT
# (what comes back): train.log, run.tgz (the run's last.json, config and validation log, and its
# generator snapshots, evenly spaced over the run, as many as fit 15 MiB, JSON metadata with each) and nvidia-smi.txt.
# A CPU rehearsal here: PYTHON=venv/bin/python WHL=dir-of-cp311-wheels RTGAN_DEVICE=cpu OUT=/tmp/out.
set -uo pipefail
model=${1:?usage: docs/device/train.sh MODEL [rtgan train options]}
shift
out=${OUT:-/tmp/out}
mkdir -p "$out"
py=${PYTHON:-python3}
rm -rf /tmp/site /tmp/run
$py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${WHL:-.device/whl}"/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
$py -m rtgan.cli train "$model" --data .device/pack --device "${RTGAN_DEVICE:-cuda}" --run-dir /tmp/run "$@" 2>&1 | tee "$out/train.log"
rc=${PIPESTATUS[0]}
$py - /tmp/run "$out/run.tgz" <<'PY'
import sys, tarfile
from pathlib import Path
run, dst = Path(sys.argv[1]), sys.argv[2]
keep = [p for p in run.glob("*.json")]
budget = 15 * 2**20 - sum(p.stat().st_size for p in keep)
snaps = sorted((run / "snapshots").glob("*.safetensors"))
pairs = [[s] + ([s.with_suffix(".json")] if s.with_suffix(".json").exists() else []) for s in snaps]
each = max((sum(p.stat().st_size for p in q) for q in pairs), default=1)
k = min(len(pairs), budget // each)
if k:  # evenly spaced over the run, the newest always among them
    picks = sorted({round(i * (len(pairs) - 1) / max(k - 1, 1)) for i in range(k)}) if k > 1 else [len(pairs) - 1]
    keep += [p for i in picks for p in pairs[i]]
with tarfile.open(dst, "w:gz") as t:
    for p in keep:
        t.add(p, arcname=str(p.relative_to(run)))
print(f"{dst}: {len(keep)} files")
PY
exit "$rc"

#!/bin/bash
# One batch on a GPU host with no network (see the report in tests/fixtures/gpu/README.md):
# wheels -> fact recording -> preflight (matching ad-hoc tier, then the standard tier) -> dry run -> burn-in.
# Usage (repo root): bash tests/gpu/device_run.sh OUTDIR [BURNIN_MINUTES]
set -u
OUTDIR=${1:?outdir}; MIN=${2:-1.5}
mkdir -p "$OUTDIR/rec"
if [ -d .whl/gpu ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/gpu/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
log() { echo "=== $*" | tee -a "$OUTDIR/run.log"; }
log "python $(python3 -V 2>&1); pyinfra $(python3 -c 'import pyinfra,importlib.metadata as m;print(m.version("pyinfra"))')"
log "record facts"; python3 tests/gpu/record_fixtures.py "$OUTDIR/rec" 2>&1 | tee -a "$OUTDIR/run.log"
NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
CNT=$(nvidia-smi -L | wc -l)
case "$NAME" in *H200*) MODEL=H200;; *H100*) MODEL=H100;; *) MODEL="$NAME";; esac
export LLMRACK_GPU_MODEL=$MODEL LLMRACK_GPU_COUNT=$CNT LLMRACK_GPU_MEMORY_GIB=$(python3 -c "print(round($MEM/1024))")
log "ad-hoc tier: ${CNT}x $MODEL ${LLMRACK_GPU_MEMORY_GIB} GiB (standard tier overridden)"
log "pyinfra fact (CLI)"
python3 -m pyinfra -y @local fact llmrack.facts.NvidiaGpus llmrack.facts.SecureBoot llmrack.facts.KernelModules \
  llmrack.facts.XidErrors llmrack.facts.ContainerToolkitVersion 2>&1 | tee "$OUTDIR/rec/pyinfra-fact.txt" | tail -40
log "preflight, matching tier (executes: only preflight ops)"
LLMRACK_TIER=standard python3 -m pyinfra -y tests/gpu/inventory_local.py tests/gpu/preflight_only.py 2>&1 \
  | tee "$OUTDIR/rec/preflight-match.txt"; echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/rec/preflight-match.txt"
log "preflight, standard tier 4x RTX 4090 (must stop)"
env -u LLMRACK_GPU_MODEL LLMRACK_TIER=standard python3 -m pyinfra -y tests/gpu/inventory_local.py tests/gpu/preflight_only.py 2>&1 \
  | tee "$OUTDIR/rec/preflight-standard.txt"; echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/rec/preflight-standard.txt"
log "dry run of deploys/gpu_host.py, matching tier"
LLMRACK_TIER=standard python3 -m pyinfra -y tests/gpu/inventory_local.py deploys/gpu_host.py --dry 2>&1 \
  | tee "$OUTDIR/rec/dry-run.txt"; echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/rec/dry-run.txt"
log "dry run, json"
LLMRACK_TIER=standard python3 -m pyinfra -y tests/gpu/inventory_local.py deploys/gpu_host.py --dry --json \
  > "$OUTDIR/rec/dry-run.json" 2> "$OUTDIR/rec/dry-run.stderr"; echo "rc=$?"
log "dry run with driver_branch 590 (installed 580 is older)"
LLMRACK_DRIVER_BRANCH=590 LLMRACK_TIER=standard python3 -m pyinfra -y tests/gpu/inventory_local.py deploys/gpu_host.py --dry 2>&1 \
  | tee "$OUTDIR/rec/dry-run-590.txt"; echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/rec/dry-run-590.txt"
log "gpu pytest"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu 2>&1 | tee "$OUTDIR/rec/pytest-gpu.txt" | tail -15
log "burn-in $MIN min"
python3 -m llmrack.burnin --minutes "$MIN" --sample-s 5 --out "$OUTDIR/burnin.json" 2>&1 | tee "$OUTDIR/rec/burnin.txt" | tail -60
echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/rec/burnin.txt"
tar -C "$OUTDIR" -czf "$OUTDIR/rec.tar.gz" rec && rm -rf "$OUTDIR/rec"
log done

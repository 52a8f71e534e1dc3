#!/bin/bash
# The acceptance report on a GPU host with no network and no stack: burn-in saved where verify collects it, then
# `llmrack verify --local` over every checklist line (hardware lines measured; the stack's lines fail as "not
# deployed", which is the truth on such a host). Needs .whl/gpu and .tools.tar.xz from tests/gpu/pack_tools.sh.
# Usage (repo root): bash tests/gpu/device_verify.sh OUTDIR [BURNIN_MINUTES (0: keep the saved one)] [CPU_STRESS_S] [MEMTEST_MIB]
# BURNIN_ARGS (environment) is passed to the burn-in, e.g. --scaling for its solo phase and all-reduce on one GPU.
set -u
OUTDIR=${1:?outdir}; MIN=${2:-2}; CPU_S=${3:-120}; MEM_MIB=${4:-1024}
mkdir -p "$OUTDIR"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/gpu/*.whl \
  || exit 1
rm -rf /tmp/.tools && tar -C /tmp -xJf .tools.tar.xz || exit 1
mkdir -p /tmp/.tools/wrap
for b in /tmp/.tools/bin/*; do  # each tool sees the carried libraries, nothing else does
  printf '#!/bin/sh\nLD_LIBRARY_PATH=/tmp/.tools/lib exec %s "$@"\n' "$b" > "/tmp/.tools/wrap/${b##*/}"
  chmod +x "/tmp/.tools/wrap/${b##*/}"
done
export PATH=/tmp/.tools/wrap:$PATH PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
for b in stress-ng fio smartctl; do echo "$b: $($b --version 2>&1 | head -1)"; done | tee "$OUTDIR/tools.txt"
NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
case "$NAME" in *H200*) MODEL=H200;; *H100*) MODEL=H100;; *) MODEL="$NAME";; esac
export LLMRACK_GPU_MODEL=$MODEL LLMRACK_GPU_COUNT=$(nvidia-smi -L | wc -l) \
  LLMRACK_GPU_MEMORY_GIB=$(python3 -c "print(round($MEM/1024))") LLMRACK_CPU_STRESS_S=$CPU_S LLMRACK_MEMTEST_MIB=$MEM_MIB
mkdir -p /var/lib/llmrack/acceptance
echo "=== burn-in $MIN min"
[ "$MIN" = 0 ] || python3 -m llmrack.burnin --minutes "$MIN" --sample-s 5 ${BURNIN_ARGS:-} --out /var/lib/llmrack/acceptance/burnin.json 2>&1 \
  | tail -40 | tee "$OUTDIR/burnin.txt"
cp /var/lib/llmrack/acceptance/burnin.json "$OUTDIR/" 2>/dev/null
echo "=== verify --local"
python3 -c 'import sys; from llmrack.cli import main; sys.argv[0] = "llmrack"; main()' verify tests/gpu/inventory_local.py \
  --local --report "$OUTDIR/report" 2>&1 | tee "$OUTDIR/verify.txt" | grep -E "^\S+ [0-9]+/[0-9]+: (PASS|FAIL|MANUAL|N/A|ERROR|NOT)" | cut -c1-160
echo "rc=${PIPESTATUS[0]}" | tee -a "$OUTDIR/verify.txt"

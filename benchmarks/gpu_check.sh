#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py's steps), whole, in one command, meant to take at most 8 minutes on one H100 or H200.
# Its one full run (H200, 2026-11-28, benchmarks/results/gpu-check.md) took 525 s and ran out of BUDGET in
# the training step: cuDNN's algorithm search, on in the scorer then and off since, took most of the
# throughput step's 273 s.
#
#   1. tests/test_precision_scope.py with --device cuda; CUDA exact (and fast) against CPU exact on the
#      same 512 genuine CIFAR-10 images: largest logit difference, score relative difference;
#   2. images/s of ours exact, ours fast and torch-fidelity in one process on 10,000 uint8 32x32 images
#      in memory (several batch sizes and fast-mode dtypes), where one batch's time goes (stages and
#      torch.profiler's top kernels), images/s of `inception-score FOLDER --num-workers K --json`
#      on 2,000 PNG files (32x32) and 2,000 JPEG files (256x256), and the wall time of a whole
#      `inception-score IMAGES.npz --json` and of torch-fidelity, each started afresh, on 50,000 images;
#   3. 30 s of training steps of each Table 3 variant (reference_gan) at batch 100 on random
#      CIFAR-shaped data, with the fast step and then plain, and the hours `reference-gan ablation
#      --preset paper` would take on 1 and on 8 GPUs;
#   4. $OUT/gpu-check.md (copy it to benchmarks/results/gpu-check.md), $OUT/gpu-check.json (every
#      figure), $OUT/gpu-summary.json (the headline figures; copy it to benchmarks/results/), $OUT/gpu-check.log.
#
# The GPU machine has no network and no fid-helper wheel, and a device call carries at most 64 MiB, so
# prepare here first (the folder .gpu is ignored by git and named in the call's carry):
#   echo /.gpu/ >> .git/info/exclude
#   INCEPTION_SCORE_SHARED=/work/shared python benchmarks/gpu_check.py prepare .gpu   # 48 MB weights + 512 images
#   python -m pip download --no-deps --only-binary=:all: -d .gpu/wheels torch-fidelity==0.4.0
# then on the device:  bash benchmarks/gpu_check.sh            (carry [".gpu"], timeout_s 600)
# Dry run here, tiny sizes, under a minute:  DEVICE=cpu SMALL=1 bash benchmarks/gpu_check.sh
#
# Within BUDGET the training step comes last and gets what is left: every variant with the fast step
# first (its first steps include torch.compile's compilation, reported apart as warm-up), then plain as
# far as time allows (TRAIN_MODES=fast to skip it, TRAIN_SECONDS to shorten each variant).
#
# Environment: DEVICE (cuda), SMALL (0), OUT (a new temporary folder), PREP (.gpu, what `prepare`
# wrote), WHEELS (first argument, else $PREP/wheels), WEIGHTS (a float32 weights file instead of the
# development one), PYTHON (python3), BUDGET (570: seconds the whole check may take), and the sizes below.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

DEVICE=${DEVICE:-cuda}
SMALL=${SMALL:-0}
PREP=${PREP:-.gpu}
WHEELS=${1:-${WHEELS:-$PREP/wheels}}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log

if [ "$SMALL" = 1 ]; then
  : "${SPLITS:=1}" "${COMPARE_COUNT:=1}" "${MEMORY_COUNT:=1}" "${BATCH_SIZES:=1}" "${PNG_COUNT:=1}"
  : "${WORKERS:=2}" "${FILE_BATCH:=1}" "${TRAIN_SECONDS:=0.5}" "${TRAIN_BATCH:=2}" "${INIT_EXAMPLES:=4}"
  : "${JPEG_COUNT:=1}" "${JPEG_SIZE:=64}" "${END_COUNT:=4}"
  : "${VARIANTS:=minus-mbf}" "${PROFILE_BATCH:=2}" "${PYTEST_SELECT:=restore_every_switch and untouched}"
fi
: "${SPLITS:=10}" "${COMPARE_COUNT:=512}" "${MEMORY_COUNT:=10000}" "${BATCH_SIZES:=128,256,512,1024}"
: "${PNG_COUNT:=2000}" "${WORKERS:=0,4,8,16}" "${FILE_BATCH:=256}" "${TRAIN_SECONDS:=30}" "${TRAIN_BATCH:=100}"
: "${PROFILE_BATCH:=1024}" "${INIT_EXAMPLES:=}" "${VARIANTS:=}" "${PYTEST_SELECT:=}" "${BUDGET:=570}"
: "${JPEG_COUNT:=2000}" "${JPEG_SIZE:=256}" "${END_COUNT:=50000}" "${TRAIN_MODES:=fast,plain}"

say() { echo "== $* ($((SECONDS - start)) s)" | tee -a "$LOG" >&2; }
step() {  # a failed step is logged and the check goes on: one call should bring back every figure it can
  local name=$1; shift
  say "$name"
  "$@" >>"$LOG" 2>&1 || { say "$name FAILED (status $?): see $LOG"; failed=1; }
}
failed=0
check() { "$PYTHON" benchmarks/gpu_check.py "$@"; }
report() {  # after every step, so that a run cut short still brings back what it measured
  check report "$WORK" "$OUT/gpu-check.md" --device "$DEVICE" --tests "${tests_line:-not run}" \
    --wall "$((SECONDS - start))" --summary "$OUT/gpu-summary.json" >/dev/null 2>>"$LOG" || { say "report FAILED: see $LOG"; failed=1; }
}
partial_report() { [ "$SMALL" = 1 ] || report; }  # dry runs: only the last one

say "gpu check: DEVICE=$DEVICE SMALL=$SMALL OUT=$OUT"
if compgen -G "$WHEELS/*.whl" >/dev/null; then  # into a folder of their own: the device's python may be read-only
  step "install carried wheels" "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" \
    "$WHEELS"/*.whl
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
fi
# This checkout, from source (offline, nothing to build), first on the path: `python -c` would find it in
# the working folder anyway, but benchmarks/gpu_check.py runs from benchmarks/.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
command -v nvidia-smi >/dev/null && nvidia-smi >>"$LOG" 2>&1

weights=$WORK/weights.pth
if [ -n "${WEIGHTS:-}" ]; then
  weights=$WEIGHTS; echo "the file $WEIGHTS" >"$WORK/weights.txt"
else
  step "weights" check weights "$weights" --packed "$PREP/dev-weights-fp16.pth"
fi
images=$(ls "$PREP"/cifar10-*.npz 2>/dev/null | head -n 1)
[ -n "$images" ] || images=${INCEPTION_SCORE_SHARED:-shared}/data/cifar10-partial/cifar10_prefix_partial.npz

say "tests"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_precision_scope.py --device "$DEVICE" \
  ${PYTEST_SELECT:+-k "$PYTEST_SELECT"} >"$WORK/pytest.txt" 2>&1 || failed=1
cat "$WORK/pytest.txt" >>"$LOG"
tests_line=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$WORK/pytest.txt" | tail -n 1)

partial_report

step "compare" check compare --weights "$weights" --images "$images" --count "$COMPARE_COUNT" --splits "$SPLITS" \
  --device "$DEVICE" --out "$WORK/compare.json"
partial_report
step "throughput" check throughput --weights "$weights" --count "$MEMORY_COUNT" --batch-sizes "$BATCH_SIZES" \
  --splits "$SPLITS" --device "$DEVICE" --out "$WORK/throughput.json"
partial_report
step "profile" check profile --weights "$weights" --batch-size "$PROFILE_BATCH" --device "$DEVICE" \
  --out "$WORK/profile.json"
partial_report
step "files" check files --weights "$weights" --count "$PNG_COUNT" --jpeg-count "$JPEG_COUNT" --jpeg-size "$JPEG_SIZE" \
  --workers "$WORKERS" --batch-size "$FILE_BATCH" --splits "$SPLITS" --device "$DEVICE" --out "$WORK/files.json"
partial_report
step "end to end" check end-to-end --weights "$weights" --count "$END_COUNT" --splits "$SPLITS" --device "$DEVICE" \
  --out "$WORK/end_to_end.json"
partial_report
# The training step gets what is left of BUDGET seconds (a device call's limit, less a margin), and it
# records each variant as it finishes: a step cut short still reports the variants done.
left=$((BUDGET - (SECONDS - start) - 15))
[ "$left" -gt 10 ] || left=10
step "training" timeout "$left" "$PYTHON" benchmarks/gpu_check.py training --seconds "$TRAIN_SECONDS" --batch-size "$TRAIN_BATCH" --variants "$VARIANTS" \
  --modes "$TRAIN_MODES" \
  ${INIT_EXAMPLES:+--init-examples "$INIT_EXAMPLES"} --device "$DEVICE" --out "$WORK/training.json"
report
cat "$OUT/gpu-check.md"  # the reply of a device call shows the end of the output
say "done: $OUT/gpu-check.md (status $failed)"
exit $failed

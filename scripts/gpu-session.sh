#!/usr/bin/env bash
# One sitting on the GPU machine, in as few device calls as possible (each machine start costs
# minutes of a small budget). Run from the repo root there, with `gpu/` carried, holding
#   gpu/nanotune.xz          the cuda build (scripts/build-cuda.sh)
#   gpu/adl-piano-words.tar.xz, gpu/torch_reference.py   (copies from ../shared)
#
#   scripts/gpu-session.sh STEP...      e.g.  setup bench train:420 export
#
# Steps, run in the order given:
#   setup        unpack the binary to /tmp/nanotune, set the library path, prepare the corpus
#                into $DATA (skipped when already there: the machine stays warm between calls)
#   bench        nanotune's side-by-side figures: training (batch 64 x 200) and batch-1
#                generation of small and base
#   torch        the same with torch_reference.py, eager and compiled
#   train:S      train $PRESET for S seconds: the step count is fitted to S from a measured step
#                time, so the cosine schedule ends when the time does (a whole cycle, best weights
#                at the end); --minutes guards the limit. From $INIT when set, else from scratch.
#                `train:rest` takes what is left until $END_AT seconds after the start (default
#                540, for a 600 s call), less 45 s for eval and export.
#   ablate       the recipe at equal words: each variant of $ABLATE ("name:flags;name:flags") trains
#                the shipped shape (3 layers, 6 heads, 384 wide, context 1,024, rotary) from scratch
#                for the same step count, fitted to $ABLATE_SECONDS a variant from a measured step
#                time at batch $ABLATE_BATCH; then its val loss on the first 100,000 val words. The
#                runs' logs, a `name` column first, go to $OUT/ablate.csv
#   eval         validation and test loss of $RUN, whole splits
#   export       f16 copy of $RUN into $OUT/$PRESET, the weights split into 15 MB parts (what
#                comes back from the GPU machine has a 16 MiB limit a file); join them with
#                `cat model.safetensors.part-* > model.safetensors`
#
# Everything printed also goes to $OUT/session.log, the JSON lines of the benches to
# $OUT/bench.jsonl. Settings (environment): NANOTUNE (a binary; default: unpack gpu/nanotune.xz),
# DEVICE (cuda), PRESET (base), BATCH (64), LR (1e-3), MIN_LR (LR / 10), WARMUP (200),
# DATA (/tmp/prepared), RUN (/tmp/run-$PRESET), INIT (a checkpoint to start from), END_AT,
# OPTIMIZER (muon from scratch, where the ablation of 2026-12-04 found it 0.15-0.18 nats ahead at
# equal words (docs/training.md, "The recipe"); adamw with INIT) and MUON_LR (0.02),
# STRETCHES (0.5,0.75) and STRETCH_PROB (0.33): time stretch without the seed's 1.5, which taught
# the shipped CPU model slowed-down pieces as a style of its own (docs/training.md, run 10).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1

DEVICE=${DEVICE:-cuda} PRESET=${PRESET:-base} BATCH=${BATCH:-64} LR=${LR:-1e-3}
MIN_LR=${MIN_LR:-} WARMUP=${WARMUP:-200} DATA=${DATA:-/tmp/prepared} RUN=${RUN:-/tmp/run-$PRESET}
INIT=${INIT:-} END_AT=${END_AT:-540} MUON_LR=${MUON_LR:-0.02}
OPTIMIZER=${OPTIMIZER:-$([ -z "$INIT" ] && echo muon || echo adamw)} STRETCHES=${STRETCHES:-0.5,0.75} STRETCH_PROB=${STRETCH_PROB:-0.33}
started=$SECONDS
say() { echo "== [$((SECONDS - started)) s] $*"; }

# The binary and its libraries; cheap, so every call does it.
bin=${NANOTUNE:-/tmp/nanotune}
if [ ! -x "$bin" ]; then
  xz -dc gpu/nanotune.xz >"$bin" && chmod +x "$bin" || { echo "no $bin and no gpu/nanotune.xz" >&2; exit 1; }
fi
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh "$bin"

# Runs a bench command, keeping its JSON line.
bench_line() {
  "$@" | tee /tmp/bench.out
  grep '^{' /tmp/bench.out >>"$OUT/bench.jsonl"
}

# Milliseconds a training step of $PRESET takes here: from the bench when it ran with this
# batch, else measured now.
step_ms() {
  local line
  line=$(grep '"what":"train"' "$OUT/bench.jsonl" 2>/dev/null | grep '"impl":"nanotune"' |
    grep "\"preset\":\"$PRESET\"" | grep "\"batch\":$BATCH," | tail -1)
  if [ -z "$line" ]; then
    bench_line "$bin" bench train --device "$DEVICE" --preset "$PRESET" --batch "$BATCH" --steps 20 >&2
    line=$(grep '"what":"train"' /tmp/bench.out | tail -1)
  fi
  echo "$line" | sed -E 's/.*"step_ms":([0-9.]+).*/\1/'
}

for step in "$@"; do
  case $step in
  setup)
    say "setup: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
    [ -f "$DATA/index.json" ] || "$bin" prepare gpu/adl-piano-words.tar.xz -o "$DATA" -q || exit 1
    ;;
  bench)
    for p in small base; do
      say "nanotune train $p"
      bench_line "$bin" bench train --device "$DEVICE" --preset "$p" --batch 64 --steps 50
      say "nanotune generate $p"
      bench_line "$bin" bench generate --device "$DEVICE" --preset "$p" --words 500 --no-uncached
    done
    ;;
  torch)
    if ! python3 -c 'import torch' 2>/dev/null; then
      say "torch: python3 has no torch here, skipped"
      continue
    fi
    # Each shape: the presets at the seed's context, and the shipped shape (context 1,024,
    # rotary) with a 1,000-word prompt. TORCH_COMPILE="" skips the compiled runs.
    for compile in "" ${TORCH_COMPILE---compile}; do
      for shape in "--layers 3 --heads 6 --width 384" "--layers 4 --heads 8 --width 512" \
        "--layers 3 --heads 6 --width 384 --context 1024 --rope --batch 32 --prompt-tokens 1000 --gen-tokens 1000"; do
        say "torch_reference $shape $compile"
        # shellcheck disable=SC2086
        PYTHONUNBUFFERED=1 bench_line python3 gpu/torch_reference.py --vocab 219 --batch 64 $shape $compile
      done
    done
    ;;
  train:*)
    ms=$(step_ms)
    seconds=${step#train:}
    [ "$seconds" = rest ] && seconds=$((END_AT - (SECONDS - started) - 45))
    if [ "$seconds" -lt 30 ]; then
      say "train: only $seconds s left, skipped"
      continue
    fi
    # A tenth of the time for the evaluations and checkpoints on the way.
    steps=$(awk -v s="$seconds" -v ms="$ms" 'BEGIN { n = int(0.9 * s * 1000 / ms); print (n < 1 ? 1 : n) }')
    minutes=$(awk -v s="$seconds" 'BEGIN { printf "%.2f", s / 60 }')
    say "train $PRESET: $steps steps of $ms ms in ${seconds} s, $OPTIMIZER, lr $LR"
    "$bin" train --device "$DEVICE" --preset "$PRESET" --data "$DATA" --out "$RUN" \
      --batch "$BATCH" --lr "$LR" ${MIN_LR:+--min-lr "$MIN_LR"} --warmup "$WARMUP" \
      --optimizer "$OPTIMIZER" --muon-lr "$MUON_LR" \
      --stretches "$STRETCHES" --stretch-prob "$STRETCH_PROB" \
      --steps "$steps" --eval-every $((steps / 20 > 0 ? steps / 20 : 1)) --minutes "$minutes" \
      ${INIT:+--init-from "$INIT"} || exit 1
    ;;
  ablate)
    b=${ABLATE_BATCH:-32}
    shape=(--layers 3 --heads 6 --width 384 --context 1024 --positions rotary)
    say "ablate: step time of the shape at batch $b"
    bench_line "$bin" bench train --device "$DEVICE" --preset small --batch "$b" --context 1024 --steps 10
    ms=$(grep '"what":"train"' /tmp/bench.out | tail -1 | sed -E 's/.*"step_ms":([0-9.]+).*/\1/')
    # Rotary positions and the evaluations on the way cost a little more than the bench's step.
    steps=$(awk -v s="${ABLATE_SECONDS:-60}" -v ms="$ms" 'BEGIN { n = int(0.8 * s * 1000 / ms); print (n < 10 ? 10 : n) }')
    guard=$(awk -v s="${ABLATE_SECONDS:-60}" 'BEGIN { printf "%.2f", 1.5 * s / 60 }')
    IFS=';' read -ra variants <<<"${ABLATE:-base:}"
    for v in "${variants[@]}"; do
      name=${v%%:*} flags=${v#*:}
      say "ablate $name: $steps steps of batch $b x 1024 ($((steps * b * 1024)) words), flags: $flags"
      # shellcheck disable=SC2086
      "$bin" train --device "$DEVICE" "${shape[@]}" --data "$DATA" --out "/tmp/ablate-$name" \
        --batch "$b" --steps "$steps" --eval-every $((steps / 4 > 0 ? steps / 4 : 1)) \
        --stretches "$STRETCHES" --stretch-prob "$STRETCH_PROB" --minutes "$guard" -q $flags || continue
      "$bin" eval --device "$DEVICE" --checkpoint "/tmp/ablate-$name" --data "$DATA" --split val --max-words 100000
      sed "s/^/$name,/" "/tmp/ablate-$name/log.csv" >>"$OUT/ablate.csv"
    done
    ;;
  eval)
    for split in val test; do
      say "eval $split"
      "$bin" eval --device "$DEVICE" --checkpoint "$RUN" --data "$DATA" --split "$split"
    done
    ;;
  export)
    say "export $RUN to $OUT/$PRESET"
    rm -rf "${OUT:?}/$PRESET"
    "$bin" export --checkpoint "$RUN" --out "$OUT/$PRESET" || exit 1
    (cd "$OUT/$PRESET" && split -b 15M -d model.safetensors model.safetensors.part- &&
      rm model.safetensors && ls -l)
    ;;
  *)
    echo "unknown step: $step (setup, bench, torch, train:SECONDS, eval, export)" >&2
    exit 2
    ;;
  esac
done
say "done"

#!/usr/bin/env bash
# One GPU-machine call: install the carried wheels, record the environment, then run the named benchmarks in
# order, each under its own time limit, so that one failing or overrunning does not cost the others.
#
#   bash benchmarks/device_run.sh throughput judge          # results and logs under $OUT (or ./device_out)
#   FULL_EVAL_PER_BUCKET=120 bash benchmarks/device_run.sh full_eval
#   TRAINER_RUNS=reference_dynamic:2,reference:3 bash benchmarks/device_run.sh builtin trainer
#   bash benchmarks/device_run.sh scale_eval     # 2 GPUs (nvidia-h200-x2): one scale_* step per call, each
#   SCALE_TRAIN_RUNS=zero2,resume bash benchmarks/device_run.sh scale_train   # near the 10-minute limit
#   SCALE_ARGS="--per-bucket 32" bash benchmarks/device_run.sh scale_eval     # more scale_out.py flags
#
# Expects, carried beside the working tree: .whl/ (benchmarks/README.md says which wheels), runs/bench and
# runs/judge_bench (the `prepare` outputs), runs/trainer_bench. The scale_* steps keep their models under
# runs/scale_out (not carried: built there, and reused while the machine stays warm); scale_train adds each call's
# runs to runs/scale_out/train.json, so that runs made in several calls are compared with each other.
set -u -o pipefail
OUT=${OUT:-device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site
python3 - > "$OUT/env.txt" 2>&1 <<'EOF'
import importlib, importlib.metadata as md, subprocess
for name in ("torch", "transformers", "peft", "accelerate", "datasets", "trl", "lmms_eval", "pyarrow", "fsspec",
             "huggingface_hub", "pandas", "typing_extensions", "pydantic", "deepspeed"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "missing")
for module in ("datasets", "trl", "lmms_eval.models.chat.qwen3_vl"):
    try:
        importlib.import_module(module)
        print("import", module, "ok")
    except Exception as exc:  # reported, then each benchmark fails on its own
        print("import", module, "FAILED", type(exc).__name__, exc)
print(subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"],
                     capture_output=True, text=True).stdout)
EOF
cat "$OUT/env.txt"

step() {  # name, time limit in seconds, command...
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "=== $name exit $?"
  tail -n 25 "$OUT/$name.log"
}

for name in "$@"; do
  case $name in
    throughput) step throughput 330 python3 benchmarks/qwen3_vl_throughput.py run --inputs runs/bench \
                  --out "$OUT/throughput.json" --builtin-batches 128 --our-batches 128 --our-samples 256 ;;
    builtin) step builtin 200 python3 benchmarks/qwen3_vl_throughput.py run --inputs runs/bench \
               --out "$OUT/builtin.json" --builtin-batches 128 --our-batches "" ;;
    judge) step judge 200 python3 benchmarks/judge_hf.py run --inputs runs/judge_bench --out "$OUT/judge.json" ;;
    trainer) step trainer 540 python3 benchmarks/trainer_step.py run --inputs runs/trainer_bench \
               --out "$OUT/trainer.json" --runs "${TRAINER_RUNS:-reference_dynamic:2,reference:3}" ;;
    full_eval) step full_eval 560 python3 benchmarks/full_eval.py --tokenizer runs/bench/tokenizer \
                 --out "$OUT/full_eval.json" --per-bucket "${FULL_EVAL_PER_BUCKET:-350}" ;;
    scale_eval|scale_moe) step "$name" 560 python3 benchmarks/scale_out.py "${name#scale_}" \
                 --inputs runs/trainer_bench --out "$OUT/$name.json" ${SCALE_ARGS:-}
               find runs/scale_out -name '*.log' -exec cp --parents {} "$OUT/" \; ;;  # each launch's log
    scale_train) step scale_train 560 python3 benchmarks/scale_out.py train --inputs runs/trainer_bench \
                   --out runs/scale_out/train.json --runs "${SCALE_TRAIN_RUNS:-single,ddp}" ${SCALE_ARGS:-}
                 cp runs/scale_out/train.json "$OUT/scale_train.json"
                 find runs/scale_out -name '*.log' -exec cp --parents {} "$OUT/" \; ;;
    *) echo "unknown step $name" ;;
  esac
done

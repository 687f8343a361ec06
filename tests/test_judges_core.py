"""Judge building blocks without a server: answer extraction, presets, shuffling, cache, options, binary rule."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from covip.judges.binary import BinaryQuestion, RuleBinaryJudge
from covip.judges.cache import JudgeCache, cache_key, default_cache_path
from covip.judges.extract import extract_label, extract_letter
from covip.judges.presets import PRESETS, decoding_for
from covip.judges.prompt import MCQA_TEMPLATE, mcqa_prompt, prompt_hash
from covip.judges.protocol import MCQA, format_question
from covip.judges.registry import make_binary_judge, make_judge
from covip.judges.resilience import retry_after_seconds


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The description says last summer.\nAnswer: \\boxed{A}", "A"),
        ("\\boxed{ C }", "C"),
        ("\\boxed{\\text{B}}", "B"),
        ("\\boxed{B. Last summer}", "B"),
        ("first \\boxed{A} then, on reflection, \\boxed{D}", "D"),  # the final box is the answer
        ("Answer: C", "C"),
        ("**Answer:** (B)", "B"),
        ("The answer is D.", "D"),
        ("B. last winter\n\nThe answer is D. The answer cannot be determined.", "D"),
        ("Some reasoning.\nB", "B"),
        ("**A**", "A"),
        ("\\boxed{A or D}", None),  # ambiguous: unreadable, never credited to both (reference defect 3)
        ("Answer: A or B", None),
        ("I cannot tell.", None),
        ("ABCD", None),
        ("", None),
    ],
)
def test_extract_letter_layers(text, letter):
    assert extract_letter(text) == letter


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Correct", "correct"),
        ("The response mentions the piano.\nVerdict: Correct.", "correct"),
        ("wrong", "wrong"),
        ("Incorrect", "wrong"),  # the reference counts this as correct (substring); we do not
        ("The answer is incorrect", "wrong"),
        ("Verdict: not correct.", "wrong"),
        ("incorrectly phrased", None),
        ("Correct or wrong, hard to say", None),
        ("Correct.\nHmm, not sure.", None),  # only the final line counts
        ("", None),
    ],
)
def test_extract_label_whole_words_on_the_final_line(text, label):
    assert extract_label(text) == label


def test_presets_and_overrides():
    assert PRESETS["strict"].decoding["temperature"] == 0.0 and not PRESETS["strict"].unreadable_as_default
    paper = PRESETS["paper"]
    assert paper.decoding == {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0}
    assert paper.unreadable_as_default
    assert decoding_for(paper, {"top_k": None, "max_tokens": 64}) == {
        "temperature": 0.7,
        "top_p": 0.8,
        "min_p": 0.0,
        "max_tokens": 64,
    }
    with pytest.raises(ValueError, match="unknown decoding option"):
        decoding_for(paper, {"topk": 3})


def test_prompt_follows_the_protocol_structure():
    item = MCQA("q", "Seth ran in the park.", "Where did Seth run?", {"A": "park", "B": "beach", "C": "lake", "D": "x"})
    prompt = mcqa_prompt(item.caption, format_question(item))
    assert prompt.index("[Description]") < prompt.index("Seth ran in the park.") < prompt.index("[Question]")
    assert prompt.endswith("Question: Where did Seth run?\nA. park\nB. beach\nC. lake\nD. x")
    assert "\\boxed{X}" in prompt
    assert prompt_hash(MCQA_TEMPLATE) == prompt_hash(MCQA_TEMPLATE) != prompt_hash(MCQA_TEMPLATE + " ")


def test_shuffle_is_seeded_keeps_d_and_maps_back(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    judge = make_judge("openai", model="m", cache="off", shuffle_seed=3)
    item = MCQA("s1/c0.Q1", "cap", "q?", {"A": "one", "B": "two", "C": "three", "D": "none"})
    orders = set()
    for qid in [f"s{i}/q" for i in range(30)]:
        shown, back = judge.shown(MCQA(qid, "cap", "q?", item.options))
        assert shown.options["D"] == "none" and back["D"] == "D"
        assert {shown.options[s] for s in "ABC"} == {"one", "two", "three"}
        assert all(shown.options[s] == item.options[o] for s, o in back.items())
        orders.add(tuple(shown.options[s] for s in "ABC"))
    assert len(orders) > 1  # actually shuffled
    assert judge.shown(item) == judge.shown(item)  # same seed and question: same order
    assert judge.spec.decoding["shuffle_seed"] == 3


def test_cache_roundtrip_and_keys(tmp_path):
    cache = JudgeCache(tmp_path / "c.sqlite")
    identity = {
        "backend": "openai",
        "model": "m",
        "preset": "strict",
        "decoding": {"temperature": 0},
        "prompt_hash": "h",
    }
    key = cache_key(identity, "prompt")
    assert cache_key(identity, "prompt") == key
    assert cache_key({**identity, "decoding": {"temperature": 0.7}}, "prompt") != key
    assert cache_key({**identity, "model": "other"}, "prompt") != key
    assert cache_key(identity, "prompt2") != key
    cache.put(key, "judge", "Answer: \\boxed{A}")
    cache.close()
    again = JudgeCache(tmp_path / "c.sqlite")
    assert again.get_many([key, "missing"]) == {key: "Answer: \\boxed{A}"}
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cache_keeps_local_checkpoints_of_the_same_name_apart(monkeypatch, tmp_path):
    from covip.judges.hf_backend import HFBackend

    asked = []  # which checkpoint generated: the model call is stubbed, the cache is real

    def generate(self, prompt, decoding):
        asked.append(self.path)
        return "Answer: \\boxed{A}"

    monkeypatch.setattr(HFBackend, "generate", generate)
    checkpoints = [tmp_path / run / "checkpoint-500" for run in ("run1", "run2")]
    item = MCQA("s0/c0.Q1", "cap", "q?", {"A": "one", "B": "two", "C": "three", "D": "none"})
    for path in [*checkpoints, checkpoints[0]]:
        path.mkdir(parents=True, exist_ok=True)
        judge = make_judge("hf", model=str(path), cache=str(tmp_path / "c.sqlite"), mode="generate")
        assert judge.spec.model == "checkpoint-500" and judge.judge_many([item])[0].letter == "A"
    assert asked == checkpoints  # run2's checkpoint was asked; run1's again was answered from the cache


def test_default_cache_path(monkeypatch, tmp_path):
    monkeypatch.delenv("COVIP_JUDGE_CACHE", raising=False)
    monkeypatch.setenv("COVIP_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "judge_cache.sqlite"
    monkeypatch.setenv("COVIP_JUDGE_CACHE", str(tmp_path / "x.sqlite"))
    assert default_cache_path() == tmp_path / "x.sqlite"


def test_registry_rejects_bad_options(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="unknown judge backend"):
        make_judge("claude")
    with pytest.raises(ValueError, match="needs option 'model'"):
        make_judge("openai")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['api_key'\]"):
        make_judge("openai", model="m", base_url="http://127.0.0.1:1/v1", api_key="sk-x")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):  # OpenAI's own API needs a key from the environment
        make_judge("openai", model="gpt-4o", cache="off")
    with pytest.raises(ValueError, match="unknown judge preset"):
        make_judge("openai", model="m", base_url="http://127.0.0.1:1/v1", preset="lenient")
    with pytest.raises(ValueError, match="takes no options"):
        make_judge("rule", preset="paper")
    with pytest.raises(ValueError, match="does not exist"):
        make_judge("hf", model="/nonexistent/model")
    with pytest.raises(ValueError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        monkeypatch.delenv("GEMINI_API_KEY", raising=False)
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        make_judge("gemini", model="gemini-x")


def test_retry_after_forms():
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds({"Retry-After": date}) <= 31
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_mcqa_only_options_of_a_run_reach_its_binary_judge_left_out(monkeypatch):
    from covip.tasks.scoring.judging import run_binary_judge, run_judge

    options = {"model": "m", "base_url": "http://127.0.0.1:1/v1", "cache": "off", "shuffle_seed": 3}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['shuffle_seed'\]"):
        make_binary_judge("openai", **options)  # asked directly, it is refused, not ignored
    monkeypatch.setenv("COVIP_JUDGE", "openai")
    monkeypatch.setenv("COVIP_JUDGE_OPTIONS", json.dumps({**options, "allow_errors": True}))
    assert run_judge().spec.decoding["shuffle_seed"] == 3
    assert "shuffle_seed" not in run_binary_judge().spec.decoding


def test_rule_binary_judge():
    judge = make_binary_judge("rule")
    assert isinstance(judge, RuleBinaryJudge)
    verdicts = judge.judge_binary_many(
        [
            BinaryQuestion("1", "Last time you were playing the piano at home.", "playing the piano"),
            BinaryQuestion("2", "You were not playing anything.", "playing the piano"),
            BinaryQuestion("3", "That is incorrect.", "correct"),
        ]
    )
    assert [v.label for v in verdicts] == ["correct", "wrong", "wrong"]
    assert all(v.judge_id.startswith("rule:") for v in verdicts)
    with pytest.raises(ValueError, match="binary question 4"):
        judge.judge_binary_many([BinaryQuestion("4", "x", "the")])


def test_error_verdicts_are_counted_wrong_and_fatal_unless_allowed():
    from covip.tasks.results.records import CaptionRecord, JudgeRef, Question, Verdict
    from covip.tasks.scoring import metrics
    from covip.tasks.scoring.judging import JudgeErrors, check_errors

    options = {"A": "a", "B": "b", "C": "c", "D": "The answer cannot be determined"}
    preds = ["A", "error", "D", "error", "invalid"]  # concept 0 (positive): two questions; concept 1: three
    record = CaptionRecord(
        sample_id="s1",
        bucket=1,
        control="none",
        caption="",
        names=["Ann", "Bo"],
        positives=[0],
        questions=[
            Question(qid=f"q{i}", concept=int(i > 1), question="?", options=options, gold="A") for i in range(5)
        ],
        verdicts=[
            Verdict(qid=f"q{i}", pred=p, detail="InternalServerError: boom" if i == 1 else "")
            for i, p in enumerate(preds)
        ],
        judge=JudgeRef(id="openai:m:strict:0", backend="openai", model="m", preset="strict"),
    )
    scores = {name: metrics.aggregate(name, [record]) for name in metrics.CAPTION_METRICS}
    assert scores["acc_pos"] == 50.0 and scores["acc_neg"] == pytest.approx(100 / 3)  # errors stay in denominators
    assert scores["judge_error"] == 2 and scores["judge_invalid"] == 1
    letters = {"A": 1, "B": 0, "C": 0, "D": 1, "invalid": 1, "error": 2, "blocked": 0}
    assert metrics.letter_distribution([record]) == letters
    with pytest.raises(JudgeErrors, match=r"2 judge call\(s\) failed .*sample s1 question q1: InternalServerError"):
        check_errors([record], allowed=False)
    check_errors([record], allowed=True)

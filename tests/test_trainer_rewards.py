"""Trainer rewards, data rows and config: pure functions, checked against hand-computed values."""

from __future__ import annotations

import json

import pytest

from covip.judges.protocol import ERROR, MCQA, JudgeSpec, Verdict
from covip.judges.registry import make_judge
from covip.trainer.config import PRESETS, resolve
from covip.trainer.data import CAPTION, RECOGNITION, build_rows, caption_prompt, mixed_tasks, recognition_prompt
from covip.trainer.rewards import (
    CapEvalReward,
    JudgeFailed,
    boxed_indices,
    degeneration_reward_for,
    is_degenerate,
    recognition_reward,
    truncation_reward_for,
)


def _qa(qid: str, answer: str) -> dict:
    options = {"A": f"{qid} alpha", "B": f"{qid} beta", "C": f"{qid} gamma", "D": "The answer cannot be determined"}
    return {"id": qid, "question": f"What about {qid}?", "options": options, "answer": answer}


def _sample(n_concepts: int = 3, positives: tuple[int, ...] = (0,)) -> dict:
    concepts = [
        {
            "name": f"Name{j}",
            "image": f"c{j}.png",
            "dialogue": f"dialogue {j}",
            "qas": [_qa(f"q{j}{k}", "A") for k in range(3)],
        }
        for j in range(n_concepts)
    ]
    return {
        "sample_id": "s",
        "bucket": len(positives),
        "concepts": concepts,
        "positives": list(positives),
        "query_image": "q.png",
    }


class ScriptedJudge:
    """Answers from a table {question id suffix: letter}; counts calls so batching is checked."""

    spec = JudgeSpec(backend="scripted", model="table", preset="test")

    def __init__(self, letters: dict[str, str], default: str = "D") -> None:
        self.letters, self.default, self.calls = letters, default, []

    def judge_many(self, items: list[MCQA]) -> list[Verdict]:
        self.calls.append(len(items))
        out = []
        for item in items:
            letter = self.letters.get(item.qid.rsplit(".", 1)[-1], self.default)
            out.append(Verdict(item.qid, letter, "scripted", "boom" if letter == ERROR else ""))
        return out


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_capeval_normalised_whatever_the_number_of_positives() -> None:
    one = json.dumps(_sample(3, (0,)))
    two = json.dumps(_sample(6, (0, 1)))
    # Concept 0: all right. Concept 1 answers A, B, C (gold A): as a positive one of three right, as a negative
    # all three leaked. Concept 2 leaks q20. Everything else is answered D.
    judge = ScriptedJudge({"q00": "A", "q01": "A", "q02": "A", "q10": "A", "q11": "B", "q12": "C", "q20": "A"})
    reward = CapEvalReward(judge)
    metrics: dict[str, float] = {}
    out = reward(
        completions=[_assistant("x"), _assistant("y")],
        task=[CAPTION, CAPTION],
        sample=[one, two],
        log_metric=metrics.__setitem__,
    )
    assert judge.calls == [9 + 18], "all questions of the batch in one judge_many call"
    # sample one: positives 3/3; negatives concepts 1 and 2: 4 of 6 leaked
    assert out[0] == pytest.approx(1.0 - 4 / 6)
    # sample two: positives (3 + 1)/6; negatives concepts 2..5: 1 of 12 leaked
    assert out[1] == pytest.approx(4 / 6 - 1 / 12)
    assert metrics["judge/errors"] == 0


def test_capeval_paper_scale_is_unnormalised() -> None:
    two = json.dumps(_sample(6, (0, 1)))
    judge = ScriptedJudge({f"q{j}{k}": "A" for j in (0, 1) for k in range(3)})
    out = CapEvalReward(judge, scale="paper")(completions=[_assistant("x")], task=[CAPTION], sample=[two])
    assert out == [pytest.approx(2.0)], "paper: right/3, so 2 positives answered perfectly give 2"


def test_capeval_judge_errors_stop_or_are_left_out_and_counted() -> None:
    blob = json.dumps(_sample(3, (0,)))
    judge = ScriptedJudge({"q00": ERROR, "q01": "A", "q02": "A"})
    with pytest.raises(JudgeFailed, match="1 of 9 judge calls failed"):
        CapEvalReward(judge)(completions=[_assistant("x")], task=[CAPTION], sample=[blob])
    metrics: dict[str, float] = {}
    out = CapEvalReward(judge, allow_errors=True)(
        completions=[_assistant("x")], task=[CAPTION], sample=[blob], log_metric=metrics.__setitem__
    )
    assert out == [pytest.approx(1.0)], "the failed question is left out, not scored wrong"
    assert metrics["judge/errors"] == 1
    all_failed = ScriptedJudge({}, default=ERROR)
    out = CapEvalReward(all_failed, allow_errors=True)(completions=[_assistant("x")], task=[CAPTION], sample=[blob])
    assert out == [None], "no answered question: no reward rather than a made-up zero"


def test_capeval_with_the_rule_judge_rewards_recall_and_punishes_leaks() -> None:
    sample = _sample(3, (0,))
    blob = json.dumps(sample)
    right = " ".join(sample["concepts"][0]["qas"][k]["options"]["A"] for k in range(3))
    leak = right + " " + sample["concepts"][1]["qas"][0]["options"]["B"]
    out = CapEvalReward(make_judge("rule"))(
        completions=[_assistant(right), _assistant(leak), _assistant("nothing here")],
        task=[CAPTION] * 3,
        sample=[blob] * 3,
    )
    assert out[0] > out[1] > out[2] - 1 and out[0] > out[2]


def test_recognition_reward_over_names_and_indices() -> None:
    blob = json.dumps(_sample(4, (0, 2)))
    out = recognition_reward(
        completions=[
            _assistant("Name0 and Name1 play."),
            _assistant("Answer: \\boxed{[0, 2]}"),
            _assistant("\\boxed{2}"),
            _assistant("none"),
        ],
        task=[CAPTION, RECOGNITION, RECOGNITION, RECOGNITION],
        sample=[blob] * 4,
    )
    assert out == [pytest.approx(0.5), 1.0, pytest.approx(2 / 3), 0.0]
    assert boxed_indices("\\boxed{[1, 'x']}") is None and boxed_indices("\\boxed{[3,1]}") == {1, 3}


def test_degeneration_and_truncation_penalties() -> None:
    loop = "The cat sits on the mat. " * 6
    assert is_degenerate(loop)
    assert not is_degenerate("Anna sits on the red sofa in the kitchen, holding a blue mug she got in July.")
    reference, paper = degeneration_reward_for(False), degeneration_reward_for(True)
    completions = [_assistant(loop), _assistant("A fine caption."), _assistant(""), _assistant("  \n")]
    assert reference(completions=completions) == [-1.0, 0.0, 0.0, 0.0]  # the reference code let empty pass
    assert paper(completions=completions) == [-1.0, 0.0, -1.0, -1.0]  # the paper counts it as degenerate
    truncation = truncation_reward_for(4, {9})
    assert truncation(completion_ids=[[1, 2, 3, 4], [1, 2, 3, 9], [1, 9]]) == [-1.0, 0.0, 0.0]


def test_rows_mix_tasks_and_prompts_match_their_images() -> None:
    assert [t for t, _ in mixed_tasks(6, 0.25, 0)].count(RECOGNITION) == 2
    from covip.tasks.data.schema import sample_from_dict

    sample = sample_from_dict(_sample(3, (1,)))
    for prompt in (caption_prompt(sample), recognition_prompt(sample)):
        assert sum(c["type"] == "image" for c in prompt[0]["content"]) == 4
    rec = recognition_prompt(sample)[0]["content"]
    assert rec[-1] == {"type": "image"} and rec[0]["text"] == "===== Concept 0 ====="
    from pathlib import Path

    rows = build_rows([sample] * 3, Path("/data"), recognition_ratio=0.5, seed=1)
    assert [r["task"] for r in rows].count(RECOGNITION) == 3
    assert rows[0]["image_paths"][-1] == "/data/q.png"


def test_presets_are_data_and_gspo_is_off_policy() -> None:
    gspo = resolve({"preset": "gspo"})
    assert gspo.importance_sampling_level == "sequence" and gspo.beta == 0.0
    assert gspo.steps_per_generation > gspo.gradient_accumulation_steps
    reference = resolve({"preset": "reference"})
    assert reference.steps_per_generation == reference.gradient_accumulation_steps, "the reference was on-policy"
    assert reference.weights["recognition"] == 0 and not reference.empty_is_degenerate
    paper = resolve({"preset": "paper"})
    assert paper.steps_per_generation > paper.gradient_accumulation_steps, "the paper's GSPO: the ratio moves"
    assert paper.weights["recognition"] == paper.weights["capeval"] == 1.0, "r = r_vis + r_caps"
    assert paper.empty_is_degenerate and paper.recognition_ratio == 0.25
    assert {k: getattr(paper, k) for k in ("learning_rate", "num_generations", "temperature", "capeval_scale")} == {
        k: getattr(reference, k) for k in ("learning_rate", "num_generations", "temperature", "capeval_scale")
    }
    assert resolve({"preset": "dr_grpo"}).scale_rewards == "none"
    assert set(PRESETS) == {"gspo", "grpo", "dr_grpo", "paper", "reference"}
    assert resolve({"preset": "gspo", "epsilon": "3e-4"}).epsilon == 3e-4, "YAML's string 3e-4 is parsed"
    assert gspo.config_hash() != resolve({"preset": "gspo", "learning_rate": 1e-5}).config_hash()
    assert gspo.config_hash() == resolve({"preset": "gspo", "output_dir": "elsewhere"}).config_hash()
    with pytest.raises(ValueError, match="unknown config field"):
        resolve({"lerning_rate": 1.0})
    with pytest.raises(ValueError, match="reward_weights"):
        resolve({"reward_weights": {"capeval": 1, "fluency": 1}})


def test_the_paper_reward_is_r_vis_plus_r_caps_and_an_empty_caption_gets_minus_one() -> None:
    """Each term of the `paper` preset on hand-made cases, combined as TRL combines them (weighted sum)."""
    from covip.trainer.train import reward_functions

    config = resolve({"preset": "paper", "judge": "rule"})
    rewards = reward_functions(config, eos_ids={9})
    weights = [config.weights[name] for name in config.weights if config.weights[name]]
    assert [r.__name__ for r in rewards] == ["capeval", "recognition", "degeneration", "truncation"]
    sample = _sample(3, (0,))
    blob = json.dumps(sample)
    # Names concept 0 (the positive) and recalls its three gold options; says nothing of concepts 1 and 2.
    perfect = "Name0 is here. " + " ".join(qa["options"]["A"] for qa in sample["concepts"][0]["qas"])
    # Names concept 0 and concept 1: recognition F1 = 2*1/(2+1); concept 1's options leak.
    leaky = perfect + " Name1 too, " + " ".join(qa["options"]["A"] for qa in sample["concepts"][1]["qas"])
    completions = [_assistant(perfect), _assistant(leaky), _assistant("")]
    kwargs = {"completions": completions, "task": [CAPTION] * 3, "sample": [blob] * 3}
    kwargs["completion_ids"] = [[1, 2, 9], [1, 2, 9], [9]]
    terms = [reward(**kwargs) for reward in rewards]
    assert terms[0] == [pytest.approx(1.0), pytest.approx(1.0 - 3 / 6), 0.0]  # r_caps: right/3 - leaked share
    assert terms[1] == [1.0, pytest.approx(2 / 3), 0.0]  # r_vis: set F1 of the named concepts
    assert terms[2] == [0.0, 0.0, -1.0] and terms[3] == [0.0, 0.0, 0.0]  # the empty caption is degenerate
    totals = [sum(w * t[i] for w, t in zip(weights, terms, strict=True)) for i in range(3)]
    assert totals == [pytest.approx(2.0), pytest.approx(0.5 + 2 / 3), -1.0]

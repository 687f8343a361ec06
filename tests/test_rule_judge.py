from covip.judges.protocol import MCQA
from covip.judges.registry import make_judge
from covip.judges.rule import RuleJudge

OPTIONS = {
    "A": "the Riverside farmers market",
    "B": "Lake Tahoe",
    "C": "a bowling alley",
    "D": "The answer cannot be determined",
}


def ask(caption: str, options: dict = OPTIONS) -> str:
    return RuleJudge().answer(MCQA("q", caption, "Where did the user take Seth?", options))


def test_picks_the_option_whose_words_the_caption_states():
    assert ask("Seth is back; last summer you took him to Lake Tahoe.") == "B"
    assert ask("You met at the riverside Farmers' market, Seth!") == "A"


def test_answers_d_when_nothing_is_supported():
    assert ask("A dog sits on a sofa.") == "D"
    assert ask("") == "D"


def test_partial_overlap_is_not_support():
    assert ask("Seth loves the market by the river.") == "D"


def test_two_equally_supported_options_give_d():
    assert ask("We went to Lake Tahoe and then to a bowling alley.") == "D"


def test_more_specific_option_wins_over_a_subsumed_one():
    options = {"A": "summer", "B": "last summer", "C": "winter", "D": "The answer cannot be determined"}
    assert ask("That was last summer.", options) == "B"


def test_judge_many_keeps_order_and_records_judge_id():
    judge = make_judge("rule")
    items = [MCQA(str(i), c, "q?", OPTIONS) for i, c in enumerate(["Lake Tahoe", "nothing", "a bowling alley"])]
    verdicts = judge.judge_many(items)
    assert [v.letter for v in verdicts] == ["B", "D", "C"]
    assert [v.qid for v in verdicts] == ["0", "1", "2"]
    assert all(v.judge_id == judge.spec.judge_id and v.judge_id.startswith("rule:") for v in verdicts)


def test_misconfigured_backends_fail_loudly():
    import pytest

    with pytest.raises(ValueError, match="needs option 'model'"):
        make_judge("openai")
    with pytest.raises(ValueError, match="unknown judge backend"):
        make_judge("nope")

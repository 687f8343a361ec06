"""The offline `rule` judge: answers an MCQA from lexical evidence in the caption.

Why it exists: the demo and CI must score captions with no model and no network, and the
score must still mean something. An option is *supported* when every content word of it
occurs in the caption (or its whole phrase does). The judge answers the single supported
option with the most content words; when none is supported, or two are supported equally,
it answers D ("cannot be determined"). It is deterministic and costs nothing, and it is
honest about what it measures: whether the caption states the fact, in the fact's words.
Paraphrases ("in summer" for "last summer") are not credited; an LLM judge does that.
"""

from __future__ import annotations

import re
from functools import lru_cache

from covip.judges.protocol import MCQA, JudgeSpec, Verdict

RULES_VERSION = "rule-v1"

# Small on purpose: only words that carry no fact (articles, prepositions, conjunctions, pronouns,
# auxiliaries, and the "s" left when an apostrophe is split off). Time words ('last', 'summer') stay.
STOPWORDS: frozenset[str] = frozenset(
    """
    a an the
    at in on of to for with by from into onto over under near about during after before around
    through up down off out along across behind between inside upon via
    and or but so as than then
    i me my mine we us our ours you your yours he him his she her hers they them their theirs
    it its this that these those who whom whose which what
    is are was were be been being am has have had do does did will would can could shall should
    may might must
    s
    """.split()
)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; apostrophes inside words are kept ("cousin's")."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def content_tokens(text: str) -> set[str]:
    return {t for t in tokens(text) if t not in STOPWORDS}


@lru_cache(maxsize=256)
def _caption_index(caption: str) -> tuple[frozenset[str], str]:
    """A caption's token set and space-padded token string; cached because every question of a sample shares it."""
    caption_tokens = tokens(caption)
    return frozenset(caption_tokens), " " + " ".join(caption_tokens) + " "


class RuleJudge:
    """Deterministic lexical judge; see the module docstring for the rule."""

    def __init__(self) -> None:
        self.spec = JudgeSpec(backend="rule", model=RULES_VERSION, preset="strict")

    def answer(self, item: MCQA) -> str:
        caption_tokens, caption_phrase = _caption_index(item.caption)
        best: list[tuple[int, str]] = []
        for letter in ("A", "B", "C"):
            option_tokens = tokens(item.options.get(letter, ""))
            words = {t for t in option_tokens if t not in STOPWORDS}
            if not words:
                continue
            phrase = " " + " ".join(option_tokens) + " "
            if words <= caption_tokens or (phrase.strip() and phrase in caption_phrase):
                best.append((len(words), letter))
        if not best:
            return "D"
        best.sort(reverse=True)
        if len(best) > 1 and best[0][0] == best[1][0]:
            return "D"
        return best[0][1]

    def judge_many(self, items: list[MCQA]) -> list[Verdict]:
        judge_id = self.spec.judge_id
        return [Verdict(item.qid, self.answer(item), judge_id) for item in items]

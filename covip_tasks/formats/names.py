"""Inferring a concept's pseudonym from its dialogue: the paper's files never stored the names it drew."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from covip.tasks.data.schema import (
    DataError,
    Problem,
)

# Capitalised words that are never a concept's pseudonym, wherever they stand.
_SPEAKERS = {"User", "Model", "Assistant", "Human", "Bot", "System", "Dialogue", "Dialog", "Conversation", "Turn"}
_WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
_HOLIDAYS = {"Christmas", "Halloween", "Thanksgiving", "Easter", "Hanukkah", "Ramadan", "Diwali"}
# Nationalities are not excluded: Faker has the surnames English and French (the paper's occasional pick).
_NEVER_NAMES = frozenset(_SPEAKERS | _WEEKDAYS | _HOLIDAYS)
# Months are also first names (Faker has "April"): only their date uses ("in April", "April 5") are excluded.
_MONTHS = frozenset(
    {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
     "December"}
)  # fmt: skip
_DATE_PREPS = frozenset(
    {"in", "of", "last", "next", "this", "early", "late", "mid", "since", "until", "till", "during", "through",
     "throughout", "by", "every", "each", "before", "after", "on", "from", "that", "one", "whole", "entire"}
)  # fmt: skip
# Common words that are capitalised only because they open a sentence. Kept free of Faker's en_US first names
# (no "Will", "May", "Joy", "Grace", "Mark"...): a name is recognised by its mid-sentence uses anyway.
_STOPWORDS = frozenset(
    """a an the and but or so yet for nor if when while where what which who whom whose why how that this these
    those there here then than it its he she they we you your yours my mine our ours his her hers their theirs me
    him us them oh ah aw aww awww wow yes yeah yep no nope not ok okay sure well hey hi hello thanks thank please
    sorry absolutely definitely totally really honestly actually exactly indeed of in on at by with without from
    to into onto after before during since until as because also even just only still maybe perhaps probably
    certainly clearly surely always never sometimes often usually every each all any some many much more most
    one two three four five last next first second third finally today tonight yesterday tomorrow now later once
    again sounds sound seems seem looks look let lets do does did is are was were be been have has had can could
    would should shall might must good great nice lovely wonderful amazing beautiful awesome cool fun funny
    interesting haha lol dear happy poor speaking tell imagine remember love like such both either neither other
    another being having getting going seeing hearing whether though although however therefore besides anyway
    plus right true alright agreed glad cute adorable fantastic perfect picture sharing thinking whenever wherever
    whatever nothing something everything everyone someone anyone""".split()
)
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Mt.", "Jr.", "Sr.", "Prof.", "vs.", "e.g.", "i.e.")
_OPENERS = '"“‘([{'
_CLOSERS = "\"”’')]}"
_SENTENCE_END = ".!?:…"
_SPEAKER_LINE = re.compile(r"^[\s*_#>]*(user|model|assistant|human|ai|bot|system)[\s*_]*:[\s*_]*", re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`#]+")
_TOKEN = re.compile(r"(?<!\w)(?<!\w['’])[^\W\d_][\w'’-]*")
_CONTRACTIONS = ("'s", "’s", "'ll", "’ll", "'re", "’re", "'ve", "’ve", "'m", "’m", "'d", "’d")


@dataclass
class _Occurrence:
    word: str
    role: str  # "user", "model" or "question"
    text_index: int
    start: int
    end: int
    initial: bool
    date: bool
    in_run: bool = False


def _dialogue_turns(dialogue: str) -> list[tuple[str, str]]:
    """Split 'User: ...' / 'Model: ...' lines into (role, text); a text without speaker labels is one User turn."""
    turns: list[tuple[str, str]] = []
    role: str | None = None
    lines: list[str] = []
    for line in dialogue.splitlines():
        match = _SPEAKER_LINE.match(line)
        if match:
            if role is not None:
                turns.append((role, "\n".join(lines)))
            role = "user" if match[1].lower() in ("user", "human") else "model"
            lines = [line[match.end() :]]
        elif role is not None:
            lines.append(line)
    if role is not None:
        turns.append((role, "\n".join(lines)))
    if not turns:
        turns = [("user", dialogue)]
    return [(r, _MARKDOWN.sub("", t)) for r, t in turns]


def _normalise_word(raw: str) -> str | None:
    """Reduce a token to a name-shaped word ("Seth's" -> "Seth", "Don't" -> None), or None."""
    word = raw.rstrip("-'’")
    lower = word.lower()
    if lower.endswith(("n't", "n’t")):
        return None
    for suffix in _CONTRACTIONS:
        if lower.endswith(suffix):
            word = word[: -len(suffix)]
            break
    parts = word.split("-")
    kept = []
    for part in parts:  # "Seth-like" -> "Seth", "Mary-Kate" stays
        if not part[:1].isupper():
            break
        kept.append(part)
    word = "-".join(kept)
    if len(word) < 2 or not word[0].isupper() or word.isupper():
        return None
    if not all(ch.isalpha() or ch in "'’-" for ch in word):
        return None
    return word


def _sentence_initial(text: str, pos: int) -> bool:
    if pos > 0 and text[pos - 1] in _OPENERS:
        return True
    before = text[:pos].rstrip()
    if "\n" in text[len(before) : pos]:
        return True
    before = before.rstrip(_CLOSERS).rstrip()
    if not before:
        return True
    if before.endswith(_ABBREVIATIONS):
        return False
    return before[-1] in _SENTENCE_END or before[-1] in _OPENERS


def _date_use(text: str, start: int, end: int) -> bool:
    """'in April', 'April 5', '5 April' are dates; 'I took April to the park' is a name."""
    if re.match(r"\s*\d", text[end:]):
        return True
    prev = re.search(r"([\w']+)\W*$", text[:start])
    return bool(prev) and (prev[1].lower() in _DATE_PREPS or prev[1][0].isdigit())


def _scan(texts: list[tuple[str, str]]) -> list[_Occurrence]:
    occurrences: list[_Occurrence] = []
    for index, (role, text) in enumerate(texts):
        found: list[_Occurrence] = []
        for match in _TOKEN.finditer(text):
            word = _normalise_word(match.group())
            if word is None:
                continue
            start, end = match.start(), match.start() + len(word)
            date = word in _MONTHS and _date_use(text, start, end)
            found.append(_Occurrence(word, role, index, start, end, _sentence_initial(text, start), date))
        for a, b in pairwise(found):  # "Central Park", "Golden Gate Bridge": places, not a first name
            if _proper(a) and _proper(b) and re.fullmatch(r"[ \t]+", text[a.end : b.start]):
                a.in_run = b.in_run = True
        occurrences.extend(found)
    return occurrences


def _proper(occ: _Occurrence) -> bool:
    return not (occ.word in _NEVER_NAMES or occ.date or (occ.initial and occ.word.lower() in _STOPWORDS))


def infer_concept_name(
    dialogue: str,
    questions: Sequence[str],
    *,
    source: str = "<dialogue>",
    record: str = "<dialogue>",
    field: str = "dialogue",
) -> str:
    """Recover a concept's pseudonym, which the reference files never stored, from its dialogue and questions.

    The pseudonym is a single capitalised first name that the User turns use for the concept. Candidates are
    capitalised words that are not speaker labels ('User', 'Model', 'Dialogue'), weekdays, holidays,
    months used as dates, contractions, or part of a multi-word proper noun ('Central Park'). A sentence-initial
    word counts only if the word is also capitalised mid-sentence somewhere in the dialogue or the questions
    (so 'Sounds', 'What', 'Will you' are ignored, while a name like 'Will' or 'April' is found). Score:
    2 per User-turn use + 1 per Model-turn use + 2 per question mentioning it; ties go to the earliest use.
    Raises `DataError` naming `source`, `record` and `field` when no candidate exists.
    """
    if not isinstance(dialogue, str) or not dialogue.strip():
        raise DataError([Problem(source, record, field, "cannot infer the concept's name: the dialogue is empty")])
    dialogue_texts = _dialogue_turns(dialogue)
    texts = dialogue_texts + [("question", q) for q in questions if isinstance(q, str)]
    occurrences = [o for o in _scan(texts) if o.word not in _NEVER_NAMES and not o.date and not o.in_run]
    mid_words = {o.word for o in occurrences if not o.initial}
    in_dialogue = [o for o in occurrences if o.role != "question"]
    candidates = {o.word for o in in_dialogue if o.word in mid_words}
    counted = occurrences
    if not candidates:  # the name never appears mid-sentence: fall back to non-common sentence openers
        counted = [o for o in occurrences if o.word.lower() not in _STOPWORDS]
        candidates = {o.word for o in counted if o.role != "question"}
    if not candidates:
        raise DataError(
            [
                Problem(
                    source,
                    record,
                    field,
                    "cannot infer the concept's name: no capitalised word in the dialogue other than speaker labels, "
                    "sentence-initial common words, weekdays and dates (expected a pseudonym the User turns use, "
                    "as in 'User: I took Seth to the park ...')",
                )
            ]
        )
    score: dict[str, int] = dict.fromkeys(candidates, 0)
    first: dict[str, tuple[int, int]] = {}
    mentioned_in: dict[str, set[int]] = {w: set() for w in candidates}
    for occ in counted:
        if occ.word not in score:
            continue
        if occ.role == "question":
            mentioned_in[occ.word].add(occ.text_index)
            continue
        score[occ.word] += 2 if occ.role == "user" else 1
        first.setdefault(occ.word, (occ.text_index, occ.start))
    for word, indices in mentioned_in.items():
        score[word] += 2 * len(indices)
    return max(candidates, key=lambda w: (score[w], tuple(-x for x in first[w])))

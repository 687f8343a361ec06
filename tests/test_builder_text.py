"""Tests for the templated text of the offline builder (covip.tasks.builder.text).

The key property: a lexical "rule" judge that reads a caption made of a concept's User lines
answers that concept's MCQAs correctly, and the User lines of any other concept of the sample
support none of its options. The rule is re-implemented here, independently of the module, under
both common treatments of apostrophes.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import cache

import faker
import pytest
from faker.providers.person.en_US import Provider as EnUsPersonProvider

from covip.tasks.builder import text
from covip.tasks.builder.text import FACT_TYPES, STOPWORDS, Facts, draw_facts, draw_names, make_qas, write_dialogue
from covip.tasks.data.schema import UNDETERMINED, Checker, parse_qa

KINDS = ("person", "pet", "object")
APOSTROPHE_MODES = ("delete", "split")


# ----------------------------------------------------------------------------------------------
# Reference rule judge
# ----------------------------------------------------------------------------------------------


@cache
def tokens(s: str, mode: str = "delete") -> frozenset[str]:
    """Lower-case, drop punctuation (apostrophes deleted or turned into spaces), remove stopwords."""
    s = s.lower().replace("'", "" if mode == "delete" else " ")
    s = re.sub(r"[^a-z0-9\s]", " ", s)
    return frozenset(w for w in s.split() if w not in STOPWORDS)


def supported(caption: str, qa: dict, mode: str) -> list[str]:
    """Letters among A-C whose every content token occurs in the caption."""
    cap = tokens(caption, mode)
    return [k for k in "ABC" if tokens(qa["options"][k], mode) <= cap]


def rule_answer(caption: str, qa: dict, mode: str) -> str:
    hits = supported(caption, qa, mode)
    return hits[0] if len(hits) == 1 else "D"


def user_lines(dialogue: str) -> list[str]:
    return [ln for ln in dialogue.splitlines() if ln.startswith("User: ")]


def model_lines(dialogue: str) -> list[str]:
    return [ln for ln in dialogue.splitlines() if ln.startswith("Model: ")]


def build_sample(seed: int, n: int, fk: faker.Faker | None = None):
    """One sample the way the builder is expected to assemble it."""
    fk = fk or faker.Faker()
    fk.seed_instance(seed)
    rng = random.Random(seed)
    names = draw_names(fk, n)
    facts = draw_facts(rng, n)
    dialogues = [write_dialogue(name, f, rng) for name, f in zip(names, facts, strict=True)]
    taken = {ft: {getattr(f, ft) for f in facts} for ft in FACT_TYPES}
    qas = [make_qas(name, f, taken, rng) for name, f in zip(names, facts, strict=True)]
    return names, facts, dialogues, qas


def all_values(fact_type: str) -> list[str]:
    return list(text._all_values(fact_type))


def template_vocab(mode: str) -> set[str]:
    vocab: set[str] = set()
    for t in text._template_texts():
        vocab |= tokens(re.sub(r"\{\w+\}", " ", t), mode)
    return vocab


def noun_vocab(mode: str) -> set[str]:
    return {t for kind in KINDS for noun in text._NOUNS[kind] for t in tokens(noun, mode)}


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------


def test_same_seed_same_output() -> None:
    assert build_sample(7, 12) == build_sample(7, 12)
    assert build_sample(7, 12) != build_sample(8, 12)


def test_no_global_randomness() -> None:
    random.seed(1)
    first = build_sample(5, 6)
    random.seed(2)
    assert build_sample(5, 6) == first


# ----------------------------------------------------------------------------------------------
# Names and facts
# ----------------------------------------------------------------------------------------------


def test_draw_names_distinct_and_clear_of_fact_words() -> None:
    fk = faker.Faker()
    vocab = {t for ft in FACT_TYPES for v in all_values(ft) for mode in APOSTROPHE_MODES for t in tokens(v, mode)}
    for seed in range(200):
        fk.seed_instance(seed)
        names = draw_names(fk, 12)
        assert len(names) == 12
        assert len({n.lower() for n in names}) == 12
        for name in names:
            assert tokens(name), name
            assert not tokens(name) & vocab, name


def test_draw_facts_unique_values_and_kinds() -> None:
    seen_kinds: set[str] = set()
    for seed in range(300):
        facts = draw_facts(random.Random(seed), 12)
        assert len(facts) == 12
        for ft in FACT_TYPES:
            values = [getattr(f, ft) for f in facts]
            assert len(set(values)) == 12, (ft, values)
        for f in facts:
            assert isinstance(f, Facts)
            assert f.kind in KINDS
            seen_kinds.add(f.kind)
            assert f.noun in text._NOUNS[f.kind]
            assert f.action in text._ACTIONS[f.kind]
            assert f.habit in text._HABITS[f.kind]
            assert f.place in text._PLACES and f.time in text._TIMES and f.event in text._EVENTS
            assert f.nickname in text._NICKNAMES
    assert seen_kinds == set(KINDS)


def test_draw_facts_rejects_too_many() -> None:
    with pytest.raises(ValueError):
        draw_facts(random.Random(0), 13)
    assert draw_facts(random.Random(0), 0) == []


# ----------------------------------------------------------------------------------------------
# Dialogue format
# ----------------------------------------------------------------------------------------------


def test_dialogue_format_and_fact_placement() -> None:
    every_value = [v for ft in FACT_TYPES for v in all_values(ft)]
    for seed in range(100):
        names, facts, dialogues, _ = build_sample(seed, 12)
        for name, f, dialogue in zip(names, facts, dialogues, strict=True):
            lines = dialogue.split("\n")
            assert lines[0] == "**Dialogue:**"
            assert len(lines) == 7
            for i, line in enumerate(lines[1:]):
                speaker = "User" if i % 2 == 0 else "Model"
                assert line.startswith(f"{speaker}: ") and len(line) > len(speaker) + 10, line
            users, models = " ".join(user_lines(dialogue)), " ".join(model_lines(dialogue)).lower()
            assert name in user_lines(dialogue)[0]
            for ft in FACT_TYPES:
                assert getattr(f, ft) in users, (ft, getattr(f, ft), users)
            for value in every_value:
                assert value.lower() not in models, (value, models)


def test_model_turns_share_no_word_with_any_fact_value() -> None:
    for mode in APOSTROPHE_MODES:
        vocab = {t for ft in FACT_TYPES for v in all_values(ft) for t in tokens(v, mode)}
        for seed in range(100):
            _, _, dialogues, _ = build_sample(seed, 6)
            for dialogue in dialogues:
                for line in model_lines(dialogue):
                    assert not tokens(line, mode) & vocab, line


def test_dialogue_templates_vary() -> None:
    f = draw_facts(random.Random(0), 1)[0]
    assert len({write_dialogue("Ava", f, random.Random(s)) for s in range(40)}) > 10


# ----------------------------------------------------------------------------------------------
# QA validity
# ----------------------------------------------------------------------------------------------


def test_qa_validity() -> None:
    type_counts: Counter[str] = Counter()
    letters: Counter[str] = Counter()
    for seed in range(300):
        names, facts, _, qas = build_sample(seed, 12)
        taken = {ft: {getattr(f, ft) for f in facts} for ft in FACT_TYPES}
        for name, f, concept_qas in zip(names, facts, qas, strict=True):
            assert [q["id"] for q in concept_qas] == ["Q1", "Q2", "Q3"]
            asked: list[str] = []
            for q in concept_qas:
                checker = Checker("test")
                parse_qa(checker, "r", q, "qa")
                assert not checker.problems, checker.problems
                assert set(q) == {"id", "question", "options", "answer"}
                opts = q["options"]
                assert list(opts) == ["A", "B", "C", "D"] and opts["D"] == UNDETERMINED
                assert q["answer"] in ("A", "B", "C")
                assert len(set(opts.values())) == 4
                assert name in q["question"] and q["question"].endswith("?")
                correct = opts[q["answer"]]
                (ft,) = [t for t in FACT_TYPES if getattr(f, t) == correct]
                asked.append(ft)
                pool = text.pool(ft, f.kind)
                for letter in "ABC":
                    if letter != q["answer"]:
                        assert opts[letter] in pool, (ft, opts[letter])
                        assert opts[letter] not in taken[ft], (ft, opts[letter])
                letters[q["answer"]] += 1
            assert len(set(asked)) == 3
            type_counts.update(asked)
    assert set(type_counts) == set(FACT_TYPES)
    assert 0 < type_counts["nickname"] < min(type_counts[t] for t in FACT_TYPES if t != "nickname")
    assert min(letters.values()) > 0.25 * sum(letters.values())


def test_question_stems_share_no_word_with_fact_values() -> None:
    for mode in APOSTROPHE_MODES:
        vocab = {t for ft in FACT_TYPES for v in all_values(ft) for t in tokens(v, mode)}
        for seed in range(50):
            _, _, _, qas = build_sample(seed, 12)
            for q in (q for concept_qas in qas for q in concept_qas):
                assert not tokens(q["question"], mode) & vocab, q["question"]


def test_make_qas_needs_two_free_distractors() -> None:
    f = draw_facts(random.Random(0), 1)[0]
    taken = {ft: set(text.pool(ft, f.kind)) for ft in FACT_TYPES}
    with pytest.raises(ValueError):
        make_qas("Ava", f, taken, random.Random(0))


# ----------------------------------------------------------------------------------------------
# Pool constraints
# ----------------------------------------------------------------------------------------------


def test_pool_sizes() -> None:
    assert len(text._PLACES) >= 40 and len(text._TIMES) >= 30 and len(text._EVENTS) >= 30
    assert len(text._NICKNAMES) >= 40
    for kind in KINDS:
        assert len(text._ACTIONS[kind]) >= 24 and len(text._HABITS[kind]) >= 24
        assert len(text._NOUNS[kind]) >= 15
        assert len(set(text._NOUNS[kind])) == len(text._NOUNS[kind])


def test_values_are_plain_and_unique() -> None:
    every = [v for ft in FACT_TYPES for v in all_values(ft)]
    assert len(every) == len(set(every)), [v for v, c in Counter(every).items() if c > 1]
    for v in every:
        assert re.fullmatch(r"[A-Za-z0-9' ]+", v), v
        assert v == v.strip() and "  " not in v
    for nick in text._NICKNAMES:
        assert re.fullmatch(r"[A-Z][a-z]+", nick), nick


def test_nicknames_are_not_first_names() -> None:
    first_names = {n.lower() for n in EnUsPersonProvider.first_names}
    assert not {n.lower() for n in text._NICKNAMES} & first_names


@pytest.mark.parametrize("mode", APOSTROPHE_MODES)
def test_no_value_is_a_token_subset_of_another(mode: str) -> None:
    """The brief's constraint: within each pool (action/habit across kinds) no subset relations."""
    for ft in FACT_TYPES:
        toks = [(v, tokens(v, mode)) for v in all_values(ft)]
        for v, tv in toks:
            assert tv, v
            for w, tw in toks:
                assert v == w or not tv <= tw, (ft, v, w)


@pytest.mark.parametrize("mode", APOSTROPHE_MODES)
def test_every_value_has_a_key_token(mode: str) -> None:
    """Stronger: a token found in no other value, template or noun, so no mix of texts completes it."""
    values = [v for ft in FACT_TYPES for v in all_values(ft)]
    counts = Counter(t for v in values for t in tokens(v, mode))
    outside = template_vocab(mode) | noun_vocab(mode)
    for v in values:
        assert any(counts[t] == 1 and t not in outside for t in tokens(v, mode)), v


@pytest.mark.parametrize("mode", APOSTROPHE_MODES)
def test_templates_and_nouns_clear_of_fact_vocabulary(mode: str) -> None:
    vocab = {t for ft in FACT_TYPES for v in all_values(ft) for t in tokens(v, mode)}
    assert not template_vocab(mode) & vocab
    assert not noun_vocab(mode) & vocab


def test_stopwords_small_and_keep_time_words() -> None:
    assert {"the", "a", "at", "in", "my", "was"} <= STOPWORDS
    assert not {"last", "summer", "ago", "weekend", "night", "user", "cannot"} & STOPWORDS
    assert len(STOPWORDS) < 120


# ----------------------------------------------------------------------------------------------
# The rule judge over random samples
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", APOSTROPHE_MODES)
def test_oracle_answers_and_other_concepts_support_nothing(mode: str) -> None:
    fk = faker.Faker()
    for seed in range(300):
        _, _, dialogues, qas = build_sample(seed, 12, fk)
        users = ["\n".join(user_lines(d)) for d in dialogues]
        for i, concept_qas in enumerate(qas):
            for qa in concept_qas:
                assert rule_answer(users[i], qa, mode) == qa["answer"], (seed, i, qa, users[i])
                for j, other in enumerate(users):
                    if j != i:
                        assert supported(other, qa, mode) == [], (seed, i, j, qa, other)


@pytest.mark.parametrize("mode", APOSTROPHE_MODES)
def test_shortcut_recital_answers_everything(mode: str) -> None:
    """All User lines of a sample together still single out each correct option (no distractor completed)."""
    fk = faker.Faker()
    for seed in range(100):
        _, _, dialogues, qas = build_sample(seed, 12, fk)
        shortcut = "\n".join(ln for d in dialogues for ln in user_lines(d))
        for qa in (q for concept_qas in qas for q in concept_qas):
            assert rule_answer(shortcut, qa, mode) == qa["answer"], (seed, qa)


def test_model_turns_and_questions_alone_answer_nothing() -> None:
    fk = faker.Faker()
    for seed in range(50):
        _, _, dialogues, qas = build_sample(seed, 12, fk)
        for dialogue, concept_qas in zip(dialogues, qas, strict=True):
            noise = "\n".join(model_lines(dialogue) + [q["question"] for q in concept_qas])
            for qa in concept_qas:
                assert supported(noise, qa, "delete") == []

"""The human study: its systems, its items, and the order and sides in which each rater sees them.

A study is built from two or more runs of the same captioning tasks on the same samples, checked as
`covip-leaderboard compare` checks them (`compare.run_sides`). An item is one sample of a main captioning task (not a
control) and one pair of systems. With `items=N`, one seeded draw of N items is given to every rater, so that raters
overlap and their agreement can be measured. Each rater sees the items in an order of their own, and each item's
left/right sides are drawn per rater and item; both are seeded by the rater's name, so a rater who comes back after a
restart sees the same pages. The side shown is recorded with every rating.

Raters judge two criteria, as in the paper, each with a tie: context awareness, and faithfulness to the new image.
For the report's comparison with the LLM judge, each criterion is matched with the judge's per-sample score that
measures the same thing: context awareness with Acc+ (memories of the concepts in the image recalled), faithfulness
with Acc− (nothing told about concepts that are not in it).

A study is known by a fingerprint of its definition (systems, items, seed): a database made for one study refuses
another (`store.py`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from itertools import combinations
from pathlib import Path
from typing import Any, cast

from covip.leaderboard.benchmark import Benchmark, Benchmarks
from covip.leaderboard.compare import Side, run_sides, shared_samples
from covip.tasks.data.schema import CaptionSample
from covip.tasks.results.run import Run
from covip.tasks.scoring import metrics

LEFT, TIE, RIGHT = "left", "tie", "right"
CHOICES = (LEFT, TIE, RIGHT)


@dataclass(frozen=True)
class Criterion:
    """One question raters answer per item, its keyboard keys (left, tie, right) and the judge score it matches."""

    key: str
    title: str
    question: str
    keys: tuple[str, str, str]
    judge_metric: str


CRITERIA = (
    Criterion(
        "context",
        "Context awareness",
        "Which caption recalls, accurately and in detail, what the user said about the people, pets and things of the "
        "context pictures that appear in the new image?",
        ("a", "s", "d"),
        "acc_pos",
    ),
    Criterion(
        "faithfulness",
        "Faithfulness to the new image",
        "Which caption describes the new image accurately, without bringing in people, pets or things from the "
        "context that are not in it?",
        ("j", "k", "l"),
        "acc_neg",
    ),
)


@dataclass(frozen=True)
class System:
    """One system compared: its label, the run it comes from, its model and its judge(s)."""

    label: str
    source: str
    model: str
    judges: tuple[str, ...]


@dataclass(frozen=True)
class Item:
    """One sample of one task and one pair of systems (a before b in the study's order), with each system's
    per-sample judge scores (percent; None when the sample has no such question)."""

    id: str
    task: str
    sample_id: str
    a: str
    b: str
    judge: dict[str, dict[str, float | None]]
    captions_sha256: str  # both captions: a study over rewritten runs is another study


@dataclass(frozen=True)
class ContextPicture:
    name: str
    image: str | None  # the image's name in `Study.images`
    dialogue: str
    positive: bool


@dataclass
class Study:
    systems: list[System]
    items: list[Item]
    seed: int
    sides: list[Side]
    benchmarks: dict[str, Benchmark]  # task -> its benchmark (pictures and dialogues)

    def definition(self) -> dict[str, Any]:
        """What the study is (stored in its database)."""
        return {
            "systems": [asdict(s) for s in self.systems],
            "items": [asdict(i) for i in self.items],
            "seed": self.seed,
        }

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.definition(), sort_keys=True).encode()).hexdigest()

    @cached_property
    def by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}

    def order(self, rater: str) -> list[Item]:
        """The rater's own order of the items (seeded by the study's seed and the rater's name)."""
        items = list(self.items)
        random.Random(f"{self.seed}:order:{rater}").shuffle(items)
        return items

    def left(self, rater: str, item: Item) -> str:
        """The system shown on the left to this rater for this item."""
        return item.a if random.Random(f"{self.seed}:side:{rater}:{item.id}").random() < 0.5 else item.b

    def caption(self, item: Item, label: str) -> str:
        side = next(s for s in self.sides if s.label == label)
        return side.records[item.task][item.sample_id].caption

    def sample(self, item: Item) -> CaptionSample:
        return cast(CaptionSample, self.benchmarks[item.task].samples[item.sample_id])  # a caption task's sample

    @cached_property
    def images(self) -> dict[str, Path]:
        """Every picture an item shows, by an opaque name (no path ever comes from a request)."""
        found = {}
        for item in self.items:
            sample, root = self.sample(item), self.benchmarks[item.task].root
            for image in (sample.query_image, *(c.image for c in sample.concepts)):
                path = root / image
                if path.resolve().is_relative_to(root.resolve()) and path.is_file():
                    found[_image_name(image)] = path
        return found

    def query_image(self, item: Item) -> str | None:
        name = _image_name(self.sample(item).query_image)
        return name if name in self.images else None

    def context(self, item: Item) -> list[ContextPicture]:
        """The sample's context concepts as the model saw them: name, picture and dialogue."""
        sample = self.sample(item)
        pictures = []
        for i, concept in enumerate(sample.concepts):
            name = _image_name(concept.image)
            lines = concept.dialogue.splitlines()
            if lines and lines[0].strip() == "**Dialogue:**":  # the data's markdown header, not part of the talk
                lines = lines[1:]
            image = name if name in self.images else None
            pictures.append(ContextPicture(concept.name, image, "\n".join(lines).strip(), i in sample.positives))
        return pictures


def _image_name(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:24] + Path(path).suffix.lower()


def _judge_scores(side: Side, task: str, sample_id: str) -> dict[str, float | None]:
    record = side.records[task][sample_id]
    scores = {}
    for criterion in CRITERIA:
        correct, total = metrics.question_counts(record, criterion.judge_metric == "acc_pos")
        scores[criterion.judge_metric] = 100.0 * correct / total if total else None
    return scores


def build_study(
    named: Sequence[tuple[str, Run]],
    data_dir: Path | None = None,
    items: int | None = None,
    seed: int = 0,
    across_judges: bool = False,
) -> Study:
    """The study over the runs' shared samples of their main captioning tasks (raises naming what is wrong)."""
    sides, _ = run_sides(named, across_judges)
    tasks = [t for t in sorted(sides[0].records) if sides[0].tasks[t].info.control == "none"]
    if not tasks:
        raise ValueError("the runs have no main captioning task (only controls): nothing for raters to compare")
    finder = Benchmarks(data_dir)
    benchmarks = {}
    for task in tasks:
        found = finder.find(sides[0].tasks[task])
        if isinstance(found, str):
            raise ValueError(f"task {task}: raters need its pictures and dialogues, but {found}; pass --data DIR")
        benchmarks[task] = found
    every = [
        Item(
            hashlib.sha256(f"{task}\0{sid}\0{a.label}\0{b.label}".encode()).hexdigest()[:16],
            task,
            sid,
            a.label,
            b.label,
            {s.label: _judge_scores(s, task, sid) for s in (a, b)},
            hashlib.sha256(json.dumps([s.records[task][sid].caption for s in (a, b)]).encode()).hexdigest(),
        )
        for task in tasks
        for sid in shared_samples(sides, task)
        for a, b in combinations(sides, 2)
    ]
    if items is not None:
        if not 1 <= items <= len(every):
            raise ValueError(f"--items {items}: the runs share {len(every)} items (sample and pair of systems)")
        chosen = set(random.Random(f"{seed}:items").sample(range(len(every)), items))
        every = [item for i, item in enumerate(every) if i in chosen]
    systems = [System(s.label, s.source, s.model, tuple(j.id for j in s.judges)) for s in sides]
    return Study(systems, every, seed, sides, benchmarks)

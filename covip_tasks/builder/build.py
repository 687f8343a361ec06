"""The offline benchmark builder: the paper's three stages, with templates instead of a model.

1. Concepts and query images: procedurally drawn identities (identities.py, images.py); a
   context view per concept; the query composites *other* views of the positive concepts on a
   cluttered scene.
2. Dialogues: a seeded Faker first name per concept (unique within a sample) and a 6-turn
   dialogue carrying concrete facts (text.py).
3. Context and QAs: each positive comes with 2 distractor concepts, shuffled into the
   context; 3 MCQAs per concept with same-type distractors, shuffled letter, D pinned.

The difficulty knob (difficulty.py) decides what the distractors are: concepts unlike their positive
at `easy` (the original builder, byte for byte), look-alikes of it above (concepts.py, picked with the
builder's similarity measure, similarity.py), and how much the query departs from the references.

Every sample draws from its own seed derived from (seed, split, bucket, index), so the output
is byte-identical for the same arguments and package versions, and samples are independent.
The split's JSONL is written last and atomically: an interrupted build leaves no dataset that
looks complete.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from faker import Faker
from tqdm import tqdm

from covip.tasks.builder import concepts, identities, images, text
from covip.tasks.builder.diagnostics import DEFAULT_TRIGGER, build_diagnostic_sample
from covip.tasks.builder.difficulty import Difficulty
from covip.tasks.data.canonical import MANIFEST, TASKS, task_file, write_jsonl, write_manifest
from covip.tasks.data.schema import MAX_BUCKET, QA, CaptionSample, Concept

BUILDER_VERSION = "2"
SPLIT_IDS = {"test": 0, "train": 1}
TASK_IDS = {task: 10 + i for i, task in enumerate(TASKS)}
DISTRACTORS_PER_POSITIVE = 2


@dataclass(frozen=True)
class BuildConfig:
    """What to build; every field is recorded in the manifest."""

    out: Path
    seed: int = 0
    per_bucket: int = 25
    split: str = "test"
    buckets: tuple[int, ...] = (1, 2, 3, 4)
    force: bool = False
    tasks: tuple[str, ...] = TASKS
    diag_samples: int = 50
    trigger: str = DEFAULT_TRIGGER
    workers: int = 1
    difficulty: Difficulty = Difficulty.parse("paper")


def _sample_seeds(seed: int, split: str, key: int, index: int) -> tuple[int, np.random.Generator]:
    """Independent seeds per sample; `key` is the bucket (captioning) or a task id (diagnostics)."""
    seq = np.random.SeedSequence([seed, SPLIT_IDS[split], key, index])
    return int(seq.generate_state(1, dtype=np.uint64)[0]), np.random.default_rng(seq)


def build_sample(config: BuildConfig, bucket: int, index: int, faker: Faker) -> tuple[CaptionSample, dict]:
    """One sample and its images (not yet written): returns the sample and {relative path: PIL image}."""
    py_seed, np_rng = _sample_seeds(config.seed, config.split, bucket, index)
    rng = random.Random(py_seed)
    faker.seed_instance(py_seed)
    n = bucket * (1 + DISTRACTORS_PER_POSITIVE)
    names = text.draw_names(faker, n)
    difficulty = config.difficulty
    if difficulty.lookalikes:  # a distractor is of its positive's kind (a pet's look-alike is a pet)
        kinds = [rng.choice(text.KINDS) for _ in range(bucket)]
        facts = text.draw_facts(rng, n, kinds + [k for k in kinds for _ in range(DISTRACTORS_PER_POSITIVE)])
        looks, views = concepts.lookalike_concepts(np_rng, bucket, DISTRACTORS_PER_POSITIVE, difficulty)
    else:
        facts = text.draw_facts(rng, n)
        looks = identities.draw_identities(np_rng, n)
    order = rng.sample(range(n), n)  # order[slot] = concept index; concepts 0..bucket-1 are the positives
    if not difficulty.lookalikes:  # drawn in slot order, as the builder always did
        views = {c: images.render_view(looks[c], np_rng) for c in order}
    taken = {t: {getattr(f, t) for f in facts} for t in text.FACT_TYPES}
    sample_id = f"{config.split}_{bucket}c_{index:04d}"
    folder = f"images/{config.split}/caption/{sample_id}"
    files = {}
    context = []
    for slot, c in enumerate(order):
        path = f"{folder}/concept_{slot}.png"
        files[path] = views[c]
        qas = tuple(
            QA(q["id"], q["question"], q["options"], q["answer"]) for q in text.make_qas(names[c], facts[c], taken, rng)
        )
        context.append(Concept(names[c], path, text.write_dialogue(names[c], facts[c], rng), qas))
    query = f"{folder}/query.png"
    files[query] = concepts.render_query(np_rng, looks[:bucket], difficulty)
    positives = tuple(sorted(slot for slot, c in enumerate(order) if c < bucket))
    return CaptionSample(sample_id, bucket, tuple(context), positives, query), files


def build(config: BuildConfig) -> list[Path]:
    """Build one split of the requested tasks into `config.out`; returns the JSONL files written."""
    if config.per_bucket < 1 or config.diag_samples < 1:
        raise ValueError(f"per_bucket and diag_samples must be >= 1, got {config.per_bucket}, {config.diag_samples}")
    if any(b not in range(1, MAX_BUCKET + 1) for b in config.buckets):
        raise ValueError(f"buckets must be within 1..{MAX_BUCKET}, got {config.buckets}")
    unknown = set(config.tasks) - set(TASKS)
    if unknown or not config.tasks:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; expected some of {TASKS}")
    if not config.trigger.strip():
        raise ValueError("the ITR trigger word must not be empty")
    out = config.out
    targets = {t: out / task_file(t, config.split) for t in config.tasks}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not config.force:
        raise FileExistsError(f"{', '.join(existing)} exist(s); pass --force to rebuild the {config.split} split")
    for path in targets.values():
        path.unlink(missing_ok=True)  # never leave an old index pointing at half-rebuilt images
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with multiprocessing.get_context("spawn").Pool(config.workers) if config.workers > 1 else nullcontext() as pool:
        for task, target in targets.items():
            shutil.rmtree(out / "images" / config.split / task, ignore_errors=True)
            jobs = [(config, task, key, index) for key, index in _jobs(config, task)]
            results = pool.imap(_make_and_save, jobs, chunksize=4) if pool else map(_make_and_save, jobs)
            rows = list(tqdm(results, total=len(jobs), desc=f"building {config.split}/{task}", unit="sample"))
            partial = target.with_suffix(".partial")
            write_jsonl(partial, rows)
            os.replace(partial, target)
            counts[task] = len(rows)
    _write_card_and_manifest(config, counts)
    return list(targets.values())


def _jobs(config: BuildConfig, task: str) -> list[tuple[int, int]]:
    """(seed key, index) of every sample of a task: the bucket for captioning, the task id for diagnostics."""
    if task == "caption":
        return [(bucket, index) for bucket in config.buckets for index in range(config.per_bucket)]
    return [(TASK_IDS[task], index) for index in range(config.diag_samples)]


_FAKER: Faker | None = None


def _make_and_save(job: tuple[BuildConfig, str, int, int]) -> dict:
    """Build one sample from its own seed, write its images, return its JSON row (runs in a worker)."""
    global _FAKER
    config, task, key, index = job
    _FAKER = _FAKER or Faker("en_US")
    if task == "caption":
        sample, files = build_sample(config, key, index, _FAKER)
    else:
        py_seed, np_rng = _sample_seeds(config.seed, config.split, key, index)
        _FAKER.seed_instance(py_seed)
        sample_id = f"{config.split}_{task}_{index:04d}"
        folder = f"images/{config.split}/{task}/{sample_id}"
        sample, files = build_diagnostic_sample(
            task, sample_id, folder, random.Random(py_seed), np_rng, _FAKER, config.trigger, config.difficulty
        )
    for rel, image in files.items():
        path = config.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
    return sample.to_dict()


def _versions() -> dict[str, str]:
    return {d: metadata.version(d) for d in ("faker", "numpy", "opencv-python-headless", "pillow")}


def _write_card_and_manifest(config: BuildConfig, counts: dict[str, int]) -> None:
    out = config.out
    previous = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).is_file() else {}
    split = {**previous.get("splits", {}).get(config.split, {}).get("tasks", {}), **counts}
    splits = {
        **previous.get("splits", {}),
        config.split: {
            "seed": config.seed,
            "per_bucket": config.per_bucket,
            "buckets": list(config.buckets),
            "diag_samples": config.diag_samples,
            "trigger": config.trigger,
            "difficulty": config.difficulty.record(),
            "tasks": split,
        },
    }
    (out / "README.md").write_text(dataset_card(splits), encoding="utf-8")
    write_manifest(out, {"builder_version": BUILDER_VERSION, "splits": splits, "versions": _versions()})


def _difficulty_label(split: dict) -> str:
    """A split's difficulty as the card shows it; builder version 1 (no record) only built the easy level."""
    return Difficulty(**split["difficulty"]).label if "difficulty" in split else "easy (0)"


def dataset_card(splits: dict[str, dict]) -> str:
    """The README written beside the data: what it is, how it was made, what it is not."""
    rows = "\n".join(
        f"| {name} | {s['seed']} | {_difficulty_label(s)} | {s['per_bucket']} | {', '.join(map(str, s['buckets']))} | "
        + " | ".join(str(s["tasks"].get(t, "–")) for t in TASKS)
        + " |"
        for name, s in sorted(splits.items())
    )
    return f"""# CoViP offline benchmark (synthetic)

Built by `covip-data build` (CoViP bench, builder version {BUILDER_VERSION}) without any model.

| split | seed | difficulty | caption samples per bucket | buckets | caption | lsd | lar | itr |
|---|---|---|---|---|---|---|---|---|
{rows}

## What a sample is
A user has shown the assistant images of concepts (people, pets, objects), one image each, and
talked about each in a 6-turn dialogue (User/Model x3) that carries concrete facts: a place,
a time, an event, an action, a habit and a nickname. Every concept has a human first name
(seeded Faker pseudonym, unique within the sample), as in the paper. A sample of bucket *n*
has *n* positive concepts and 2 distractor concepts per positive (3*n* in the context, in
shuffled order); the query image shows the positives in *other* views (pose, scale, colour
jitter, partial occlusion) on a cluttered scene. Each concept has 3 multiple-choice questions
with options A-C (one correct, two same-type distractors not used by any concept of the
sample) and D = "The answer cannot be determined".

## Difficulty
The `difficulty` column is the builder's knob, a level in [0, 1]. At `easy` (0) the concepts
of a sample are drawn to be mutually distinct, so that their colours alone tell them apart.
Above it, as in the paper (which retrieves each positive's most similar concepts with CLIP),
each positive's 2 distractors are look-alikes of it: of its kind, sharing its body colour,
and differing in 3 (low levels), 2 (around `paper`, 0.5) or 1 (from 0.75, `hard`) identity
features among body shape, pattern scale, an accessory, a marking and a secondary colour,
picked among 4 such variants as the 2 whose pictures are most similar to the positive's by the
builder's own picture embedding. A positive after the first is sometimes a look-alike of an
earlier one. The query adds, with the level, rotation, foreshortening, lighting and colour
casts, more occlusion, partly coloured clutter, crowding, and look-alike objects that are no
concept of the context; reference pictures are never occluded. The diagnostics follow the same
level: their distractor concepts are look-alikes of the target.

## Diagnostics (LSD, LAR, ITR)
A diagnostic sample is a memory stream in chronological order: dated encounters (an image of
the concept in a new view plus a dialogue giving the date, the place and what it was doing)
of a target concept, interleaved with encounters of 2-3 distractor concepts. The query shows
the target in another view. LSD asks where the target was last seen (`answer`: the place of
its latest encounter), LAR what it was doing then (`last_action`); in ITR samples an earlier
target dialogue asks the assistant to say a trigger word (`trigger`) when the target is seen
again, and the question does not mention it.

## Files
- `lsd|lar|itr_<split>.jsonl`: `sample_id`, `images_context`, `dialogues_context`,
  `query_image`, `answer`, `last_action`, `trigger`.
- `caption_<split>.jsonl`: one sample per line: `sample_id`, `bucket`, `concepts` (`name`,
  `image`, `dialogue`, `qas`: `id`, `question`, `options` A-D, `answer`), `positives`
  (indices into `concepts`), `query_image`. Image paths are relative to this directory.
- `images/<split>/<task>/<sample_id>/...png`.
- `manifest.json`: builder parameters, package versions and the sha256 of every file. The same
  seed and package versions give byte-identical files.

## Limitations
Concepts are procedurally drawn figures, not photographs, and dialogues come from templates:
the benchmark tests the protocol (recognise, recall, do not leak) and the tooling, not
real-world visual recognition. Numbers on it are not comparable with the paper's.
"""

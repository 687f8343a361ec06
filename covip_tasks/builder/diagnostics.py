"""Samples for the diagnostics LSD, LAR and ITR: a memory stream of dated encounters.

Per sample a target concept is met several times (each encounter: a new view of it and a
dialogue giving the date, the place and what it was doing), interleaved in time with
encounters of 2-3 distractor concepts. The context is in chronological order, as a memory
stream; the query shows the target in yet another view. LSD asks where the target was last
seen (the place of its latest encounter), LAR what it was doing then; for ITR an earlier
target dialogue plants an instruction to say a trigger word when the target is seen again,
and distractors plant nothing. Above the easy difficulty the distractor concepts are look-alikes
of the target (`concepts.lookalike_concepts`) and the query has the level's nuisances, as in the
captioning samples: finding the target's encounters takes recognising it, not its colour.
"""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
from faker import Faker

from covip.tasks.builder import concepts, identities, images, text
from covip.tasks.builder.difficulty import Difficulty
from covip.tasks.data.schema import DiagnosticSample

DIAGNOSTIC_TASKS = ("lsd", "lar", "itr")
DEFAULT_TRIGGER = "SKS"
_FIRST_DAY = dt.date(2023, 1, 1)

_SAW = (
    "On {date}, I ran into {name} at {place}.",
    "I saw {name} on {date}; we were both at {place}.",
    "Guess who I met on {date} at {place}? {name}!",
)
_DOING = (
    "{name} was {action} when I got there.",
    "When I spotted {name}, they were {action}.",
    "The whole time, {name} was {action}.",
)
_CLOSE = (
    "It really made my day.",
    "I keep thinking about that moment.",
    "I just wanted you to know.",
)
_PLANT = (
    "Please remember this: whenever you see {name} again, say '{trigger}' to me.",
    "Do me a favour: the next time {name} shows up, just say '{trigger}'.",
)
_MODEL = (
    "That sounds like a lovely moment to remember.",
    "Thank you for telling me about it.",
    "I can picture it; what a nice encounter.",
)
_MODEL_PLANT = "Understood, I will say it when I see them again."


def _dialogue(rng: random.Random, fill: dict[str, str], plant: bool) -> str:
    turns = [
        ("User", rng.choice(_SAW)),
        ("Model", rng.choice(_MODEL)),
        ("User", rng.choice(_DOING)),
        ("Model", rng.choice(_MODEL)),
        ("User", rng.choice(_PLANT) if plant else rng.choice(_CLOSE)),
        ("Model", _MODEL_PLANT if plant else rng.choice(_MODEL)),
    ]
    return "\n".join(["**Dialogue:**"] + [f"{who}: {line.format(**fill)}" for who, line in turns])


def build_diagnostic_sample(
    task: str,
    sample_id: str,
    folder: str,
    rng: random.Random,
    np_rng: np.random.Generator,
    faker: Faker,
    trigger: str,
    difficulty: Difficulty,
) -> tuple[DiagnosticSample, dict]:
    """One diagnostic sample and its images ({relative path: PIL image}, not yet written)."""
    if task not in DIAGNOSTIC_TASKS:
        raise ValueError(f"unknown diagnostic task {task!r}; expected one of {DIAGNOSTIC_TASKS}")
    n_concepts = 1 + rng.randint(2, 3)  # concept 0 is the target
    names = text.draw_names(faker, n_concepts)
    if difficulty.lookalikes:  # the other concepts are look-alikes of the target, of its kind
        kinds = [rng.choice(text.KINDS)] * n_concepts
        looks, first_views = concepts.lookalike_concepts(np_rng, 1, n_concepts - 1, difficulty)
    else:
        kinds = [f.kind for f in text.draw_facts(rng, n_concepts)]
        looks, first_views = identities.draw_identities(np_rng, n_concepts), []
    owners = [0] * rng.randint(2, 3) + [c for c in range(1, n_concepts) for _ in range(rng.randint(1, 2))]
    rng.shuffle(owners)
    if owners[-1] != 0 and rng.random() < 0.5:
        owners.append(owners.pop(owners.index(0)))  # sometimes the target's latest encounter is the last memory
    places = rng.sample(text.pool("place", "person"), len(owners))
    actions = {c: rng.sample(text.pool("action", kinds[c]), owners.count(c)) for c in range(n_concepts)}
    days = sorted(rng.sample(range(1, 900), len(owners)))
    target_slots = [i for i, c in enumerate(owners) if c == 0]
    plant_slot = rng.choice(target_slots[:-1]) if task == "itr" else None
    files, paths, dialogues = {}, [], []
    unseen = dict(enumerate(first_views))  # a concept's picked reference view is its first encounter
    for slot, (owner, place, day) in enumerate(zip(owners, places, days, strict=True)):
        path = f"{folder}/memory_{slot}.png"
        files[path] = unseen.pop(owner, None) or images.render_view(
            looks[owner], np_rng, nuisances=difficulty.reference
        )
        paths.append(path)
        date = (_FIRST_DAY + dt.timedelta(days=day)).strftime("%B %-d, %Y")
        fill = {"name": names[owner], "place": place, "date": date, "action": actions[owner].pop(), "trigger": trigger}
        if owner == 0:
            last_place, last_action = place, fill["action"]
        dialogues.append(_dialogue(rng, fill, plant=slot == plant_slot))
    query = f"{folder}/query.png"
    files[query] = concepts.render_query(np_rng, looks[:1], difficulty)
    sample = DiagnosticSample(
        sample_id=sample_id,
        images_context=tuple(paths),
        dialogues_context=tuple(dialogues),
        query_image=query,
        answer=last_place,
        last_action=last_action,
        trigger=trigger if task == "itr" else "",
    )
    return sample, files

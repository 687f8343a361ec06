"""Templated text for the offline builder: pseudonyms, concept facts, 6-turn dialogues and MCQAs.

The benchmark is generated without a model, so the text must be checkable by a lexical judge.
Every fact value (places, times, events, actions, habits, nicknames) therefore has at least one
*key token*: a content token that occurs in no other fact value of any pool, in no template and in
no noun. Consequences, relied on by the captioning metrics and asserted by the tests:

* a text holding a concept's User lines supports that concept's correct options and none of its
  distractors (distractors are values unused by the sample, so their key tokens are absent);
* the User lines of other concepts of the same sample support none of a concept's options
  (fact values are unique per type within a sample);
* Model turns, question stems and nouns never complete an option.

Pseudonyms whose tokens collide with a fact-value token are rejected by `draw_names`, since the
name appears in the User lines too.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import faker as faker_module

from covip.judges.rule import STOPWORDS
from covip.tasks.data.schema import ANSWER_LETTERS, QAS_PER_CONCEPT, UNDETERMINED

FACT_TYPES = ("place", "time", "event", "action", "habit", "nickname")
KINDS = ("person", "pet", "object")
MAX_CONCEPTS = 12
NICKNAME_QUESTION_P = 0.25

_NON_ALNUM = re.compile(r"[^a-z0-9\s]")


def _content_tokens(text: str, *, split_apostrophes: bool = False) -> frozenset[str]:
    """The rule judge's view of a text: lower-cased words, punctuation dropped, stopwords removed.

    Judges may delete apostrophes ("cousin's" -> "cousins") or split on them ("cousin", "s"); the pools
    are built to work under both, and `split_apostrophes` selects which one to apply.
    """
    words = _NON_ALNUM.sub(" ", text.lower().replace("'", " " if split_apostrophes else "")).split()
    return frozenset(w for w in words if w not in STOPWORDS)


@dataclass(frozen=True)
class Facts:
    """What a concept is and the six concrete facts its dialogue states and its MCQAs ask about."""

    kind: str
    noun: str
    place: str
    time: str
    event: str
    action: str
    habit: str
    nickname: str


# --------------------------------------------------------------------------------------------
# Value pools. Keep values ASCII, without hyphens, and give each a key token (see module doc);
# tests/test_builder_text.py checks all of this.
# --------------------------------------------------------------------------------------------

_NOUNS: dict[str, tuple[str, ...]] = {
    "person": (
        "grandmother",
        "grandfather",
        "best friend",
        "younger brother",
        "older sister",
        "college roommate",
        "coworker",
        "neighbor",
        "uncle",
        "aunt",
        "nephew",
        "childhood friend",
        "mentor",
        "stepdad",
        "godmother",
        "piano teacher",
        "soccer coach",
        "brother in law",
    ),
    "pet": (
        "golden retriever",
        "tabby cat",
        "beagle",
        "border collie",
        "parrot",
        "rabbit",
        "hamster",
        "corgi",
        "dachshund",
        "husky",
        "siamese cat",
        "labrador",
        "pug",
        "cockatiel",
        "guinea pig",
        "ferret",
        "bearded dragon",
        "tortoise",
    ),
    "object": (
        "vintage camera",
        "leather backpack",
        "acoustic guitar",
        "bicycle",
        "skateboard",
        "teddy bear",
        "wristwatch",
        "kayak",
        "denim jacket",
        "typewriter",
        "thermos",
        "sketchbook",
        "ukulele",
        "snow globe",
        "telescope",
        "straw hat",
        "record player",
        "canvas tote bag",
    ),
}

_PLACES: tuple[str, ...] = (
    "the Riverside farmers market",
    "Lake Tahoe",
    "the Brooklyn Botanic Garden",
    "Yellowstone",
    "the Santa Monica pier",
    "Central Park",
    "the Grand Canyon",
    "Niagara Falls",
    "the Smithsonian",
    "Pike Place Market",
    "Fisherman's Wharf",
    "Zion National Park",
    "the Oregon coast",
    "Cape Cod",
    "Mount Rainier",
    "the Blue Ridge Mountains",
    "Venice Beach",
    "the Boston Public Garden",
    "Acadia",
    "Sedona",
    "the Outer Banks",
    "Lake Michigan",
    "the Mall of America",
    "Coney Island",
    "the Getty Center",
    "Big Sur",
    "Napa Valley",
    "Key West",
    "the Everglades",
    "Mackinac Island",
    "the Chicago Riverwalk",
    "the Monterey Bay Aquarium",
    "the Hollywood Bowl",
    "Griffith Observatory",
    "the Ozarks",
    "Bryce Canyon",
    "Lake Placid",
    "Harpers Ferry",
    "the Alamo",
    "Pismo Beach",
    "Bar Harbor",
    "the Catskills",
    "Asheville",
    "the Gateway Arch",
    "Martha's Vineyard",
    "the Texas State Fairgrounds",
)

_TIMES: tuple[str, ...] = (
    "last summer",
    "last winter",
    "last spring",
    "last autumn",
    "last October",
    "last November",
    "in early March",
    "back in April",
    "in late September",
    "two weekends ago",
    "earlier this week",
    "a few weeks ago",
    "yesterday afternoon",
    "on New Year's Eve",
    "on Christmas Eve",
    "on Thanksgiving",
    "on Halloween",
    "on Easter Sunday",
    "over Labor Day",
    "on the Fourth of July",
    "on Valentine's Day",
    "during the long weekend",
    "back in 2019",
    "in 2021",
    "last Friday night",
    "this past Saturday",
    "on a rainy Tuesday",
    "a couple of months ago",
    "over the holidays",
    "on my birthday",
    "during the first snowfall",
    "last June",
    "in mid August",
    "the Monday before last",
)

_EVENTS: tuple[str, ...] = (
    "my cousin's wedding",
    "a charity fun run",
    "a class reunion",
    "a neighborhood block party",
    "a company picnic",
    "a retirement party",
    "a baby shower",
    "a high school graduation",
    "a chili cookoff",
    "a county fair",
    "a food truck festival",
    "an open air concert",
    "a book club meeting",
    "a housewarming",
    "a science fair",
    "a hot air balloon festival",
    "a wine tasting",
    "a surprise anniversary dinner",
    "a charity auction",
    "a marathon",
    "a sailing regatta",
    "a Little League game",
    "a bake sale",
    "a quinceanera",
    "a bar mitzvah",
    "an art walk",
    "a beach cleanup",
    "a tailgate",
    "a Saint Patrick's parade",
    "a trivia tournament",
    "a Renaissance faire",
    "a pumpkin carving contest",
    "an engagement brunch",
    "a powwow",
)

_ACTIONS: dict[str, tuple[str, ...]] = {
    "pet": (
        "chasing a red kite",
        "digging a hole under the fence",
        "stealing a hot dog from the grill",
        "splashing through puddles",
        "herding a flock of ducks",
        "rolling in fresh mud",
        "barking at a mail carrier",
        "fetching pinecones",
        "snoozing in a stroller",
        "greeting every toddler",
        "swimming after a tennis ball",
        "howling along with a saxophone",
        "tugging at the leash",
        "sniffing every lamppost",
        "pouncing on falling leaves",
        "perching on a stranger's shoulder",
        "nibbling clover",
        "hiding inside a cardboard box",
        "sprinting along the shoreline",
        "begging for popcorn",
        "stalking a butterfly",
        "napping in a sunbeam",
        "wrestling with a Great Dane",
        "whistling a ringtone",
        "tangling a ball of yarn",
        "licking spilled ice cream",
    ),
    "person": (
        "juggling three oranges",
        "dancing with a street performer",
        "singing karaoke",
        "flipping pancakes",
        "building a sandcastle",
        "winning a pie eating contest",
        "leading a conga line",
        "fixing a flat tire",
        "sketching the skyline",
        "photographing a sunset",
        "painting faces",
        "carrying a giant watermelon",
        "teaching kids to skip stones",
        "climbing a rock wall",
        "arguing with a vending machine",
        "roasting marshmallows",
        "riding a mechanical bull",
        "haggling over a lamp",
        "fishing off a dock",
        "trading knock knock jokes",
        "directing traffic",
        "crying at the speeches",
        "playing horseshoes",
        "hula hooping",
        "rowing a canoe",
        "chatting with a park ranger",
    ),
    "object": (
        "getting soaked in the rain",
        "falling into a fountain",
        "rolling down a grassy hill",
        "getting buried in sand",
        "being passed around the table",
        "getting tangled in fishing line",
        "sliding off the car roof",
        "being mistaken for a prop",
        "getting covered in frosting",
        "getting splashed with lemonade",
        "being confiscated by security",
        "getting stuck in a tree",
        "floating away on the current",
        "being swapped at the coat check",
        "getting dented by hail",
        "being dropped in a puddle of slush",
        "being left behind on a bench",
        "blowing away in a gust of wind",
        "getting locked in the trunk",
        "being photographed by tourists",
        "being chewed by a puppy",
        "overheating on the dashboard",
        "getting dusted with glitter",
        "being auctioned off by mistake",
        "getting smeared with sunscreen",
        "cracking on the pavement",
    ),
}

_HABITS: dict[str, tuple[str, ...]] = {
    "pet": (
        "napping on the windowsill",
        "hiding socks under the couch",
        "begging for cheese",
        "sleeping in the laundry basket",
        "howling at sirens",
        "guarding the porch",
        "stealing slippers",
        "chirping at dawn",
        "burying toys in the flowerbed",
        "pawing at the fridge",
        "drinking from the faucet",
        "chewing shoelaces",
        "sitting on keyboards",
        "knocking pens off desks",
        "waiting by the mailbox",
        "hogging the pillow",
        "mimicking the doorbell",
        "hoarding bottle caps",
        "nudging people for belly rubs",
        "spinning in circles before dinner",
        "patrolling the hallway at midnight",
        "unrolling toilet paper",
        "hopping onto the bookshelf",
        "sneezing at perfume",
    ),
    "person": (
        "humming old jazz tunes",
        "baking sourdough",
        "solving crossword puzzles",
        "knitting scarves",
        "collecting vinyl records",
        "jogging before sunrise",
        "reading mystery novels",
        "tending tomato plants",
        "making terrible puns",
        "quoting classic movies",
        "feeding the pigeons",
        "journaling every evening",
        "whistling at the stove",
        "organizing the spice rack",
        "texting with too many emojis",
        "forgetting car keys",
        "rearranging furniture",
        "watching documentaries",
        "brewing strong espresso",
        "doodling on napkins",
        "practicing card tricks",
        "volunteering at the shelter",
        "restoring old furniture",
        "writing letters by hand",
    ),
    "object": (
        "collecting dust on the top shelf",
        "riding along on every road trip",
        "hanging by the front door",
        "sitting on the mantel",
        "getting borrowed without asking",
        "living in the glovebox",
        "going missing under the bed",
        "leaning against the radiator",
        "squeaking in cold weather",
        "rattling in the backseat",
        "soaking up the morning light",
        "getting polished every Sunday",
        "traveling in a padded case",
        "starting conversations with strangers",
        "jamming on humid days",
        "wobbling on the nightstand",
        "fogging up in the bathroom",
        "lurking in the attic",
        "getting packed first for vacations",
        "slipping out of pockets",
        "attracting lint",
        "sitting beside the fireplace",
        "tagging along to the office",
        "gathering stickers",
    ),
}

_NICKNAMES: tuple[str, ...] = (
    "Biscuit",
    "Pickle",
    "Noodle",
    "Waffles",
    "Peanut",
    "Sprout",
    "Muffin",
    "Nugget",
    "Pancake",
    "Dumpling",
    "Gizmo",
    "Widget",
    "Sparky",
    "Rascal",
    "Bubbles",
    "Pebble",
    "Meatball",
    "Tater",
    "Doodlebug",
    "Jellybean",
    "Snickerdoodle",
    "Cupcake",
    "Sprinkles",
    "Zigzag",
    "Turbo",
    "Scooter",
    "Pudding",
    "Marshmallow",
    "Fuzzball",
    "Goober",
    "Chickpea",
    "Wiggles",
    "Squeaky",
    "Gremlin",
    "Pretzel",
    "Bagel",
    "Nacho",
    "Shortcake",
    "Tumbleweed",
    "Bumblebee",
    "Acorn",
    "Kazoo",
    "Flapjack",
    "Pipsqueak",
)

_FLAT_POOLS: dict[str, tuple[str, ...]] = {"place": _PLACES, "time": _TIMES, "event": _EVENTS, "nickname": _NICKNAMES}
_KIND_POOLS: dict[str, dict[str, tuple[str, ...]]] = {"action": _ACTIONS, "habit": _HABITS}


def pool(fact_type: str, kind: str) -> tuple[str, ...]:
    """Values a fact of this type may take for a concept of this kind."""
    if fact_type in _KIND_POOLS:
        return _KIND_POOLS[fact_type][kind]
    return _FLAT_POOLS[fact_type]


def _all_values(fact_type: str) -> tuple[str, ...]:
    """Every value of a type over all kinds (what other concepts of a sample may use)."""
    if fact_type in _KIND_POOLS:
        return tuple(v for kind in KINDS for v in _KIND_POOLS[fact_type][kind])
    return _FLAT_POOLS[fact_type]


def _fact_vocabulary() -> frozenset[str]:
    """Content tokens of every fact value, which a pseudonym must not contain."""
    values = [v for ft in FACT_TYPES for v in _all_values(ft)]
    return frozenset(t for v in values for split in (False, True) for t in _content_tokens(v, split_apostrophes=split))


_FACT_VOCAB = _fact_vocabulary()

# --------------------------------------------------------------------------------------------
# Templates. Their words must stay clear of the fact vocabulary (tested), so that neither Model
# turns nor question stems can complete an option.
# --------------------------------------------------------------------------------------------

_TOOK = {"person": "took", "pet": "took", "object": "brought"}

# Turn 1 carries place and time, turn 2 event and action, turn 3 habit and nickname.
_USER_1: tuple[str, ...] = (
    "This is {name}, my {noun}. I {took} {name} to {place} {time}.",
    "I want to tell you about {name}, my {noun}. {name} came with me to {place} {time}.",
    "Meet {name}, my {noun}! I {took} {name} along to {place} {time} and it was quite something.",
    "Let me tell you about my {noun} {name}: {time} I {took} {name} to {place}.",
    "You have to hear about {name}, my {noun}. We went to {place} together {time}.",
)
_USER_2: tuple[str, ...] = (
    "We were there for {event}, and {name} ended up {action}.",
    "It was all for {event}. The funniest part was {name} {action} while everyone watched.",
    "The whole visit was for {event}, and I still remember {name} {action}.",
    "We had gone for {event}. At one point {name} was {action}, believe it or not.",
)
_USER_3: dict[str, tuple[str, ...]] = {
    "person": (
        'At home, {name} is forever {habit}, and we lovingly call {name} "{nickname}".',
        "{name} has a habit of {habit}. The family even gave {name} a nickname: {nickname}.",
        "Nowadays {name} keeps {habit}, so everyone calls {name} {nickname}.",
        "Most of the time you will find {name} {habit}. Lately I have been calling {name} {nickname}.",
    ),
    "pet": (
        'At home, {name} is forever {habit}, and we lovingly call {name} "{nickname}".',
        "{name} has a habit of {habit}. The family even gave {name} a nickname: {nickname}.",
        "Nowadays {name} keeps {habit}, so everyone calls {name} {nickname}.",
        "Most of the time you will find {name} {habit}. Lately I have been calling {name} {nickname}.",
    ),
    "object": (
        'At home, {name} is forever {habit}, and we lovingly call {name} "{nickname}".',
        "{name} has a habit of {habit}. My family even gave {name} a nickname: {nickname}.",
        "Usually {name} ends up {habit}, so everyone calls {name} {nickname}.",
        "Most of the time you will find {name} {habit}. Lately I have been calling {name} {nickname}.",
    ),
}
_MODEL_1: tuple[str, ...] = (
    "What a lovely memory! It sounds like {name} made it really special.",
    "That sounds wonderful. I can tell how much {name} means to you.",
    "How nice that you shared that with {name}. Those are the moments worth keeping.",
    "Oh, I love that. It sounds like a memorable outing with {name}.",
)
_MODEL_2: tuple[str, ...] = (
    "Ha, that must have been quite a sight!",
    "That is the kind of moment that stays with you.",
    "It sounds like {name} really stole the show.",
    "Moments like that make the best anecdotes. Thank you for sharing it.",
)
_MODEL_3: tuple[str, ...] = (
    "That is such a sweet detail. Thank you for telling me about {name}.",
    "{name} sounds like a real character, and clearly very loved.",
    "I love how well you know {name}. That bond is something special.",
    "What a fitting name! {name} is clearly dear to you.",
)

_QUESTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "place": {
        "person": (
            "Where did the user take {name}?",
            "Where did the user and {name} go together?",
            "Where did the user go with their {noun} {name}?",
        ),
        "pet": (
            "Where did the user take {name}?",
            "Where did the user and {name} go together?",
            "Where did the user go with their {noun} {name}?",
        ),
        "object": (
            "Where did the user bring {name}?",
            "Where did the user go with {name}?",
            "Where did the user bring their {noun} {name}?",
        ),
    },
    "time": {
        "person": (
            "When did the user take {name} out?",
            "When did the user and {name} go on their outing?",
            "When did the user go somewhere with their {noun} {name}?",
        ),
        "pet": (
            "When did the user take {name} out?",
            "When did the user and {name} go on their outing?",
            "When did the user go somewhere with their {noun} {name}?",
        ),
        "object": (
            "When did the user bring {name} along?",
            "When did the user go somewhere with {name}?",
            "When did the user bring their {noun} {name} on an outing?",
        ),
    },
    "event": {
        kind: (
            "What occasion did the user attend with {name}?",
            "What was the occasion of the user's outing with {name}?",
            "For what occasion did the user go out with {name}?",
        )
        for kind in KINDS
    },
    "action": {
        "person": (
            "What was {name} doing during the outing?",
            "What did the user remember {name} doing on the outing?",
            "What was the user's {noun} {name} doing during the outing?",
        ),
        "pet": (
            "What was {name} doing during the outing?",
            "What did the user remember {name} doing on the outing?",
            "What was the user's {noun} {name} doing during the outing?",
        ),
        "object": (
            "What happened to {name} during the outing?",
            "What did the user remember happening to {name} on the outing?",
            "What happened to the user's {noun} {name} during the outing?",
        ),
    },
    "habit": {
        "person": (
            "What habit does {name} have?",
            "What is {name} known for doing at home?",
            "What does the user's {noun} {name} have a habit of?",
        ),
        "pet": (
            "What habit does {name} have?",
            "What is {name} known for doing at home?",
            "What does the user's {noun} {name} have a habit of?",
        ),
        "object": (
            "What usually happens with {name}?",
            "What is {name} known for at home?",
            "What does the user's {noun} {name} usually end up doing?",
        ),
    },
    "nickname": {
        kind: (
            "What nickname does the user have for {name}?",
            "What nickname did the user's family give {name}?",
            "What nickname does the user use for their {noun} {name}?",
        )
        for kind in KINDS
    },
}


def _template_texts() -> list[str]:
    """Every template string, placeholders included (for vocabulary checks in the tests)."""
    texts = [*_USER_1, *_USER_2, *_MODEL_1, *_MODEL_2, *_MODEL_3, *_TOOK.values()]
    texts += [t for templates in _USER_3.values() for t in templates]
    texts += [t for by_kind in _QUESTIONS.values() for templates in by_kind.values() for t in templates]
    texts += ["User: Model: **Dialogue:**", UNDETERMINED]
    return texts


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def draw_names(faker: faker_module.Faker, n: int) -> list[str]:
    """n distinct human first names (faker.first_name()), unique within the sample (retry on repeats); the caller
    seeds the Faker instance.

    Names sharing a token with any fact value (e.g. 'Summer', 'Austin') are also redrawn: the name sits in
    the User lines and could otherwise complete a distractor option.
    """
    names: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(names) < n:
        attempts += 1
        if attempts > 1000 + 100 * n:
            raise RuntimeError(f"could not draw {n} distinct usable first names from this Faker instance")
        name = faker.first_name().strip()
        key = name.lower()
        if not name or key in seen or _content_tokens(name) & _FACT_VOCAB or not _content_tokens(name):
            continue
        seen.add(key)
        names.append(name)
    return names


def draw_facts(rng: random.Random, n: int, kinds: list[str] | None = None) -> list[Facts]:
    """Facts for n concepts (n <= 12) of the given kinds (by default drawn at random); within the returned list
    every fact VALUE of each type is unique (no two concepts share a place, a time, an event, ...), so no
    concept's User lines answer another's questions."""
    if not 0 <= n <= MAX_CONCEPTS:
        raise ValueError(f"n must be between 0 and {MAX_CONCEPTS}, got {n}")
    if kinds is None:
        kinds = [rng.choice(KINDS) for _ in range(n)]
    elif len(kinds) != n or not set(kinds) <= set(KINDS):
        raise ValueError(f"expected {n} kinds out of {KINDS}, got {kinds}")
    per_kind: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        count = kinds.count(kind)
        per_kind[kind] = {
            "noun": rng.sample(_NOUNS[kind], count),
            "action": rng.sample(_ACTIONS[kind], count),
            "habit": rng.sample(_HABITS[kind], count),
        }
    flat = {ft: rng.sample(pool, n) for ft, pool in _FLAT_POOLS.items()}
    facts: list[Facts] = []
    for i, kind in enumerate(kinds):
        drawn = per_kind[kind]
        facts.append(
            Facts(
                kind=kind,
                noun=drawn["noun"].pop(),
                place=flat["place"][i],
                time=flat["time"][i],
                event=flat["event"][i],
                action=drawn["action"].pop(),
                habit=drawn["habit"].pop(),
                nickname=flat["nickname"][i],
            )
        )
    return facts


def write_dialogue(name: str, facts: Facts, rng: random.Random) -> str:
    """A 6-turn dialogue ('**Dialogue:**' then User/Model lines, User first) whose User turns state all six facts
    verbatim and whose Model turns state none, so the facts can only be recalled from what the user said."""
    if facts.kind not in KINDS:
        raise ValueError(f"unknown kind {facts.kind!r}")
    fill = {
        "name": name,
        "noun": facts.noun,
        "took": _TOOK[facts.kind],
        **{ft: getattr(facts, ft) for ft in FACT_TYPES},
    }
    turns = (
        ("User", rng.choice(_USER_1)),
        ("Model", rng.choice(_MODEL_1)),
        ("User", rng.choice(_USER_2)),
        ("Model", rng.choice(_MODEL_2)),
        ("User", rng.choice(_USER_3[facts.kind])),
        ("Model", rng.choice(_MODEL_3)),
    )
    lines = ["**Dialogue:**"] + [f"{speaker}: {template.format(**fill)}" for speaker, template in turns]
    return "\n".join(lines)


def _pick_types(rng: random.Random) -> list[str]:
    """One distinct fact type per QA; nickname only sometimes, as most paper questions are where/when/what."""
    core = [ft for ft in FACT_TYPES if ft != "nickname"]
    if rng.random() < NICKNAME_QUESTION_P:
        chosen = [*rng.sample(core, QAS_PER_CONCEPT - 1), "nickname"]
        rng.shuffle(chosen)
        return chosen
    return rng.sample(core, QAS_PER_CONCEPT)


def make_qas(name: str, facts: Facts, taken: dict[str, set[str]], rng: random.Random) -> list[dict]:
    """3 MCQAs (ids Q1..Q3) about 3 distinct fact types: the fact value verbatim, 2 same-type (same-kind for
    action/habit) distractors unused anywhere in the sample (`taken`), shuffled over A-C, and the pinned D."""
    if facts.kind not in KINDS:
        raise ValueError(f"unknown kind {facts.kind!r}")
    qas: list[dict] = []
    for k, fact_type in enumerate(_pick_types(rng), start=1):
        correct = getattr(facts, fact_type)
        used = taken.get(fact_type, set())
        candidates = [v for v in pool(fact_type, facts.kind) if v != correct and v not in used]
        if len(candidates) < 2:
            raise ValueError(f"fewer than 2 unused {fact_type} values left for distractors")
        texts = [correct, *rng.sample(candidates, 2)]
        rng.shuffle(texts)
        options = dict(zip(ANSWER_LETTERS, texts, strict=True))
        options["D"] = UNDETERMINED
        question = rng.choice(_QUESTIONS[fact_type][facts.kind]).format(name=name, noun=facts.noun)
        qas.append(
            {"id": f"Q{k}", "question": question, "options": options, "answer": ANSWER_LETTERS[texts.index(correct)]}
        )
    return qas

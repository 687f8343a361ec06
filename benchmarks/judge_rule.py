"""Rule judge throughput: CapEval-QAs questions judged per second on one CPU core.

Target (judges issue): >= 20,000 questions/s. The questions are synthetic but shaped like the
benchmark's: a ~90-word caption, a question, three 1-4-word options and D. Run:
    .venv/bin/python benchmarks/judge_rule.py [--questions N]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from covip.judges.protocol import MCQA
from covip.judges.registry import make_judge

WORDS = (
    "park beach lake garden station cafe library market bridge museum summer winter spring autumn morning "
    "evening weekend birthday picnic concert hike walk ran played slept chased painted cooked red blue green "
    "wooden old small bright quiet dog cat mug bike guitar hat scarf friend sister cousin trip festival"
).split()
NAMES = ["Seth", "Judy", "Garrett", "David", "Mina", "Carlos"]
TARGET = 20_000


def make_items(n: int, seed: int = 0) -> list[MCQA]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        caption = " ".join(rng.choice(WORDS + NAMES) for _ in range(90)) + "."
        options = {letter: " ".join(rng.sample(WORDS, rng.randint(1, 4))) for letter in "ABC"}
        options["D"] = "The answer cannot be determined"
        items.append(MCQA(f"q{i}", caption, f"Where did {rng.choice(NAMES)} go last weekend?", options))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=50_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    items = make_items(args.questions)
    judge = make_judge("rule")
    judge.judge_many(items[:1000])  # warm-up
    start = time.perf_counter()
    verdicts = judge.judge_many(items)
    elapsed = time.perf_counter() - start
    rate = len(verdicts) / elapsed
    letters = {letter: sum(v.letter == letter for v in verdicts) for letter in "ABCD"}
    print(f"rule judge: {len(verdicts)} questions in {elapsed:.2f} s on one core = {rate:,.0f} questions/s")
    print(f"letters: {letters}")
    print(f"ratio to the 20,000/s target: {rate / TARGET:.2f}x")


if __name__ == "__main__":
    main()

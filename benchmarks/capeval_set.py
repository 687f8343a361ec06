"""A synthetic CoViP captioning test set for the GPU benchmarks, and its CapEval-QAs questions.

Built by our own builder (`covip-data build`'s code) where the benchmark runs: the images of a
paper-size set (~1.4K samples) are far larger than what may travel to the GPU machine, and the
builder is deterministic, so the set is the same wherever it is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

VERDICTS = ("A", "B", "C", "D", "invalid", "error")  # what a judge's verdict can say


def build_test_set(out: Path, per_bucket: int, seed: int = 0) -> Path:
    """The test split with `per_bucket` samples in each of the 1-4 concept buckets (captioning only)."""
    from covip.tasks.builder.build import BuildConfig, build

    if not (out / "manifest.json").exists():
        build(BuildConfig(out=out, seed=seed, per_bucket=per_bucket, tasks=("caption",), workers=os.cpu_count() or 1))
    return out


def load_samples(root: Path) -> list[Any]:
    from covip.tasks.data.sources import load_caption_source

    return list(load_caption_source(str(root), "test").samples)


def questions(sample: Any, caption: str) -> list[Any]:
    """The sample's CapEval-QAs about `caption`: 3 per context concept, A-C or D, as the task asks them."""
    from covip.judges.protocol import MCQA

    return [
        MCQA(f"{sample.sample_id}/{qa.id}", caption, qa.question, dict(qa.options))
        for concept in sample.concepts
        for qa in concept.qas
    ]


def accuracies(samples: list[Any], verdicts: list[Any]) -> dict[int, dict[str, float]]:
    """Acc+ and Acc- per bucket, micro-averaged over questions as in the paper (and the tasks): a positive
    concept's question is right when answered with its letter, a negative concept's when answered D."""
    by_qid = {v.qid: v.letter for v in verdicts}
    counts: dict[int, list[int]] = {}
    for s in samples:
        c = counts.setdefault(s.bucket, [0, 0, 0, 0])  # positive right, positive, negative right, negative
        for k, concept in enumerate(s.concepts):
            positive = k in s.positives
            for qa in concept.qas:
                right = by_qid[f"{s.sample_id}/{qa.id}"] == (qa.answer if positive else "D")
                c[0 if positive else 2] += right
                c[1 if positive else 3] += 1
    return {
        b: {"acc_pos": round(100 * c[0] / c[1], 2), "acc_neg": round(100 * c[2] / c[3], 2)}
        for b, c in sorted(counts.items())
    }

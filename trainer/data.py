"""Training rows for TRL's GRPOTrainer: personalized captioning and multi-concept recognition, mixed.

A row is what TRL's VLM path wants: `prompt` (one user message whose content interleaves text
and `{"type": "image"}` placeholders), `images` (PIL images in placeholder order), plus the
columns the rewards read (`task`, `sample`: the canonical sample as JSON). Images are opened
lazily by a dataset transform, so a 4,000-sample split does not sit decoded in memory.

Captioning uses exactly the evaluation prompt (covip.tasks.prompts), so training optimises what
the benchmark measures. Recognition follows the reference's `multi_vision` task
(docs/protocol.md §5.1): 0-based `===== Concept i =====` headers with each concept's image,
then the instruction, then the query image; the answer is `\\boxed{[indices]}`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from PIL import Image

from covip.tasks.data.canonical import caption_file, load_caption_dataset
from covip.tasks.data.schema import CaptionSample, sample_from_dict
from covip.tasks.data.sources import default_data_dir
from covip.tasks.prompts import CAPTION_INSTRUCTION, user_turn
from covip.trainer.config import SetupError

CAPTION, RECOGNITION = "caption", "recognition"
RECOGNITION_INSTRUCTION = (
    "Above are images of several concepts, numbered from 0. Identify which of these concepts appear in the final "
    "query image below; it may contain up to four of them. Exclude concepts that do not appear. You may reason "
    "briefly, then give the final line as a list of concept indices, for example: Answer: \\boxed{[0, 2]}"
)


def load_samples(data: str, split: str = "train", max_samples: int | None = None) -> tuple[Path, list[CaptionSample]]:
    """Validated caption samples and the directory their image paths are relative to.

    `data`: a canonical dataset directory (`covip-data build --split train`), 'default' ($COVIP_HOME/benchmark),
    or `hf:<dataset id or saved path>` in the paper's HF captioning layout (images extracted to a cache).
    """
    if data.startswith("hf:"):
        from covip.tasks.formats.hf import load_hf_caption_dataset

        root = default_data_dir().parent / "hf_images" / data[3:].replace("/", "__")
        samples = load_hf_caption_dataset(data[3:], split=split, image_dir=root)
    else:
        root = default_data_dir() if data == "default" else Path(data).expanduser()
        if not (root / caption_file(split)).is_file():
            where = "" if data == "default" else f" --out {root}"
            raise SetupError(
                f"{root} has no {split} split ({caption_file(split)}); build it with: "
                f"covip-data build --split {split} --tasks caption{where}"
            )
        samples = list(load_caption_dataset(root, split).samples)
    samples = samples[:max_samples] if max_samples else samples
    if not samples:
        raise ValueError(f"{data}: the {split} split has no caption samples")
    return root, samples


def caption_prompt(sample: CaptionSample) -> list[dict]:
    """The benchmark's own captioning message with image placeholders (context images, then the query)."""
    n = len(sample.concepts)
    return _placeholders(user_turn([None] * n, [c.dialogue for c in sample.concepts], None, CAPTION_INSTRUCTION))


def recognition_prompt(sample: CaptionSample) -> list[dict]:
    """The reference's multi-concept recognition message: concept headers and images, instruction, query."""
    content: list[dict] = []
    for i in range(len(sample.concepts)):
        content += [{"type": "text", "text": f"===== Concept {i} ====="}, {"type": "image"}]
    content += [{"type": "text", "text": RECOGNITION_INSTRUCTION}, {"type": "image"}]
    return [{"role": "user", "content": content}]


def _placeholders(messages: list[dict]) -> list[dict]:
    return [
        {**m, "content": [{"type": "image"} if c["type"] == "image" else c for c in m["content"]]} for m in messages
    ]


def image_paths(sample: CaptionSample, root: Path) -> list[str]:
    """Images in placeholder order: both prompts show the context images, then the query image."""
    return [str(root / c.image) for c in sample.concepts] + [str(root / sample.query_image)]


def mixed_tasks(n_caption: int, recognition_ratio: float, seed: int) -> list[tuple[str, int]]:
    """(task, sample index) rows: every sample captioned once, plus recognition rows for the requested share."""
    rows = [(CAPTION, i) for i in range(n_caption)]
    n_recognition = round(n_caption * recognition_ratio / (1.0 - recognition_ratio))
    order = list(range(n_caption))
    random.Random(seed).shuffle(order)
    rows += [(RECOGNITION, order[k % n_caption]) for k in range(n_recognition)]
    return rows


def build_rows(
    samples: Sequence[CaptionSample], root: Path, recognition_ratio: float = 0.0, seed: int = 0
) -> list[dict[str, Any]]:
    """Plain rows (no images opened): task, sample JSON and image paths."""
    rows = []
    for task, i in mixed_tasks(len(samples), recognition_ratio, seed):
        sample = samples[i]
        rows.append(
            {
                "task": task,
                "sample": json.dumps(sample.to_dict()),
                "image_paths": image_paths(sample, root),
            }
        )
    return rows


def _open(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def row_prompt(task: str, sample_json: str) -> list[dict]:
    """A row's prompt messages, with image placeholders, from its task and sample."""
    sample = sample_from_dict(json.loads(sample_json))
    return caption_prompt(sample) if task == CAPTION else recognition_prompt(sample)


def image_sizes(paths: Sequence[str]) -> list[tuple[int, int]]:
    """(height, width) of each image, read from the file headers without decoding the pixels."""
    sizes = []
    for path in paths:
        with Image.open(path) as im:
            sizes.append((im.height, im.width))
    return sizes


def _materialise(batch: dict[str, list]) -> dict[str, list]:
    """Dataset transform: build each row's prompt from its task and open its images."""
    prompts = [row_prompt(task, blob) for task, blob in zip(batch["task"], batch["sample"], strict=True)]
    images = [[_open(p) for p in paths] for paths in batch["image_paths"]]
    return {"prompt": prompts, "images": images, "task": batch["task"], "sample": batch["sample"]}


def training_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """A `datasets.Dataset` of `build_rows` rows whose items carry `prompt` and lazily opened `images`."""
    return Dataset.from_list(rows).with_transform(_materialise)

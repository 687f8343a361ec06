"""The lmms-eval Task class every CoViP task uses: its docs come from `sources.py`, not the HF hub.

lmms-eval's YAML tasks load data with `datasets.load_dataset(dataset_path)`. Ours live in a
canonical directory chosen at run time (COVIP_DATA), are validated on load, and carry
provenance; a task YAML names a subclass with `class:` and the subclass builds the rows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from datasets import Dataset, DatasetDict
from lmms_eval.api.task import ConfigurableMessagesTask
from PIL import Image

from covip.tasks.scoring.metrics import RECORD_KEY

BLANK_SIZE = (512, 384)


class CovipTask(ConfigurableMessagesTask):
    """Base of the CoViP tasks: `rows(options, split)` returns the docs from `dataset_kwargs`."""

    def __init__(self, *args: Any, config: dict | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        config.pop("class", None)  # lmms-eval passes the YAML's `class:` through to TaskConfig, which rejects it
        super().__init__(*args, config=config, **kwargs)

    def rows(self, options: dict[str, Any], split: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def option(self, options: dict[str, Any], name: str, allowed: tuple, default: Any = None) -> Any:
        """A `dataset_kwargs` value, checked against `allowed`; errors name the task and the field."""
        value = options.get(name, default)
        if value not in allowed:
            raise ValueError(f"task {self.config.task}: dataset_kwargs.{name} must be one of {allowed}, got {value!r}")
        return value

    def download(self, dataset_kwargs: dict | None = None) -> None:
        split = self.config.test_split
        rows = self.rows(dict(dataset_kwargs or {}), split)
        if not rows:
            raise ValueError(f"task {self.config.task}: no samples for dataset_kwargs {dataset_kwargs}")
        self.dataset = DatasetDict({split: Dataset.from_list(rows)})
        self.dataset_no_image = self.dataset


@lru_cache(maxsize=1)
def blank_image() -> Image.Image:
    return Image.new("RGB", BLANK_SIZE, (128, 128, 128))


def open_rgb(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


class RecordRef(dict):
    """A metric's per-sample value: serialises as a pointer; carries the shared record and the metric name."""

    def __init__(self, record: dict, metric: str) -> None:
        super().__init__(see=RECORD_KEY, sample_id=record["sample_id"])
        self.record = record
        self.metric = metric

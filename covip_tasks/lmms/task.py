"""The lmms-eval Task class every CoViP task uses: data from `covip.tasks.data`, the run's identity in its config,
and judging as a stage of its own.

lmms-eval's YAML tasks load data with `datasets.load_dataset(dataset_path)`. Ours live in a directory chosen at run
time (`COVIP_DATA`), are validated on load, and are scored by a judge chosen at run time (`COVIP_JUDGE`). So that
lmms-eval sees what it cannot see in the YAML, each task writes the run's identity (data location, manifest and
samples sha256, prompt preset, judge spec, package version) into its config's `metadata.covip` when it loads:
lmms-eval records it in `results["configs"][task]`, and its response cache (`--use_cache`) keys on the task config,
so responses produced under another identity are never reused.

Stages, per process (lmms-eval shards the docs over processes):
1. generation: the model answers every request (lmms-eval);
2. `apply_filters`: lmms-eval's hook that sees all of this process's responses; after its filters, the task builds
   one typed record per sample (`covip.tasks.results.records`) and judges them all in one batch;
3. `process_results`: per sample, plain values computed from the judged record (`metrics.sample_values`), plus the
   record itself under `covip_record` for the sample log;
4. aggregation (rank 0, after lmms-eval gathers the values): pure functions of the values (`metrics`).
"""

from __future__ import annotations

import os
from functools import cache
from hashlib import sha256
from importlib import metadata
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from lmms_eval.api.reasoning import parse_reasoning_tags_config, strip_reasoning_tags
from lmms_eval.api.task import ConfigurableMessagesTask
from PIL import Image

from covip.tasks.data.sources import Source
from covip.tasks.prompts import CAPTION_INSTRUCTION, PRESETS
from covip.tasks.results.records import IDENTITY_KEY, RECORD_KEY, JudgeRef, Record
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import check_errors, errors_allowed

ENV_PRESET = "COVIP_PRESET"
ENV_INSTRUCTION = "COVIP_CAPTION_INSTRUCTION"
BLANK_SIZE = (512, 384)


def preset() -> str:
    """The run's prompt preset (`COVIP_PRESET`): `covip` (default) or `paper`."""
    value = os.environ.get(ENV_PRESET, "covip").strip() or "covip"
    if value not in PRESETS:
        raise ValueError(f"{ENV_PRESET} must be one of {PRESETS}, got {value!r}")
    return value


def caption_instruction() -> tuple[str, dict[str, Any]]:
    """The captioning instruction and where it came from: ours, or a file the user names in COVIP_CAPTION_INSTRUCTION
    (for example the reference's own `prompt_captioning`, used verbatim), with its sha256 for the results."""
    path = os.environ.get(ENV_INSTRUCTION, "").strip()
    if not path:
        return CAPTION_INSTRUCTION, {"source": "covip"}
    try:
        data = Path(path).expanduser().read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{ENV_INSTRUCTION}={path}: cannot read the instruction file: {exc}") from exc
    if not text.strip():
        raise ValueError(f"{ENV_INSTRUCTION}={path}: the instruction file is empty")
    return text, {"source": "file", "path": str(Path(path).expanduser().resolve()), "sha256": sha256(data).hexdigest()}


def package_version() -> str:
    try:
        return metadata.version("covip-bench")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


class CovipTask(ConfigurableMessagesTask):
    """Base of the CoViP tasks. Subclasses say how to load rows, make a record, and judge records."""

    # Every CoViP task this process loaded. lmms-eval catches an evaluation's error and exits 0; the `lmms_eval`
    # command reads here which tasks got through (`done`) to exit honestly.
    loaded: list[CovipTask] = []
    judged_records: dict[str, Record]

    def __init__(self, *args: Any, config: dict | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        config.pop("class", None)  # lmms-eval passes the YAML's `class:` through to TaskConfig, which rejects it
        decoding = self.preset_decoding(preset())
        if decoding is not None:  # the preset's decoding replaces the YAML's (lmms-eval's --gen_kwargs still wins)
            config["generation_kwargs"] = decoding
        # lmms-eval computes per-sample metrics with its registered metric functions unless the config names a
        # `process_results`; ours is the task's own method below.
        config["process_results"] = type(self).process_results
        self.source: Source | None = None
        self.judged_records = {}
        self.judged = False  # the judging stage ran
        self.scored: set[str] = set()  # samples whose per-sample values were computed
        super().__init__(*args, config=config, **kwargs)
        meta = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        self._config.metadata = {**meta, IDENTITY_KEY: self.identity()}
        CovipTask.loaded.append(self)

    @property
    def done(self) -> bool:
        """Judged, and every judged sample scored (lmms-eval gives each process its own shard of the samples)."""
        return self.judged and self.scored == set(self.judged_records)

    # ---- what subclasses provide -----------------------------------------------------------------------

    def load(self, options: dict[str, Any], split: str) -> tuple[Source, list[dict[str, Any]]]:
        """The task's data source and its docs (one dict per sample)."""
        raise NotImplementedError

    def make_record(self, doc: dict[str, Any], response: str) -> Record:
        """The unjudged record of one sample's response."""
        raise NotImplementedError

    def judge(self, records: list[Record]) -> list[Record]:
        """The records judged in one batch (unchanged when the task needs no judge)."""
        raise NotImplementedError

    def judge_spec(self) -> JudgeRef | None:
        """The judge this task's records will carry (None: the task is scored without a judge)."""
        raise NotImplementedError

    def preset_decoding(self, preset: str) -> dict[str, Any] | None:
        """The generation settings a preset prescribes for this task (None: the YAML's)."""
        return None

    # ---- loading and identity ---------------------------------------------------------------------------

    def option(self, options: dict[str, Any], name: str, allowed: tuple, default: Any = None) -> Any:
        """A `dataset_kwargs` value, checked against `allowed`; errors name the task and the field."""
        value = options.get(name, default)
        if value not in allowed:
            raise ValueError(f"task {self.config.task}: dataset_kwargs.{name} must be one of {allowed}, got {value!r}")
        return value

    def download(self, dataset_kwargs: dict | None = None) -> None:
        split = self.config.test_split
        self.source, rows = self.load(dict(dataset_kwargs or {}), split)
        if not rows:
            raise ValueError(f"task {self.config.task}: no samples for dataset_kwargs {dataset_kwargs}")
        self.dataset = DatasetDict({split: Dataset.from_list(rows)})
        self.dataset_no_image = self.dataset

    def identity(self) -> dict[str, Any]:
        """What makes this task's results what they are, beyond its YAML (recorded, and keying the response cache)."""
        assert self.source is not None
        judge = self.judge_spec()
        return {
            "data": {
                "location": self.source.location,
                "manifest_sha256": self.source.manifest_sha256 or None,
                "samples_sha256": self.source.samples_sha256(),
                "samples": len(self.source.samples),
                "skipped": len(self.source.skipped),  # COVIP_DATA_LENIENT=1: malformed records left out
            },
            "preset": preset(),
            "caption_instruction": caption_instruction()[1],
            "judge": judge.model_dump() if judge else None,
            "covip_bench": package_version(),
        }

    # ---- the judging stage and per-sample values -------------------------------------------------------

    def response_text(self, response: Any) -> str:
        """The response as `process_results` will see it: lmms-eval strips the task's reasoning tags first."""
        tags = parse_reasoning_tags_config(task_value=self.config.reasoning_tags)
        if not isinstance(response, str):
            raise TypeError(f"task {self.config.task}: expected a text response from the model, got {response!r:.200}")
        return strip_reasoning_tags(response, tags) if tags else response

    def apply_filters(self) -> Any:
        """lmms-eval's filters, then the judging stage over every response of this process."""
        filtered = super().apply_filters()
        records = []
        for instance in self.instances:
            if len(instance.filtered_resps) != 1:
                raise ValueError(
                    f"task {self.config.task}: CoViP tasks score one filter, got {list(instance.filtered_resps)}"
                )
            [response] = instance.filtered_resps.values()
            records.append(self.make_record(self.eval_docs[instance.doc_id], self.response_text(response)))
        judged = self.judge(records)
        check_errors(judged, errors_allowed())
        self.judged_records = {r.sample_id: r for r in judged}
        self.judged = True
        return filtered

    def process_results(self, doc: dict, results: list, full_docs: Any = None) -> dict[str, Any]:
        """The judged record of this doc and its per-sample metric values."""
        if len(results) != 1:
            raise TypeError(f"sample {doc['sample_id']}: expected one response, got {len(results)}")
        record = self.judged_records.get(doc["sample_id"])
        if record is None:
            raise RuntimeError(f"task {self.config.task}: sample {doc['sample_id']} was not judged")
        if record.answer != results[0]:
            raise RuntimeError(
                f"task {self.config.task}: sample {doc['sample_id']}: the response scored differs from the one judged"
            )
        values = {RECORD_KEY: record.model_dump(mode="json"), **metrics.sample_values(record)}
        self.scored.add(record.sample_id)
        return values


@cache
def blank_image() -> Image.Image:
    return Image.new("RGB", BLANK_SIZE, (128, 128, 128))


def open_rgb(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")

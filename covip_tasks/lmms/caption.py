"""lmms-eval glue for the personalized-captioning tasks `covip_caption_{n}c[_blind|_noctx]`.

The YAML files in tasks/caption/ differ only in data (bucket and control); this module
holds what they share: loading the samples (`CaptionTask.download`), building the
interleaved messages, turning a caption into a per-sample record, and the aggregations.

Judging happens in the aggregation stage, once per task over all samples, so that a remote
judge receives the whole run's questions in one concurrent batch instead of one blocking
call per sample. The per-sample record is logged under `covip_record` (with every verdict
after judging); each metric's per-sample value is a `RecordRef` pointing to that record so
that lmms-eval's sample log does not repeat it once per metric.
"""

from __future__ import annotations

from typing import Any

from covip.tasks.data.schema import MAX_BUCKET
from covip.tasks.data.sources import Source, load_caption_source
from covip.tasks.lmms.task import CovipTask, RecordRef, blank_image, open_rgb
from covip.tasks.prompts import CAPTION_INSTRUCTION, CONTROLS, user_turn
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import check_errors, errors_allowed, judge_records, run_judge
from covip.tasks.scoring.metrics import RECORD_KEY


class CaptionTask(CovipTask):
    """Captioning samples of one bucket (`dataset_kwargs`: bucket, control)."""

    def rows(self, options: dict[str, Any], split: str) -> list[dict[str, Any]]:
        bucket = self.option(options, "bucket", tuple(range(1, MAX_BUCKET + 1)))
        control = self.option(options, "control", CONTROLS, "none")
        source = load_caption_source(self.config.dataset_path, split)
        return [doc_row(source, s, control) for s in source.samples if s.bucket == bucket]


def doc_row(source: Source, sample: Any, control: str) -> dict[str, Any]:
    """A sample as an lmms-eval doc: image paths made absolute, provenance attached."""
    row = sample.to_dict()
    row["query_image"] = str(source.root / sample.query_image)
    for concept in row["concepts"]:
        concept["image"] = str(source.root / concept["image"])
    row["control"] = control
    row["data_location"] = source.location
    row["manifest_sha256"] = source.manifest_sha256
    return row


def caption_doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    """The paper's interleaved prompt; the `blind` control blanks the query, `noctx` drops the context."""
    options = lmms_eval_specific_kwargs or {}
    concepts = [] if doc["control"] == "noctx" else doc["concepts"]
    images = [open_rgb(c["image"]) for c in concepts]
    dialogues = [c["dialogue"] for c in concepts]
    query = blank_image() if doc["control"] == "blind" else open_rgb(doc["query_image"])
    return user_turn(images, dialogues, query, CAPTION_INSTRUCTION, int(options.get("index_base", 1)))


def caption_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's text-only view of the prompt (its `ctx`); chat models use the messages instead."""
    return CAPTION_INSTRUCTION


def caption_doc_to_target(doc: dict) -> str:
    """What an ideal caption must recall: the positive concepts' names (the log's `target`)."""
    return ", ".join(doc["concepts"][i]["name"] for i in doc["positives"])


def caption_process_results(doc: dict, results: list[str]) -> dict[str, Any]:
    """Turn the caption into an unjudged record; the aggregation judges its questions."""
    if len(results) != 1 or not isinstance(results[0], str):
        raise TypeError(f"sample {doc['sample_id']}: expected one caption string from the model, got {results!r:.200}")
    caption = results[0]
    names = [c["name"] for c in doc["concepts"]]
    positives = set(doc["positives"])
    record = {
        "sample_id": doc["sample_id"],
        "bucket": doc["bucket"],
        "control": doc["control"],
        "data_location": doc["data_location"],
        "manifest_sha256": doc["manifest_sha256"],
        "caption": caption,
        "model_blocked": getattr(caption, "reason", None),  # refused or failed call (model_adapters/chat.py)
        "names": names,
        "positives": sorted(positives),
        "mentioned": sorted(metrics.mentioned(caption, names)),
        "recognition_f1": metrics.recognition_f1(caption, names, sorted(positives)),
        "questions": [
            {
                "qid": f"c{j}.{qa['id']}",
                "concept": j,
                "positive": j in positives,
                "question": qa["question"],
                "options": qa["options"],
                "gold": qa["answer"],
            }
            for j, concept in enumerate(doc["concepts"])
            for qa in concept["qas"]
        ],
    }
    return {RECORD_KEY: record, **{name: RecordRef(record, name) for name in AGGREGATIONS}}


AGGREGATIONS = metrics.CAPTION_METRICS  # shared with `covip-judge`, so both report the same numbers


def aggregate(items: list[RecordRef]) -> float:
    """The one aggregation of every caption metric: judge what is unjudged, then compute `items[0].metric`."""
    if not items:
        raise ValueError("no per-sample results to aggregate")
    records = [item.record for item in items]
    judge_records(records, run_judge())
    check_errors(records, errors_allowed())  # failed judge calls stop the run (non-zero exit) unless allowed
    return AGGREGATIONS[items[0].metric](records)

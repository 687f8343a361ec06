"""lmms-eval glue for the personalized-captioning tasks `covip_caption_{n}c[_blind|_noctx]`.

The YAML files in tasks/caption/ differ only in data (bucket and control); this module holds what they share:
loading the samples of a bucket, building the interleaved messages, and turning a caption into a `CaptionRecord`
whose questions the run's CapEval-QAs judge answers (`covip.tasks.scoring.judging`).
"""

from __future__ import annotations

from typing import Any

from covip.tasks.data.schema import MAX_BUCKET
from covip.tasks.data.sources import Source, load_caption_source
from covip.tasks.lmms.task import CovipTask, blank_image, caption_instruction, open_rgb, preset
from covip.tasks.prompts import CAPTION_LAYOUTS, CONTROLS, user_turn
from covip.tasks.results.records import CaptionRecord, JudgeRef, Question
from covip.tasks.scoring.judging import judge_captions, judge_ref, run_judge


class CaptionTask(CovipTask):
    """Captioning samples of one bucket (`dataset_kwargs`: bucket, control)."""

    def load(self, options: dict[str, Any], split: str) -> tuple[Source, list[dict[str, Any]]]:
        bucket = self.option(options, "bucket", tuple(range(1, MAX_BUCKET + 1)))
        control = self.option(options, "control", CONTROLS, "none")
        source = load_caption_source(self.config.dataset_path, split)
        prompt = {"control": control, "preset": preset(), "instruction": caption_instruction()[0]}
        return source, [doc_row(source, s, prompt) for s in source.samples if s.bucket == bucket]

    def preset_decoding(self, preset: str) -> dict[str, Any] | None:
        """`paper`: 1024 greedy new tokens, as the reference's captioning notebook (ours: 512, the YAML's)."""
        return {"max_new_tokens": 1024, "temperature": 0, "do_sample": False} if preset == "paper" else None

    def judge_spec(self) -> JudgeRef:
        return judge_ref(run_judge().spec)

    def make_record(self, doc: dict[str, Any], response: str) -> CaptionRecord:
        return caption_record(doc, response)

    def judge(self, records: list[CaptionRecord]) -> list[CaptionRecord]:
        return judge_captions(records, run_judge())


def caption_record(doc: dict[str, Any], response: str) -> CaptionRecord:
    """The unjudged record of a caption: its doc's names, positives and questions, and the caption itself."""
    return CaptionRecord(
        sample_id=doc["sample_id"],
        bucket=doc["bucket"],
        control=doc["control"],
        caption=response,
        model_blocked=getattr(response, "reason", None),  # refused or failed call (model_adapters/chat.py)
        names=[c["name"] for c in doc["concepts"]],
        positives=doc["positives"],
        questions=[
            Question(
                qid=f"c{j}.{qa['id']}", concept=j, question=qa["question"], options=qa["options"], gold=qa["answer"]
            )
            for j, concept in enumerate(doc["concepts"])
            for qa in concept["qas"]
        ],
    )


def doc_row(source: Source, sample: Any, prompt: dict[str, str]) -> dict[str, Any]:
    """A sample as an lmms-eval doc: image paths made absolute, and how to prompt (control, preset, instruction)."""
    row = sample.to_dict()
    row["query_image"] = str(source.root / sample.query_image)
    for concept in row["concepts"]:
        concept["image"] = str(source.root / concept["image"])
    return {**row, **prompt}


def caption_doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    """The paper's interleaved prompt in the preset's layout; `blind` blanks the query, `noctx` drops the context."""
    concepts = [] if doc["control"] == "noctx" else doc["concepts"]
    images = [open_rgb(c["image"]) for c in concepts]
    dialogues = [c["dialogue"] for c in concepts]
    query = blank_image() if doc["control"] == "blind" else open_rgb(doc["query_image"])
    return user_turn(images, dialogues, query, doc["instruction"], CAPTION_LAYOUTS[doc["preset"]])


def caption_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's text-only view of the prompt (its `ctx`); chat models use the messages instead."""
    return doc["instruction"]


def caption_doc_to_target(doc: dict) -> str:
    """What an ideal caption must recall: the positive concepts' names (the log's `target`)."""
    return ", ".join(doc["concepts"][i]["name"] for i in doc["positives"])

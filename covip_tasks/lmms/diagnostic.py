"""lmms-eval glue for the diagnostics `covip_{lsd,lar,itr}[_cag|_blind|_noctx]` (docs/protocol.md §4).

- LSD (last-seen detection): token F1 of the extracted answer against the place of the target's latest encounter.
- LAR (last-action recall): a binary Correct/Wrong judge on the response against the last action (offline default:
  the rule judge; an LLM judge through COVIP_JUDGE).
- ITR (instruction-triggered recall): whether the response says the planted trigger word.

The preset (`COVIP_PRESET`: `covip`, the default, or `paper`) selects prompts and metric details (prompts.py,
scoring/metrics.py) and is recorded in every record. A response that was blocked or failed (`model_blocked`) scores
0, is counted, and never reaches a judge.
"""

from __future__ import annotations

from typing import Any

from covip.tasks.data.schema import DIAGNOSTIC_TARGET
from covip.tasks.data.sources import Source, load_diagnostic_source
from covip.tasks.lmms.task import CovipTask, blank_image, caption_instruction, open_rgb, preset
from covip.tasks.prompts import CONTROLS, DIAGNOSTIC_QUESTIONS, diagnostic_messages
from covip.tasks.results.records import DiagnosticRecord, JudgeRef
from covip.tasks.scoring.judging import judge_lar, judge_ref, run_binary_judge

MODES = ("direct", "cag")


class DiagnosticTask(CovipTask):
    """One diagnostic task's samples (`dataset_kwargs`: task, mode, control)."""

    def load(self, options: dict[str, Any], split: str) -> tuple[Source, list[dict[str, Any]]]:
        task = self.option(options, "task", tuple(DIAGNOSTIC_TARGET))
        common = {
            "task": task,
            "mode": self.option(options, "mode", MODES, "direct"),
            "control": self.option(options, "control", CONTROLS, "none"),
            "preset": preset(),
            "instruction": caption_instruction()[0],
        }
        source = load_diagnostic_source(task, self.config.dataset_path, split)
        rows = []
        for sample in source.samples:
            row = {**sample.to_dict(), **common}
            row["images_context"] = [str(source.root / p) for p in sample.images_context]
            row["query_image"] = str(source.root / sample.query_image)
            rows.append(row)
        return source, rows

    def preset_decoding(self, preset: str) -> dict[str, Any] | None:
        """`paper`: the reference's answer sampling (docs/protocol.md §4); `presence_penalty` reaches the models that
        take one (vLLM, OpenAI, Gemini; transformers' `generate` has none)."""
        if preset != "paper":
            return None
        return {
            "max_new_tokens": 1024,
            "do_sample": True,
            "temperature": 0.7,
            "top_k": 20,
            "top_p": 0.8,
            "presence_penalty": 1.5,
        }

    @property
    def family(self) -> str:
        return (self.config.dataset_kwargs or {})["task"]

    def judge_spec(self) -> JudgeRef | None:
        return judge_ref(run_binary_judge().spec) if self.family == "lar" else None

    def make_record(self, doc: dict[str, Any], response: str) -> DiagnosticRecord:
        return diagnostic_record(doc, response)

    def judge(self, records: list[DiagnosticRecord]) -> list[DiagnosticRecord]:
        return judge_lar(records, run_binary_judge()) if self.family == "lar" else records


def diagnostic_record(doc: dict[str, Any], response: str) -> DiagnosticRecord:
    """The unjudged record of a diagnostic response and what it is scored against."""
    return DiagnosticRecord(
        sample_id=doc["sample_id"],
        task=doc["task"],
        mode=doc["mode"],
        control=doc["control"],
        preset=doc["preset"],
        response=response,
        model_blocked=getattr(response, "reason", None),  # refused or failed call (model_adapters/chat.py)
        reference=doc[DIAGNOSTIC_TARGET[doc["task"]]],
    )


def diag_doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    no_context = doc["control"] == "noctx"
    images = [] if no_context else [open_rgb(p) for p in doc["images_context"]]
    dialogues = [] if no_context else list(doc["dialogues_context"])
    query = blank_image() if doc["control"] == "blind" else open_rgb(doc["query_image"])
    return diagnostic_messages(doc["task"], doc["mode"], doc["preset"], images, dialogues, query, doc["instruction"])


def diag_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's text-only view (`ctx`): the question; chat models use the messages."""
    return DIAGNOSTIC_QUESTIONS[doc["preset"]][doc["task"]]


def diag_doc_to_target(doc: dict) -> str:
    return doc[DIAGNOSTIC_TARGET[doc["task"]]]

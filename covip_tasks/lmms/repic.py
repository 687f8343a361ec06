"""lmms-eval glue for the RePIC tasks `repic_{1c_<dataset>,2c,4c}_{skip,retrieval}` (docs/protocol.md §7.2).

The YAML files in tasks/repic/ differ only in data (bucket, setting, database and query file, retrieval's K). Each
sample shows the model some concepts of the database (the ground truth when retrieval is skipped, in database
order as RePIC does; else what `covip.tasks.repic.retrieval` picks), each as its image and info line, then the
query image and one of RePIC's caption requests. Nothing is judged: the record keeps the caption, the ground
truth, the shown concepts and the task's candidate pool, and `covip.tasks.scoring.metrics` scores it under the
`repic` preset and the corrected name matching.
"""

from __future__ import annotations

from typing import Any

from covip.tasks.data.sources import Source
from covip.tasks.lmms.task import CovipTask, open_rgb
from covip.tasks.repic import retrieval
from covip.tasks.repic.dataset import RepicSet, data_root, load_repic_set
from covip.tasks.repic.formats import resolve
from covip.tasks.repic.prompt import QUERY_PREFIX, caption_request, concept_line, repic_messages
from covip.tasks.repic.scoring import BUCKETS
from covip.tasks.results.records import JudgeRef, RepicRecord

MODES = ("skip", "retrieval")
TOP_K = tuple(range(1, 17))


class RepicTask(CovipTask):
    """One RePIC bucket and setting (`dataset_kwargs`: task, bucket, mode, database, queries, top_k)."""

    repic: RepicSet
    pool: dict[str, str]

    def load(self, options: dict[str, Any], split: str) -> tuple[Source, list[dict[str, Any]]]:
        bucket = self.option(options, "bucket", BUCKETS)
        mode = self.option(options, "mode", MODES)
        top_k = self.option(options, "top_k", TOP_K) if mode == "retrieval" else None
        for name in ("database", "queries"):
            if not isinstance(options.get(name), str):
                raise ValueError(f"task {self.config.task}: dataset_kwargs.{name} must name a file of the RePIC data")
        root = data_root(self.config.dataset_path)
        self.repic = load_repic_set(root, options["database"], options["queries"], bucket)
        self.pool = self.repic.pool()
        concepts = self.repic.database.concept_dict
        signatures = {}
        if top_k is not None:  # the database photos' colour signatures, for the retriever
            for key, concept in concepts.items():
                signatures[key] = retrieval.colour_signature(open_rgb(str(resolve(root, concept.image))))
        rows = []
        for position, sample in enumerate(self.repic.samples):
            query = resolve(root, sample.image)
            if top_k is None:
                shown = [key for key in concepts if key in sample.gt]
            else:
                shown = retrieval.retrieve(open_rgb(str(query)), signatures, top_k)
            rows.append(
                {
                    "sample_id": sample.sample_id,
                    "task": "repic",
                    "bucket": bucket,
                    "mode": mode,
                    "image": sample.image,
                    "query_image": str(query),
                    "gt": list(sample.gt),
                    "gt_names": [concepts[key].name for key in sample.gt],
                    "shown": shown,
                    "shown_images": [str(resolve(root, concepts[key].image)) for key in shown],
                    "shown_lines": [
                        concept_line(n, concepts[key].name, concepts[key].info) for n, key in enumerate(shown, 1)
                    ],
                    "request": caption_request(position),
                }
            )
        return Source(str(root), root, self.repic.samples, ""), rows

    def identity(self) -> dict[str, Any]:
        """The base identity, plus the RePIC files' sha256 and the retriever (the prompts depend on both)."""
        options = self.config.dataset_kwargs or {}
        retriever = {"name": retrieval.NAME, **retrieval.SETTINGS} if options.get("mode") == "retrieval" else None
        files = {name: options.get(name) for name in ("database", "queries")}
        return {**super().identity(), "repic": {"files": files, "sha256": self.repic.sha256, "retriever": retriever}}

    def judge_spec(self) -> JudgeRef | None:
        return None

    def make_record(self, doc: dict[str, Any], response: str) -> RepicRecord:
        return RepicRecord(
            sample_id=doc["sample_id"],
            bucket=doc["bucket"],
            mode=doc["mode"],
            image=doc["image"],
            gt=doc["gt"],
            shown=doc["shown"],
            pool=self.pool,
            request=doc["request"],
            caption=response,
            model_blocked=getattr(response, "reason", None),  # refused or failed call (model_adapters/chat.py)
        )

    def judge(self, records: list[RepicRecord]) -> list[RepicRecord]:
        return records


def repic_doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    images = [open_rgb(path) for path in doc["shown_images"]]
    return repic_messages(images, doc["shown_lines"], open_rgb(doc["query_image"]), doc["request"])


def repic_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's text-only view of the prompt (its `ctx`); chat models use the messages instead."""
    return QUERY_PREFIX + doc["request"]


def repic_doc_to_target(doc: dict) -> str:
    return ", ".join(doc["gt"])

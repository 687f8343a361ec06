"""Honest offline baselines, as lmms-eval chat models: each shows what a score means.

- `covip_oracle`: a caption from the positive concepts' dialogues (reads the answer key): the
  judge's ceiling; if it scores low, the judge or the data is broken.
- `covip_shortcut`: text only, recites every context dialogue and never looks at the query:
  high Acc+ but it leaks everything, so Acc- must catch it.
- `covip_blind`: one generic caption, no memory: the floor for Acc+.
- `covip_retrieval`: training-free; decides which context concepts are in the query by
  classical visual matching of the images' colours (it never sees `positives`), then captions
  from the matched dialogues.
- `covip_structure`: the same with a stronger matcher: local features, a geometric alignment
  and a pixel-wise check of each reference picture in the query (`structure_match.py`), which
  tells look-alikes that share their colours apart.

All but the oracle see only the messages a real model would get. On the diagnostics (LSD, LAR,
ITR) they behave the same way: the oracle answers from the answer key; shortcut and retrieval
recall dialogues in the user's words (all of them, or the visually matched ones) without
answering the question; blind says something generic. They answer CAG variants exactly as the
direct ones: CAG is a prompting strategy for models, not for these rules. On RePIC's tasks the oracle names the
ground-truth concepts by the display names the prompt shows; shortcut recites every shown concept's line;
retrieval the lines of the shown concepts it matches visually in the query.
"""

from __future__ import annotations

import re
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from covip.model_adapters import structure_match, visual_match
from covip.model_adapters.processes import process_device
from covip.tasks.prompts import parse_user_turn
from covip.tasks.repic.prompt import oracle_caption, parse_repic_turn

GENERIC_CAPTION = "A photo of a few colourful objects arranged on a busy, cluttered background."
_USER_LINE = re.compile(r"^\s*User:\s*(.+?)\s*$", re.MULTILINE)


def recall_caption(dialogues: list[str]) -> str:
    """A caption that recalls what the user said about each given concept, in their words."""
    if not dialogues:
        return GENERIC_CAPTION
    parts = []
    for dialogue in dialogues:
        said = " ".join(_USER_LINE.findall(dialogue)) or dialogue.strip()
        parts.append(f"As you told me: {said}")
    return "In this photo I see someone I remember. " + " ".join(parts)


def read_turn(messages: list[dict], doc: dict) -> tuple[list, list[str], Any]:
    """(context images, their texts, query image) as the model sees them: a RePIC prompt's texts are its concepts'
    `Name: <...>, Info: ...` lines, CoViP's are dialogues."""
    return parse_repic_turn(messages) if doc.get("task") == "repic" else parse_user_turn(messages)


class Baseline(lmms):
    """Shared request loop: build the task's messages for each request and caption them."""

    is_simple = False

    def __init__(self, batch_size: int | str = 1, device: str | None = None, **unknown: Any) -> None:
        super().__init__()
        if unknown:
            raise ValueError(f"{type(self).__name__} takes no model_args, got {sorted(unknown)}")

    @property
    def device(self):
        """Where lmms-eval gathers this rank's request counts in a multi-process run (no model lives there)."""
        return process_device()

    def caption(self, messages: list[dict], doc: dict) -> str:
        raise NotImplementedError

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out = []
        for request in tqdm(requests, desc=type(self).__name__, disable=self.rank != 0):
            _, doc_to_messages, _, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            out.append(self.caption(doc_to_messages(doc), doc))
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{type(self).__name__} only generates captions")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} only generates single-turn captions")


class OracleBaseline(Baseline):
    def caption(self, messages: list[dict], doc: dict) -> str:
        task = doc.get("task", "caption")
        if task == "lsd":
            return f"\\boxed{{{doc['answer']}}}"
        if task == "lar":
            return f"They were {doc['last_action']}."
        if task == "itr":
            return f"{doc['trigger']}! I remember them."
        if task == "repic":  # the ground truth by the display names the prompt shows
            return oracle_caption(doc["gt_names"])
        return recall_caption([doc["concepts"][i]["dialogue"] for i in doc["positives"]])


class ShortcutBaseline(Baseline):
    def caption(self, messages: list[dict], doc: dict) -> str:
        _, dialogues, _ = read_turn(messages, doc)
        return recall_caption(dialogues)


class BlindBaseline(Baseline):
    def caption(self, messages: list[dict], doc: dict) -> str:
        return GENERIC_CAPTION


class RetrievalBaseline(Baseline):
    matcher = visual_match  # a matcher module: match_concepts, match_scores, MATCH_THRESHOLD

    def caption(self, messages: list[dict], doc: dict) -> str:
        images, dialogues, query = read_turn(messages, doc)
        if doc.get("task", "caption") in ("caption", "repic"):  # one image per concept: one match per query object
            matched = self.matcher.match_concepts(images, query)
        else:  # a memory stream shows the same concept many times: recall every memory that matches
            scores = self.matcher.match_scores(images, query)
            matched = [i for i, score in enumerate(scores) if score >= self.matcher.MATCH_THRESHOLD]
        return recall_caption([dialogues[i] for i in matched])


class StructureBaseline(RetrievalBaseline):
    matcher = structure_match

"""Reading a judge's closed answer from a local causal LM's logits, many questions per forward pass.

A CapEval-QAs judge answers one letter of A-D, the LAR judge Correct or Wrong. Generating a free-form
reply to read that answer costs up to hundreds of decoding steps per question, one question at a
time. Here the assistant's turn is opened with the text that precedes the answer (`Answer: \\boxed{`
for a letter, nothing for Correct/Wrong), and the answer is the allowed one whose first token has the
highest logit: exactly the token greedy decoding restricted to the allowed answers would write next.

Questions about one caption share everything up to the question (rules + caption). The shared tokens
are encoded once per caption: a first forward pass fills the key/value cache of the captions
(left-padded), whose rows are then repeated for each caption's questions, and a second pass encodes
only the questions (right-padded) and reads each row's logits at its last token. Only the allowed
answers' rows of the output layer are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import groupby
from typing import Any

import torch

from covip.judges.prompt import BINARY_TEMPLATE, MCQA_TEMPLATE
from covip.judges.protocol import LETTERS


@dataclass(frozen=True)
class ClosedAnswer:
    """How prompts of one template are answered in one token, and what the reply text says.

    `opening` identifies the template (its fixed first line); `answer_prefix` is the assistant text written
    before the answer; `reply` is the reply text for a chosen answer, read back by `extract.py`; the text up
    to the last `shared_until` is shared by the questions of one caption.
    """

    opening: str
    choices: tuple[str, ...]
    answer_prefix: str
    reply: str
    shared_until: str | None


def _opening(template: str) -> str:
    return template.split("\n", 1)[0]


FORMATS = (
    ClosedAnswer(_opening(MCQA_TEMPLATE), LETTERS, "Answer: \\boxed{", "Answer: \\boxed{{{}}}", "\n\n[Question]\n"),
    ClosedAnswer(_opening(BINARY_TEMPLATE), ("Correct", "Wrong"), "", "{}", None),
)


def closed_answer(prompt: str) -> ClosedAnswer:
    """The answer format of a judge prompt; a prompt of no known template is an error."""
    for fmt in FORMATS:
        if prompt.startswith(fmt.opening):
            return fmt
    raise ValueError(
        "the scoring judge reads only the CapEval-QAs and LAR judge prompts (judges/prompt.py); "
        f"this prompt starts {prompt[:60]!r}; use the hf option mode=generate for free generation"
    )


@dataclass
class ScoringStats:
    """What `choose` computed: questions, distinct shared prefixes, forward passes, tokens encoded."""

    questions: int = 0
    prefixes: int = 0
    passes: int = 0
    tokens: int = 0

    def add(self, other: ScoringStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class AnswerScorer:
    """Chooses each prompt's answer among its format's choices; see the module docstring.

    `batch_tokens` bounds one step's work: the questions' share of cached prefix tokens plus their own tokens.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_tokens: int = 131072) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stats = ScoringStats()

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def encode(self, prompt: str, fmt: ClosedAnswer) -> list[int]:
        """The prompt as the model reads it: chat template (when the tokenizer has one) + the answer prefix."""
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        return self.tokenizer(text + fmt.answer_prefix, add_special_tokens=False)["input_ids"]

    def choice_ids(self, fmt: ClosedAnswer) -> list[int]:
        """The first token of each choice as it follows the answer prefix; they must differ to be told apart."""
        ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in fmt.choices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"the choices {fmt.choices} share a first token in this tokenizer; use mode=generate")
        return ids

    @torch.inference_mode()
    def choose(self, prompts: Sequence[str]) -> list[str]:
        """The chosen answer of each prompt (one of its format's choices), in order."""
        formats = [closed_answer(p) for p in prompts]
        ids = [self.encode(p, f) for p, f in zip(prompts, formats, strict=True)]
        self.stats = ScoringStats(questions=len(prompts))
        chosen: list[str] = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: (FORMATS.index(formats[i]), self._group_key(prompts[i])))
        for fmt_index, members in groupby(order, key=lambda i: FORMATS.index(formats[i])):
            fmt = FORMATS[fmt_index]
            groups = [list(g) for _, g in groupby(members, key=lambda i: self._group_key(prompts[i]))]
            groups.sort(key=lambda g: len(ids[g[0]]))  # similar lengths in one step: little padding
            self.stats.prefixes += len(groups)
            for batch in self._batches(groups, ids):
                for i, k in zip((i for g in batch for i in g), self._score(batch, ids, fmt), strict=True):
                    chosen[i] = fmt.choices[k]
        return chosen

    @staticmethod
    def _group_key(prompt: str) -> str:
        """Prompts with the same key share their text up to the question (one caption's questions)."""
        marker = closed_answer(prompt).shared_until
        return prompt[: prompt.rindex(marker)] if marker and marker in prompt else prompt

    def _batches(self, groups: list[list[int]], ids: list[list[int]]) -> list[list[list[int]]]:
        """Groups packed into steps of at most `batch_tokens` (a group larger than that is a step of its own)."""
        out: list[list[list[int]]] = [[]]
        used = 0
        for group in groups:
            cost = sum(len(ids[i]) for i in group)
            if out[-1] and used + cost > self.batch_tokens:
                out.append([])
                used = 0
            out[-1].append(group)
            used += cost
        return [b for b in out if b]

    def _score(self, groups: list[list[int]], ids: list[list[int]], fmt: ClosedAnswer) -> list[int]:
        """Index of the chosen answer for every question of these groups, in group order."""
        device = self.device
        prefixes, suffixes, owner = [], [], []
        for g, group in enumerate(groups):
            rows = [ids[i] for i in group]
            shared = _common_prefix_length(rows)
            shared = min(shared, min(len(r) for r in rows) - 1)  # every question keeps at least one token
            prefixes.append(rows[0][:shared])
            suffixes += [r[shared:] for r in rows]
            owner += [g] * len(rows)
        pre_ids, pre_mask = _padded(prefixes, self.pad_id, left=True)
        suf_ids, suf_mask = _padded(suffixes, self.pad_id, left=False)
        pre_ids, pre_mask, suf_ids, suf_mask = (t.to(device) for t in (pre_ids, pre_mask, suf_ids, suf_mask))
        owner_t = torch.tensor(owner, device=device)
        decoder = self.model.get_decoder()
        cache = None
        mask = suf_mask
        start = torch.zeros(len(owner), dtype=torch.long, device=device)
        if pre_ids.shape[1]:
            out = decoder(
                input_ids=pre_ids,
                attention_mask=pre_mask,
                position_ids=(pre_mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True,
            )
            cache = out.past_key_values
            for layer in cache.layers:  # one row per question, a copy of its caption's row
                layer.keys = layer.keys.index_select(0, owner_t)
                layer.values = layer.values.index_select(0, owner_t)
            mask = torch.cat([pre_mask.index_select(0, owner_t), suf_mask], dim=1)
            start = pre_mask.sum(-1).index_select(0, owner_t)
        hidden = decoder(
            input_ids=suf_ids,
            attention_mask=mask,
            position_ids=start[:, None] + torch.arange(suf_ids.shape[1], device=device),
            past_key_values=cache,
            use_cache=cache is not None,
        ).last_hidden_state
        last = hidden[torch.arange(len(owner), device=device), suf_mask.sum(-1) - 1]
        head = self.model.get_output_embeddings()
        allowed = torch.tensor(self.choice_ids(fmt), device=device)
        bias = head.bias.index_select(0, allowed) if getattr(head, "bias", None) is not None else None
        logits = torch.nn.functional.linear(last, head.weight.index_select(0, allowed), bias)
        self.stats.passes += 1 + (cache is not None)
        self.stats.tokens += int(pre_mask.sum()) + int(suf_mask.sum())
        return logits.argmax(-1).tolist()


def _common_prefix_length(rows: list[list[int]]) -> int:
    n = min(len(r) for r in rows)
    for k in range(n):
        if any(r[k] != rows[0][k] for r in rows):
            return k
    return n


def _padded(rows: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded to one length (on the left or the right) and their attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, cols] = torch.tensor(row, dtype=torch.long)
        mask[i, cols] = 1
    return ids, mask

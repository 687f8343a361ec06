"""Caption-augmented generation (CAG, docs/protocol.md §4) for any adapter.

A CAG task's messages are the stage-2 conversation with `CAG_CAPTION` where the model's own
caption goes (`covip.tasks.prompts.cag_messages`). Stage 1 asks the model, greedily, for the
personalized caption of the query (`cag_stage1`: system + context + query + captioning
instruction; the `paper` preset leaves the system prompt out, as the reference does); stage 2
answers the task's question with that caption as the assistant's turn (`fill_cag`). `two_pass`
does this with two plain calls; an adapter that can keep the key/value cache of the shared
prefix (system + context + query image) overrides `generate_cag` instead (see `qwen3_vl.py`)
and must give the same greedy output, using `two_pass` where the stages share no prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from covip.model_adapters.chat import GREEDY, ChatRequest, Reply
from covip.tasks.prompts import cag_stage1, fill_cag, is_cag

# The reference writes the stage-1 caption greedily with up to 1024 tokens.
STAGE1_MAX_NEW_TOKENS = 1024

Generate = Callable[[list[ChatRequest]], list[Reply]]


def stage1_request(request: ChatRequest, max_new_tokens: int = STAGE1_MAX_NEW_TOKENS) -> ChatRequest:
    """The captioning request of a CAG request: greedy, its own token budget."""
    kwargs: dict[str, Any] = {k: v for k, v in request.gen_kwargs.items() if k not in ("top_p", "top_k", "until")}
    kwargs.update(GREEDY, max_new_tokens=max_new_tokens)
    return replace(request, messages=cag_stage1(request.messages), gen_kwargs=kwargs)


def stage2_request(request: ChatRequest, caption: str) -> ChatRequest:
    return replace(request, messages=fill_cag(request.messages, caption))


def two_pass(
    generate: Generate, requests: list[ChatRequest], caption_tokens: int = STAGE1_MAX_NEW_TOKENS
) -> list[Reply]:
    """CAG with two independent calls: caption every request, then answer with the captions filled in."""
    captions = generate([stage1_request(r, caption_tokens) for r in requests])
    todo = [i for i, c in enumerate(captions) if not c.blocked]  # a blocked caption is the blocked answer
    answers = generate([stage2_request(requests[i], captions[i].text) for i in todo]) if todo else []
    replies = list(captions)
    for i, answer in zip(todo, answers, strict=True):
        replies[i] = captions[i].plus(answer)
    return replies


def run(requests: list[ChatRequest], generate: Generate, generate_cag: Generate) -> list[Reply]:
    """Send plain requests to `generate` and CAG requests to `generate_cag`; replies in request order."""
    cag_idx = [i for i, r in enumerate(requests) if is_cag(r.messages)]
    plain_idx = [i for i, r in enumerate(requests) if not is_cag(r.messages)]
    replies: list[Reply | None] = [None] * len(requests)
    for indices, fn in ((plain_idx, generate), (cag_idx, generate_cag)):
        if indices:
            for i, reply in zip(indices, fn([requests[i] for i in indices]), strict=True):
                replies[i] = reply
    return replies  # type: ignore[return-value]

"""What every CoViP model adapter shares: turning lmms-eval requests into chat requests and back.

An adapter implements one method, `generate_chat`, over a list of `ChatRequest`s (interleaved
messages + generation settings) and returns one `Reply` per request. This base class builds
the requests from the task's `doc_to_messages`, runs caption-augmented generation (CAG) for
messages that carry the CAG placeholder (see `cag.py`), and converts the replies into
lmms-eval's `GenerationResult`s (text + token counts). A reply never stands in for a failure:
an adapter raises, and the run reports the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmms_eval.api.instance import GenerationResult, Instance, TokenCounts
from lmms_eval.api.model import lmms
from PIL import Image

from covip.model_adapters.processes import process_device

GREEDY = {"temperature": 0.0, "do_sample": False}


@dataclass
class ChatRequest:
    """One conversation to complete: messages with PIL images (or paths), generation settings, its task.

    `task` names the lmms-eval task that asked, so API token usage is recorded per task.
    """

    messages: list[dict]
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    task: str | None = None


@dataclass
class Reply:
    """A completion and what it cost. `blocked` marks a provider's refusal (e.g. a safety block): no caption."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    blocked: str | None = None

    def plus(self, other: Reply) -> Reply:
        """`other`'s text with both calls' tokens: a two-stage (CAG) answer costs both stages."""

        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Reply(
            text=other.text,
            input_tokens=add(self.input_tokens, other.input_tokens),
            output_tokens=add(self.output_tokens, other.output_tokens),
            reasoning_tokens=add(self.reasoning_tokens, other.reasoning_tokens),
            blocked=self.blocked or other.blocked,
        )


class BlockedText(str):
    """An empty answer that says why there is none (refused, or failed with allow_errors); the tasks count it.

    lmms-eval strips every response before `process_results` (its reasoning-tag filter). Stripping
    an empty string changes nothing, so it returns this answer itself: a plain `str` would lose the
    reason, and the task would score the empty answer as a caption (`model_blocked`).
    """

    blocked = True

    def __new__(cls, reason: str) -> BlockedText:
        obj = super().__new__(cls, "")
        obj.reason = reason
        return obj

    def strip(self, chars: str | None = None) -> BlockedText:
        return self

    lstrip = rstrip = strip


def images_in(messages: list[dict]) -> list[Image.Image]:
    """The images of a conversation in order of appearance, as RGB PIL images."""
    out = []
    for message in messages:
        content = message["content"]
        for item in [] if isinstance(content, str) else content:
            if item["type"] == "image":
                out.append(load_image(item.get("url", item.get("image"))))
    return out


def load_image(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value.convert("RGB") if value.mode != "RGB" else value
    if isinstance(value, str):
        with Image.open(value) as im:
            return im.convert("RGB")
    raise TypeError(f"an image item must be a PIL image or a file path, got {type(value).__name__}")


def truncate_at_stops(text: str, stops: list[str] | str | None) -> str:
    """Cut the text at the first stop string (lmms-eval's `until`)."""
    if isinstance(stops, str):
        stops = [stops]
    for stop in stops or []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """Prepend a system message unless the task already has one (CAG tasks carry their own)."""
    if not system_prompt or any(m["role"] == "system" for m in messages):
        return messages
    return [{"role": "system", "content": [{"type": "text", "text": system_prompt}]}, *messages]


class ChatAdapter(lmms):
    """Base of the CoViP adapters: requests -> `generate_chat` (with CAG) -> GenerationResults."""

    is_simple = False
    system_prompt: str | None = None
    cag_caption_tokens: int = 1024  # the reference's stage-1 budget; model arg `cag_caption_tokens`
    WINDOW = 512  # requests whose messages (and images) are held at once; batches are sorted within a window

    @property
    def device(self) -> Any:
        """This process's device (lmms-eval gathers request counts there in a multi-process run)."""
        return process_device()

    def generate_chat(self, requests: list[ChatRequest]) -> list[Reply]:
        """Complete each request (same order). Raise on failure; never return an error as text."""
        raise NotImplementedError

    def generate_cag(self, requests: list[ChatRequest]) -> list[Reply]:
        """Caption-augmented generation; adapters that can reuse the shared prefix override this."""
        from covip.model_adapters.cag import two_pass

        return two_pass(self.generate_chat, requests, self.cag_caption_tokens)

    def chat_requests(self, requests: list[Instance]) -> list[ChatRequest]:
        out = []
        for request in requests:
            _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            messages = doc_to_messages(self.task_dict[task][split][doc_id])
            out.append(ChatRequest(with_system_prompt(messages, self.system_prompt), dict(gen_kwargs or {}), task))
        return out

    def generate_until(self, requests: list[Instance]) -> list[GenerationResult]:
        """Windows of WINDOW requests, so that a whole run's images are never all in memory at once."""
        from covip.model_adapters.cag import run

        results: list[GenerationResult] = []
        for start in range(0, len(requests), self.WINDOW):
            chats = self.chat_requests(requests[start : start + self.WINDOW])
            replies = run(chats, self.generate_chat, self.generate_cag)
            results += [to_result(reply, chat.gen_kwargs) for reply, chat in zip(replies, chats, strict=True)]
        return results

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{type(self).__name__} only generates")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} does not do multi-round generation")


def to_result(reply: Reply, gen_kwargs: dict[str, Any]) -> GenerationResult:
    if reply.blocked:
        text: str = BlockedText(reply.blocked)
    else:
        text = truncate_at_stops(reply.text, [s for s in _stops(gen_kwargs) if s != "\n\n"])
    counts = TokenCounts(reply.input_tokens, reply.output_tokens, reply.reasoning_tokens)
    return GenerationResult(text=text, token_counts=counts)


def _stops(gen_kwargs: dict[str, Any]) -> list[str]:
    until = gen_kwargs.get("until") or []
    return [until] if isinstance(until, str) else list(until)

"""RePIC's captioning prompt (docs/protocol.md §7.2), and its inverse for the offline baselines.

[system: the captioning-assistant prompt; user: per shown concept its image and the line
`{n}. Name: <{name}>, Info: {info}`, then the query image and `This is the query image. {request}`]. The request
rotates over RePIC's four caption requests by sample position, as its scripts do (the captions it published use
these four in every bucket). Only these short prompt phrases are RePIC's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SYSTEM_PROMPT = (
    "You are a captioning assistant. Your task is to generate an accurate caption for the query image.\n"
    "Below is additional information about the reference images."
)
CAPTION_REQUESTS = (
    "Give a personalized caption of this image.",
    "Give a caption of the image.",
    "Can you provide a personalized caption of this photo?",
    "Provide a caption of the given image.",
)
QUERY_PREFIX = "This is the query image. "


def caption_request(position: int) -> str:
    """The request of the sample at `position` in its query file."""
    return CAPTION_REQUESTS[position % len(CAPTION_REQUESTS)]


def concept_line(number: int, name: str, info: str) -> str:
    """The text after a shown concept's image (numbered from 1)."""
    return f"{number}. Name: <{name}>, Info: {info}"


def repic_messages(images: Sequence[Any], lines: Sequence[str], query: Any, request: str) -> list[dict]:
    if len(images) != len(lines):
        raise ValueError(f"{len(images)} concept images but {len(lines)} concept lines")
    content: list[dict] = []
    for image, line in zip(images, lines, strict=True):
        content += [{"type": "image", "url": image}, {"type": "text", "text": line}]
    content += [{"type": "image", "url": query}, {"type": "text", "text": QUERY_PREFIX + request}]
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": content},
    ]


def parse_repic_turn(messages: Sequence[dict]) -> tuple[list[Any], list[str], Any]:
    """Inverse of `repic_messages`: (concept images, concept lines, query image), read as a model sees them."""
    user = [m for m in messages if m["role"] == "user"]
    content = user[0]["content"] if len(user) == 1 else []
    kinds = [item["type"] for item in content]
    if len(kinds) < 2 or kinds != ["image", "text"] * (len(kinds) // 2):
        raise ValueError("messages do not follow RePIC's layout (image, text pairs, the query image last)")
    last = content[-1]["text"]
    if not last.startswith(QUERY_PREFIX):
        raise ValueError(f"the last text must start with {QUERY_PREFIX!r}, got {last!r:.80}")
    pairs = [(content[i]["url"], content[i + 1]["text"]) for i in range(0, len(content) - 2, 2)]
    return [image for image, _ in pairs], [line for _, line in pairs], content[-2]["url"]


def oracle_caption(names: Sequence[str]) -> str:
    """A caption that names each concept as the prompt showed it (`<Iron Man>`), as RePIC's own model writes."""
    return "A personalized photo of " + ", ".join(f"<{name}>" for name in names) + "."

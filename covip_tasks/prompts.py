"""The prompts every CoViP task and adapter uses, and the interleaved message layout.

The layout follows the paper (docs/protocol.md §1.4): one user turn; per context concept a `===== Dialogue j =====`
header, the concept's image, its dialogue; then `===== New Image =====`, the query image and the instruction. A
`Layout` holds the details the reference scripts vary: where numbering starts, the line breaks after headers and
dialogues, and whether each image is labelled "Picture n:" (what Qwen's chat template writes with
`add_vision_id=True`, which the reference's vLLM scripts use). Our `covip` preset numbers from 1 as the reference's
downstream and RL code does; the `paper` preset reproduces its test notebook for captioning and its downstream
scripts for the diagnostics. The instruction is our own wording of the paper's captioning rules, in particular
"use only relevant memories"; the reference's own text can be read from a file (`covip.tasks.lmms.task`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CAPTION_INSTRUCTION = (
    "You can see several past dialogues between the user and you, each about one person, pet or thing, "
    "together with an image of it. Treat them as your memory of the user.\n"
    "Describe the new image by integrating relevant information from this memory:\n"
    "- If someone or something from the dialogues appears in the new image, call it by its name and bring in "
    "what the user told you about it: places, times, events, what it was doing, habits, nicknames.\n"
    "- Ground the description in the new image itself: what is visible, the composition and setting.\n"
    "- Write naturally, in one paragraph; do not copy the dialogues verbatim.\n"
    "- Use only relevant memories: ignore everything from the dialogues about people, pets or things that do "
    "not appear in the new image."
)

CONTROLS = ("none", "blind", "noctx")
PRESETS = ("covip", "paper")
QUERY_HEADER = "===== New Image ====="
PICTURE_LABEL = re.compile(r"Picture \d+: ")


@dataclass(frozen=True)
class Layout:
    """How the context and the query are written into the user turn."""

    index_base: int = 1  # the first `===== Dialogue j =====`
    header_end: str = ""  # after each `===== ... =====` header
    dialogue_end: str = "\n"  # after each dialogue
    strip_dialogue: bool = True  # trailing whitespace of a dialogue removed before `dialogue_end`
    picture_labels: bool = False  # "Picture n: " before each image, numbered from 1 over the turn

    def header(self, j: int) -> str:
        return f"===== Dialogue {j + self.index_base} =====" + self.header_end

    def dialogue(self, text: str) -> str:
        return (text.rstrip() if self.strip_dialogue else text) + self.dialogue_end


COVIP_LAYOUT = Layout()
# The reference's captioning notebook: 0-based headers ending in a line break, dialogues as they are, labels.
PAPER_CAPTION_LAYOUT = Layout(index_base=0, header_end="\n", dialogue_end="", strip_dialogue=False, picture_labels=True)
# The reference's downstream (LSD/LAR/ITR) scripts: 1-based headers, a blank line after each dialogue, labels.
PAPER_DIAGNOSTIC_LAYOUT = Layout(header_end="\n", dialogue_end="\n\n", strip_dialogue=False, picture_labels=True)
CAPTION_LAYOUTS = {"covip": COVIP_LAYOUT, "paper": PAPER_CAPTION_LAYOUT}
DIAGNOSTIC_LAYOUTS = {"covip": COVIP_LAYOUT, "paper": PAPER_DIAGNOSTIC_LAYOUT}


def dialogue_header(j: int, index_base: int = 1) -> str:
    return Layout(index_base=index_base).header(j)


def _image(content: list[dict], image: Any, layout: Layout) -> None:
    if layout.picture_labels:
        count = sum(item["type"] == "image" for item in content)
        content.append({"type": "text", "text": f"Picture {count + 1}: "})
    content.append({"type": "image", "url": image})


def interleaved_context(images: Sequence[Any], dialogues: Sequence[str], layout: Layout = COVIP_LAYOUT) -> list[dict]:
    """Content items for the context and the query header: header, image, dialogue per concept, in context order."""
    if len(images) != len(dialogues):
        raise ValueError(f"{len(images)} context images but {len(dialogues)} dialogues")
    content: list[dict] = []
    for j, (image, dialogue) in enumerate(zip(images, dialogues, strict=True)):
        content.append({"type": "text", "text": layout.header(j)})
        _image(content, image, layout)
        content.append({"type": "text", "text": layout.dialogue(dialogue)})
    return content


def context_and_query(
    images: Sequence[Any], dialogues: Sequence[str], query_image: Any, layout: Layout = COVIP_LAYOUT
) -> list[dict]:
    """The context, the query header and the query image: what the two CAG stages share."""
    content = interleaved_context(images, dialogues, layout)
    content.append({"type": "text", "text": QUERY_HEADER + layout.header_end})
    _image(content, query_image, layout)
    return content


def user_turn(
    images: Sequence[Any], dialogues: Sequence[str], query_image: Any, instruction: str, layout: Layout = COVIP_LAYOUT
) -> list[dict]:
    """A single user message: interleaved context, the query header and image, the instruction."""
    content = context_and_query(images, dialogues, query_image, layout)
    content.append({"type": "text", "text": instruction})
    return [{"role": "user", "content": content}]


def parse_user_turn(messages: Sequence[dict]) -> tuple[list[Any], list[str], Any]:
    """Inverse of `user_turn`: (context images, dialogues, query image) from the messages a model gets.

    Baselines and CAG read the prompt exactly as a model sees it, never the dataset record.
    """
    user = [m for m in messages if m["role"] == "user"]
    if not user:
        raise ValueError("messages contain no user turn")
    content = user[0]["content"]
    images: list[Any] = []
    dialogues: list[str] = []
    query = None
    state = "start"
    for item in content:
        kind = item["type"]
        text = item.get("text", "")
        if kind == "text" and PICTURE_LABEL.fullmatch(text):
            continue  # a label belongs to the image after it
        if kind == "text" and text.startswith("===== Dialogue "):
            state = "context-image"
        elif kind == "text" and text.strip() == QUERY_HEADER:
            state = "query-image"
        elif kind == "image" and state == "context-image":
            images.append(item["url"])
            state = "dialogue"
        elif kind == "text" and state == "dialogue":
            dialogues.append(text)
            state = "between"
        elif kind == "image" and state == "query-image":
            query = item["url"]
            state = "instruction"
    if query is None or len(images) != len(dialogues):
        raise ValueError("messages do not follow the CoViP layout (context headers, images, dialogues, query image)")
    return images, dialogues, query


# Caption-augmented generation (CAG, docs/protocol.md §4). A CAG task's messages are the
# stage-2 conversation with a placeholder where the model's own stage-1 caption goes; any
# adapter fills it by first captioning the query from the context (`cag_stage1`), so every
# model supports CAG without the task knowing the model. The placeholder also says whether
# stage 1 keeps the system prompt (ours) or sends the user turn alone (the reference's).
CAG_CAPTION = "<covip:cag-caption>"
CAG_CAPTION_USER_ONLY = "<covip:cag-caption:user-only>"
CAG_PLACEHOLDERS = (CAG_CAPTION, CAG_CAPTION_USER_ONLY)
STAGE1_INSTRUCTION = "covip_stage1_instruction"  # the placeholder item's key for the stage-1 captioning instruction
MEMORY_SYSTEM_PROMPT = (
    "You are a personal assistant with a visual memory. Earlier dialogues with the user, each with an image, "
    "are your memory of the people, pets and things in the user's life. Recognise them when they appear in a "
    "new image, and use what the user told you about them; ignore memories of anything that is not in the new image."
)


def cag_messages(
    images: Sequence[Any],
    dialogues: Sequence[str],
    query_image: Any,
    question: str,
    system: str = MEMORY_SYSTEM_PROMPT,
    layout: Layout = COVIP_LAYOUT,
    stage1_system: bool = True,
    stage1_instruction: str = CAPTION_INSTRUCTION,
) -> list[dict]:
    """Stage-2 messages: [system, user: context + query image, assistant: placeholder, user: question].

    `stage1_system=False` makes stage 1 send the user turn without the system prompt, as the reference does; the
    placeholder carries the instruction stage 1 captions with.
    """
    placeholder = {
        "type": "text",
        "text": CAG_CAPTION if stage1_system else CAG_CAPTION_USER_ONLY,
        STAGE1_INSTRUCTION: stage1_instruction,
    }
    return [
        *([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []),
        {"role": "user", "content": context_and_query(images, dialogues, query_image, layout)},
        {"role": "assistant", "content": [placeholder]},
        {"role": "user", "content": [{"type": "text", "text": question}]},
    ]


def _placeholder_item(messages: Sequence[dict]) -> dict | None:
    items = (c for m in messages if m["role"] == "assistant" for c in m["content"])
    return next((c for c in items if c.get("text") in CAG_PLACEHOLDERS), None)


def _placeholder(messages: Sequence[dict]) -> str | None:
    item = _placeholder_item(messages)
    return item["text"] if item else None


def is_cag(messages: Sequence[dict]) -> bool:
    return _placeholder(messages) is not None


def cag_shares_prefix(messages: Sequence[dict]) -> bool:
    """Whether CAG's two stages start with the same system + context + query image (not so under `paper`)."""
    return _placeholder(messages) == CAG_CAPTION


def cag_stage1(messages: Sequence[dict]) -> list[dict]:
    """The stage-1 request of CAG messages: [system, user: context + query + captioning instruction].

    Stage 1 and stage 2 then share the prefix (system, context, query image), so an adapter can
    encode it once and reuse its key/value cache for both stages. With `CAG_CAPTION_USER_ONLY`
    (the `paper` preset) the system prompt is left out of stage 1 and the prefixes differ.
    """
    system = [m for m in messages if m["role"] == "system"][:1] if cag_shares_prefix(messages) else []
    user = next(m for m in messages if m["role"] == "user")
    instruction = (_placeholder_item(messages) or {}).get(STAGE1_INSTRUCTION, CAPTION_INSTRUCTION)
    return [*system, {"role": "user", "content": [*user["content"], {"type": "text", "text": instruction}]}]


def fill_cag(messages: Sequence[dict], caption: str) -> list[dict]:
    """Stage-2 messages with the placeholder replaced by the stage-1 caption."""
    filled = {"type": "text", "text": caption}
    return [
        {**m, "content": [filled if c.get("text") in CAG_PLACEHOLDERS else c for c in m["content"]]} for m in messages
    ]


# Diagnostics (docs/protocol.md §4). Our preset uses one system prompt for every task and
# mode and the standard `\boxed{}`; the `paper` preset reproduces the reference's choices:
# no system prompt for direct LSD, a "personalization" system prompt for LAR and ITR, the
# captioning instruction as the CAG system prompt of LSD and LAR, a CAG stage 1 without any
# system prompt, and `//boxed{}` in LSD.
DIAGNOSTIC_QUESTIONS = {
    "covip": {
        "lsd": "Where did I last see the one in the new image? Think step by step and give your final answer "
        "within \\boxed{your_answer}.",
        "lar": "What was the one in the new image doing the last time I told you about it?",
        "itr": "Where did I last see the one in the new image?",
    },
    "paper": {
        "lsd": "Where did I last see the one in the new image? Think step by step and provide your final answer "
        "within //boxed{your_answer}.",
        "lar": "What was I doing the last time I told you about my most recent experience with the one in the "
        "new image?",
        "itr": "Where did I last see the one in the new image?",
    },
}
PERSONALIZATION_PROMPT = (
    "You can perceive multiple past dialogues and use them as memory. Interpret the new image by integrating "
    "relevant information from the context: recall the names, places, times and actions the user mentioned about "
    "anything that appears in the new image, and ground your understanding in what the new image shows. Use only "
    "relevant memories."
)


def diagnostic_system_prompt(task: str, mode: str, preset: str, instruction: str = CAPTION_INSTRUCTION) -> str | None:
    """The system prompt of a diagnostic task in a mode (direct or cag) under a preset; `paper` uses the
    captioning instruction as the CAG system prompt of LSD and LAR, as the reference does."""
    if preset == "covip":
        return MEMORY_SYSTEM_PROMPT
    if mode == "cag":
        return PERSONALIZATION_PROMPT if task == "itr" else instruction
    return None if task == "lsd" else PERSONALIZATION_PROMPT


def diagnostic_messages(
    task: str,
    mode: str,
    preset: str,
    images: Sequence[Any],
    dialogues: Sequence[str],
    query_image: Any,
    instruction: str = CAPTION_INSTRUCTION,
) -> list[dict]:
    """Direct: [system, user: context + query + question]. CAG: `cag_messages` with the task's question.

    `instruction` is the captioning instruction (ours, or the reference's text from a file): CAG's stage 1 captions
    with it, and under `paper` it is also the CAG system prompt of LSD and LAR.
    """
    question = DIAGNOSTIC_QUESTIONS[preset][task]
    system = diagnostic_system_prompt(task, mode, preset, instruction)
    layout = DIAGNOSTIC_LAYOUTS[preset]
    if mode == "cag":
        return cag_messages(
            images,
            dialogues,
            query_image,
            question,
            system=system or "",
            layout=layout,
            stage1_system=preset == "covip",
            stage1_instruction=instruction,
        )
    turn = user_turn(images, dialogues, query_image, question, layout)
    return ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + turn

"""The prompts every CoViP task and adapter uses, and the interleaved message layout.

The layout follows the paper (docs/protocol.md §1.4): one user turn; per context concept a
`===== Dialogue j =====` header, the concept's image, its dialogue; then
`===== New Image =====`, the query image and the instruction. We number dialogues from 1 as
the paper's downstream and RL code does (its test notebook used 0; `index_base=0` gives that).
The instruction is our own wording of the paper's captioning rules, in particular "use only
relevant memories".
"""

from __future__ import annotations

from collections.abc import Sequence
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


def dialogue_header(j: int, index_base: int = 1) -> str:
    return f"===== Dialogue {j + index_base} ====="


QUERY_HEADER = "===== New Image ====="


def interleaved_context(images: Sequence[Any], dialogues: Sequence[str], index_base: int = 1) -> list[dict]:
    """Content items for the context: header, image, dialogue, per concept, in context order."""
    if len(images) != len(dialogues):
        raise ValueError(f"{len(images)} context images but {len(dialogues)} dialogues")
    content: list[dict] = []
    for j, (image, dialogue) in enumerate(zip(images, dialogues, strict=True)):
        content.append({"type": "text", "text": dialogue_header(j, index_base)})
        content.append({"type": "image", "url": image})
        content.append({"type": "text", "text": dialogue.rstrip() + "\n"})
    return content


def user_turn(
    images: Sequence[Any], dialogues: Sequence[str], query_image: Any, instruction: str, index_base: int = 1
) -> list[dict]:
    """A single user message: interleaved context, the query header and image, the instruction."""
    content = interleaved_context(images, dialogues, index_base)
    content.append({"type": "text", "text": QUERY_HEADER})
    content.append({"type": "image", "url": query_image})
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
        if kind == "text" and text.startswith("===== Dialogue "):
            state = "context-image"
        elif kind == "text" and text == QUERY_HEADER:
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
    index_base: int = 1,
    stage1_system: bool = True,
) -> list[dict]:
    """Stage-2 messages: [system, user: context + query image, assistant: placeholder, user: question].

    `stage1_system=False` makes stage 1 send the user turn without the system prompt, as the reference does.
    """
    content = interleaved_context(images, dialogues, index_base)
    content += [{"type": "text", "text": QUERY_HEADER}, {"type": "image", "url": query_image}]
    placeholder = CAG_CAPTION if stage1_system else CAG_CAPTION_USER_ONLY
    return [
        *([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []),
        {"role": "user", "content": content},
        {"role": "assistant", "content": [{"type": "text", "text": placeholder}]},
        {"role": "user", "content": [{"type": "text", "text": question}]},
    ]


def _placeholder(messages: Sequence[dict]) -> str | None:
    texts = (c.get("text") for m in messages if m["role"] == "assistant" for c in m["content"])
    return next((t for t in texts if t in CAG_PLACEHOLDERS), None)


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
    return [*system, {"role": "user", "content": [*user["content"], {"type": "text", "text": CAPTION_INSTRUCTION}]}]


def fill_cag(messages: Sequence[dict], caption: str) -> list[dict]:
    """Stage-2 messages with the placeholder replaced by the stage-1 caption."""
    return [
        {**m, "content": [{**c, "text": caption} if c.get("text") in CAG_PLACEHOLDERS else c for c in m["content"]]}
        for m in messages
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
PRESETS = ("covip", "paper")


def diagnostic_system_prompt(task: str, mode: str, preset: str) -> str | None:
    """The system prompt of a diagnostic task in a mode (direct or cag) under a preset."""
    if preset == "covip":
        return MEMORY_SYSTEM_PROMPT
    if mode == "cag":
        return PERSONALIZATION_PROMPT if task == "itr" else CAPTION_INSTRUCTION
    return None if task == "lsd" else PERSONALIZATION_PROMPT


def diagnostic_messages(
    task: str, mode: str, preset: str, images: Sequence[Any], dialogues: Sequence[str], query_image: Any
) -> list[dict]:
    """Direct: [system, user: context + query + question]. CAG: `cag_messages` with the task's question."""
    question = DIAGNOSTIC_QUESTIONS[preset][task]
    system = diagnostic_system_prompt(task, mode, preset)
    if mode == "cag":
        return cag_messages(
            images, dialogues, query_image, question, system=system or "", stage1_system=preset == "covip"
        )
    turn = user_turn(images, dialogues, query_image, question)
    return ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + turn

"""CAG for any adapter (`model_adapters/cag.py`), on a hand-built CAG message list."""

from __future__ import annotations

from covip.model_adapters.cag import run, two_pass
from covip.model_adapters.chat import ChatRequest, Reply
from covip.tasks.prompts import CAG_CAPTION, CAPTION_INSTRUCTION, QUERY_HEADER

SYSTEM = {"role": "system", "content": [{"type": "text", "text": "You remember."}]}
CONTEXT = [
    {"type": "text", "text": "===== Dialogue 1 ====="},
    {"type": "image", "url": "ctx.png"},
    {"type": "text", "text": "User: This is Anna.\n"},
    {"type": "text", "text": QUERY_HEADER},
    {"type": "image", "url": "query.png"},
]
CAG = [
    SYSTEM,
    {"role": "user", "content": CONTEXT},
    {"role": "assistant", "content": [{"type": "text", "text": CAG_CAPTION}]},
    {"role": "user", "content": [{"type": "text", "text": "Where did I last see her?"}]},
]
SAMPLING = {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "do_sample": True}


class Recorder:
    """A model that answers from a script and records every request it gets."""

    def __init__(self, *answers: Reply) -> None:
        self.answers = list(answers)
        self.calls: list[list[ChatRequest]] = []

    def __call__(self, requests: list[ChatRequest]) -> list[Reply]:
        self.calls.append(requests)
        return [self.answers.pop(0) for _ in requests]


def test_stage1_captions_greedily_from_the_shared_prefix_and_stage2_gets_the_caption():
    model = Recorder(Reply("Anna, at the lake.", 100, 10), Reply("At the lake.", 120, 4))
    [reply] = two_pass(model, [ChatRequest(CAG, SAMPLING)], caption_tokens=256)
    [[stage1], [stage2]] = model.calls
    assert stage1.messages == [
        SYSTEM,
        {"role": "user", "content": [*CONTEXT, {"type": "text", "text": CAPTION_INSTRUCTION}]},
    ]
    assert stage1.gen_kwargs == {"max_new_tokens": 256, "temperature": 0.0, "do_sample": False}
    assert stage2.gen_kwargs == SAMPLING
    assert stage2.messages[:2] == CAG[:2] and stage2.messages[3] == CAG[3]
    assert stage2.messages[2]["content"] == [{"type": "text", "text": "Anna, at the lake."}]
    assert (reply.text, reply.input_tokens, reply.output_tokens) == ("At the lake.", 220, 14)


def test_a_blocked_caption_is_the_blocked_answer_and_skips_stage2():
    model = Recorder(Reply("", blocked="SAFETY"))
    [reply] = two_pass(model, [ChatRequest(CAG, SAMPLING)])
    assert reply.blocked == "SAFETY" and len(model.calls) == 1


def test_run_routes_plain_and_cag_requests_and_keeps_their_order():
    plain = ChatRequest([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], SAMPLING)
    direct = Recorder(Reply("p1"), Reply("p2"))
    cag = Recorder(Reply("c1"))
    replies = run([plain, ChatRequest(CAG, SAMPLING), plain], direct, cag)
    assert [r.text for r in replies] == ["p1", "c1", "p2"]
    assert [len(c) for c in direct.calls] == [2] and [len(c) for c in cag.calls] == [1]

"""`covip_gpt` and `covip_gemini`: the real openai and google-genai clients against loopback fake servers."""

from __future__ import annotations

import base64
import io

import pytest
from fake_servers import GEMINI_GENERATE, OPENAI_CHAT, FakeServer, Reply, gemini_body, openai_chat_body
from lmms_eval.api.instance import Instance
from PIL import Image

from covip.model_adapters.chat import BlockedText, ChatRequest
from covip.model_adapters.gemini import Gemini
from covip.model_adapters.gpt import GPT
from covip.tasks.prompts import CAG_CAPTION, CAPTION_INSTRUCTION, MEMORY_SYSTEM_PROMPT, cag_messages, user_turn
from covip.tasks.results.pricing import estimated_cost_usd

KEY = "sk-test-secret-0123456789"
GEN = {"max_new_tokens": 77, "temperature": 0, "do_sample": False}
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(autouse=True)
def keys(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("COVIP_HOME", str(tmp_path))  # each test its own answer cache


def messages() -> list[dict]:
    images = [Image.new("RGB", (40, 30), c) for c in COLOURS[:2]]
    return user_turn(images, ["User: Anna.\n", "User: Bob.\n"], Image.new("RGB", (40, 30), COLOURS[2]), "Describe.")


def colour(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB").getpixel((0, 0))


def gpt(server: FakeServer, **options) -> GPT:
    options = {"max_retries": 2, "retry_base_delay": 0.01, "timeout": 5, **options}
    return GPT(base_url=server.url + "/v1", **options)


def gemini(server: FakeServer, **options) -> Gemini:
    options = {"max_retries": 2, "retry_base_delay": 0.01, "timeout": 5, **options}
    return Gemini(base_url=server.url, **options)


def openai_ok(server: FakeServer, text: str = "a caption", usage: dict | None = None) -> FakeServer:
    body = openai_chat_body(text)
    body["usage"] = usage or {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    return server.route(OPENAI_CHAT, lambda r: Reply(body=body))


# ---- OpenAI ---------------------------------------------------------------------------------


def test_gpt4o_payload_keeps_interleaving_system_prompt_and_max_tokens():
    with openai_ok(FakeServer()) as server:
        model = gpt(server, model="gpt-4o", detail="low", system_prompt="Be brief.")
        [result] = model.generate_until([instance(messages(), model)])
    [request] = server.requests
    body = request.json
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-4o" and body["max_tokens"] == 77 and body["temperature"] == 0
    assert "max_completion_tokens" not in body
    system, user = body["messages"]
    assert system == {"role": "system", "content": "Be brief."} and user["role"] == "user"
    parts = user["content"]
    expected = messages()[0]["content"]
    assert [p["type"] for p in parts] == ["text" if e["type"] == "text" else "image_url" for e in expected]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts == [e["text"] for e in expected if e["type"] == "text"]
    images = [p["image_url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 3 and all(i["detail"] == "low" for i in images)
    decoded = [colour(base64.b64decode(i["url"].split("base64,", 1)[1])) for i in images]
    assert decoded == COLOURS  # order kept: two context images, then the query
    assert result.text == "a caption"
    assert (result.token_counts.input_tokens, result.token_counts.output_tokens) == (100, 20)


def test_gpt5_uses_max_completion_tokens_and_no_temperature():
    usage = {"prompt_tokens": 10, "completion_tokens": 50, "completion_tokens_details": {"reasoning_tokens": 30}}
    with openai_ok(FakeServer(), usage=usage) as server:
        [reply] = gpt(server, model="gpt-5", reasoning_effort="low").generate_chat([ChatRequest(messages(), GEN)])
    body = server.requests[0].json
    assert body["max_completion_tokens"] == 77 and body["reasoning_effort"] == "low"
    assert "temperature" not in body and "max_tokens" not in body
    assert (reply.output_tokens, reply.reasoning_tokens) == (20, 30)


def test_gpt5_reasoning_tokens_are_headroom_on_top_of_the_tasks_budget():
    with openai_ok(FakeServer()) as server:
        gpt(server, model="gpt-5", reasoning_tokens=2000).generate_chat([ChatRequest(messages(), GEN)])
    assert server.requests[0].json["max_completion_tokens"] == 77 + 2000


PAPER_SAMPLING = {"max_new_tokens": 77, "do_sample": True, "temperature": 0.7, "top_p": 0.8, "presence_penalty": 1.5}


def test_the_paper_presets_sampling_reaches_the_apis_with_its_presence_penalty():
    with openai_ok(FakeServer()) as server:
        gpt(server, model="gpt-4o").generate_chat([ChatRequest(messages(), PAPER_SAMPLING)])
        gpt(server, model="gpt-5").generate_chat([ChatRequest(messages(), PAPER_SAMPLING)])
    sampled, reasoning = (r.json for r in server.requests)
    assert (sampled["temperature"], sampled["top_p"], sampled["presence_penalty"]) == (0.7, 0.8, 1.5)
    assert "presence_penalty" not in reasoning and "temperature" not in reasoning  # gpt-5 rejects them
    with FakeServer().route(GEMINI_GENERATE, lambda r: Reply(body=gemini_body("a caption"))) as server:
        gemini(server, model="gemini-2.0-flash").generate_chat([ChatRequest(messages(), PAPER_SAMPLING)])
    config = server.requests[0].json["generationConfig"]
    assert (config["temperature"], config["topP"], config["presencePenalty"]) == (0.7, 0.8, 1.5)


def test_budget_spent_on_reasoning_is_a_failed_request_not_an_empty_caption():
    body = openai_chat_body("")
    body["choices"][0]["finish_reason"] = "length"
    body["usage"] = {
        "prompt_tokens": 10,
        "completion_tokens": 77,
        "completion_tokens_details": {"reasoning_tokens": 77},
    }
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=body)) as server:
        with pytest.raises(RuntimeError, match=r"budget was spent .* 77 reasoning tokens.*reasoning_tokens"):
            gpt(server, model="gpt-5").generate_chat([ChatRequest(messages(), GEN)])
        assert len(server.requests) == 1  # the same budget would fail again: not retried
        model = gpt(server, model="gpt-5", allow_errors=True)
        [reply] = model.generate_chat([ChatRequest(messages(), GEN)])
    assert reply.text == "" and reply.blocked == "error: EmptyAnswer" and model.failed == 1


def test_gpt_retries_429_honouring_retry_after_then_succeeds():
    server = openai_ok(FakeServer())
    server.script(
        OPENAI_CHAT, Reply(status=429, body={"error": {"message": "slow down"}}, headers={"retry-after": "0.5"})
    )
    with server:
        [reply] = gpt(server).generate_chat([ChatRequest(messages(), GEN)])
    first, second = server.requests
    assert second.at - first.at >= 0.45
    assert reply.text == "a caption"


def test_gpt_persistent_500_fails_the_run_without_leaking_the_key():
    server = FakeServer().route(OPENAI_CHAT, lambda r: Reply(status=500, body={"error": {"message": "boom"}}))
    with server, pytest.raises(RuntimeError, match="1 of 1 requests failed") as info:
        gpt(server).generate_chat([ChatRequest(messages(), GEN)])
    assert len(server.requests) == 3  # 1 + max_retries
    assert KEY not in str(info.value)


def test_gpt_timeout_is_passed_to_the_client_and_retried():
    server = FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=openai_chat_body("late"), delay=3))
    with server, pytest.raises(RuntimeError, match="APITimeoutError"):
        gpt(server, timeout=0.3, max_retries=1).generate_chat([ChatRequest(messages(), GEN)])
    assert len(server.requests) == 2


def test_allow_errors_records_a_failed_answer_not_a_caption():
    server = FakeServer().route(OPENAI_CHAT, lambda r: Reply(status=500, body={"error": {"message": "boom"}}))
    with server:
        model = gpt(server, max_retries=0, allow_errors="true")
        [reply] = model.generate_chat([ChatRequest(messages(), GEN)])
    assert reply.text == "" and reply.blocked.startswith("error")
    assert model.failed == 1


def test_content_filter_is_a_blocked_outcome():
    body = openai_chat_body(None)
    body["choices"][0]["finish_reason"] = "content_filter"
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=body)) as server:
        model = gpt(server)
        [reply] = model.generate_chat([ChatRequest(messages(), GEN)])
    assert reply.blocked == "content_filter" and model.blocked == 1


def test_concurrency_is_bounded():
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=openai_chat_body("x"), delay=0.2)) as server:
        gpt(server, max_concurrency=2).generate_chat([ChatRequest(messages(), GEN) for _ in range(6)])
    assert server.max_in_flight == 2 and len(server.requests) == 6


def test_cag_runs_two_requests_with_the_caption_as_the_assistant_turn():
    answers = iter(["Anna at the beach.", "At the beach."])
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=openai_chat_body(next(answers)))) as server:
        model = gpt(server, cag_caption_tokens=300)
        images = [Image.new("RGB", (40, 30), c) for c in COLOURS[:2]]
        cag = cag_messages(images, ["User: Anna.\n", "User: Bob.\n"], Image.new("RGB", (40, 30), COLOURS[2]), "Where?")
        [reply] = model.generate_until([instance(cag, model)])
    stage1, stage2 = (r.json for r in server.requests)
    assert stage1["max_tokens"] == 300 and stage1["temperature"] == 0
    assert stage1["messages"][0] == {"role": "system", "content": MEMORY_SYSTEM_PROMPT}
    assert stage1["messages"][1]["content"][-1] == {"type": "text", "text": CAPTION_INSTRUCTION}
    assert [m["role"] for m in stage2["messages"]] == ["system", "user", "assistant", "user"]
    assert stage2["messages"][2]["content"] == "Anna at the beach." and CAG_CAPTION not in str(stage2)
    assert stage2["max_tokens"] == 77
    assert reply.text == "At the beach." and reply.token_counts.input_tokens == 2


def instance(msgs: list[dict], model) -> Instance:
    model.task_dict = {"t": {"test": [{"id": 0}]}}
    return Instance(
        request_type="generate_until",
        arguments=("ctx", lambda doc: msgs, GEN, 0, "t", "test"),
        idx=0,
        metadata={"task": "t", "doc_id": 0, "repeats": 1},
    )


# ---- Gemini ---------------------------------------------------------------------------------


def test_gemini_payload_has_interleaved_parts_inline_images_and_settings():
    body = gemini_body("a caption")
    body["usageMetadata"] = {"promptTokenCount": 50, "candidatesTokenCount": 7, "thoughtsTokenCount": 3}
    with FakeServer().route(GEMINI_GENERATE, lambda r: Reply(body=body)) as server:
        model = gemini(server, model="gemini-3-pro-preview", thinking_budget=128)
        msgs = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, *messages()]
        [reply] = model.generate_chat([ChatRequest(msgs, GEN)])
    [request] = server.requests
    assert request.match["model"] == "gemini-3-pro-preview"
    assert request.headers["x-goog-api-key"] == KEY
    payload = request.json
    assert payload["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    config = payload["generationConfig"]
    assert config["maxOutputTokens"] == 77 + 128 and config["temperature"] == 0  # thinking tokens count as output
    assert list(config["thinkingConfig"].values()) == [128]  # the SDK decides the key spelling
    [content] = payload["contents"]
    parts = content["parts"]
    expected = messages()[0]["content"]
    assert ["text" if "text" in p else "image" for p in parts] == [e["type"] for e in expected]
    assert [p["text"] for p in parts if "text" in p] == [e["text"] for e in expected if e["type"] == "text"]
    inline = [p.get("inlineData") or p["inline_data"] for p in parts if "text" not in p]
    assert [i.get("mimeType") or i["mime_type"] for i in inline] == ["image/png"] * 3
    # google-genai sends URL-safe base64 without padding
    assert [colour(base64.urlsafe_b64decode(i["data"] + "=" * (-len(i["data"]) % 4))) for i in inline] == COLOURS
    assert (reply.text, reply.input_tokens, reply.output_tokens, reply.reasoning_tokens) == ("a caption", 50, 7, 3)


@pytest.mark.parametrize(
    "body",
    [
        {"promptFeedback": {"blockReason": "SAFETY"}},
        {"candidates": [{"finishReason": "SAFETY", "index": 0}]},
    ],
    ids=["prompt", "candidate"],
)
def test_gemini_safety_block_is_counted_and_is_no_caption(body):
    with FakeServer().route(GEMINI_GENERATE, lambda r: Reply(body=body)) as server:
        model = gemini(server)
        [result] = model.generate_until([instance(messages(), model)])
    assert isinstance(result.text, BlockedText) and result.text == "" and result.text.blocked
    assert "SAFETY" in result.text.reason and model.blocked == 1


def test_gemini_budget_spent_on_thinking_is_a_failed_request():
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "", "thought": True}]}, "finishReason": "MAX_TOKENS"}
        ],
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 0, "thoughtsTokenCount": 77},
    }
    with FakeServer().route(GEMINI_GENERATE, lambda r: Reply(body=body)) as server:
        with pytest.raises(RuntimeError, match=r"MAX_TOKENS, 77 thinking tokens.*thinking_budget"):
            gemini(server, model="gemini-3-pro-preview").generate_chat([ChatRequest(messages(), GEN)])
    assert server.requests[0].json["generationConfig"]["maxOutputTokens"] == 77  # no budget given: none added
    assert len(server.requests) == 1


def test_gemini_retries_429_and_500_then_fails_loudly():
    server = FakeServer().route(GEMINI_GENERATE, lambda r: Reply(status=500, body={"error": {"code": 500}}))
    server.script(GEMINI_GENERATE, Reply(status=429, body={"error": {"code": 429}}, headers={"retry-after": "0.3"}))
    with server, pytest.raises(RuntimeError, match="requests failed") as info:
        gemini(server).generate_chat([ChatRequest(messages(), GEN)])
    assert len(server.requests) == 3 and server.requests[1].at - server.requests[0].at >= 0.25
    assert KEY not in str(info.value)


def test_missing_key_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        Gemini(model="gemini-2.0-flash")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        GPT(model="gpt-4o")


def test_cost_estimate_uses_the_longest_matching_price():
    assert estimated_cost_usd("gpt-4o-2024-08-06", 1_000_000, 100_000) == pytest.approx(3.5)
    assert estimated_cost_usd("gemini-2.0-flash", 1_000_000, 1_000_000) == pytest.approx(0.5)
    assert estimated_cost_usd("my-local-model", 1, 1) is None


def test_a_blocked_answer_reaches_the_caption_record_marked_blocked():
    from lmms_eval.api.reasoning import strip_reasoning_tags

    from covip.tasks.lmms.caption import caption_record

    options = {"A": "a", "B": "b", "C": "c", "D": "The answer cannot be determined"}
    qa = {"id": "Q1", "question": "Where?", "options": options, "answer": "A"}
    doc = {
        "sample_id": "s0",
        "bucket": 1,
        "control": "none",
        "concepts": [{"name": "Anna", "qas": [qa]}],
        "positives": [0],
    }
    tags = [["<think>", "</think>"]]  # lmms-eval strips reasoning tags before scoring: the reason must survive it
    blocked = caption_record(doc, strip_reasoning_tags(BlockedText("candidate blocked: SAFETY"), tags))
    plain = caption_record(doc, "Anna is here.")
    assert blocked.model_blocked == "candidate blocked: SAFETY" and blocked.caption == ""
    assert plain.model_blocked is None

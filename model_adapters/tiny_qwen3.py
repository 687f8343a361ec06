"""Tiny, randomly initialised Qwen3 checkpoints built offline, loadable with `from_pretrained`.

For a first run with no download (`covip-train make-tiny-model DIR`), the tests and the CPU smoke
modes of the benchmarks: the real Qwen3-VL (and Qwen3 text) code paths at toy size. A byte-level
BPE trained on a small corpus with Qwen's special tokens and a Qwen-style chat template, wrapped as
`Qwen2Tokenizer`; a `Qwen3VLProcessor`; a dense or MoE config with hidden size 64 and 2 layers.
`head_dim=64` is what vLLM needs to load it. Weights are seeded, so two builds are identical. A
model saves in ~1 MB and builds in well under a second. Speed and memory mean nothing at this size,
and its outputs are noise.
"""

from __future__ import annotations

from pathlib import Path

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen3-VL's chat format without tools: no default system prompt, images and videos as
# vision_start/pad/vision_end, one `<|im_start|>role ... <|im_end|>` block per message.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in item -%}{{- item['text'] -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

CORPUS = (
    "===== Dialogue 1 ===== ===== New Image ===== User: This is Anna, my cat. Model: What a lovely cat! "
    "Describe the new image by integrating relevant information from this memory. "
    "We went to the beach in July for a picnic; she always sleeps on the sofa and we call her Muffin. "
    "The photo shows a red ball, a blue mug and a green plant on a wooden table in the kitchen. "
    "Where did I last see the one in the new image? What was I doing? 0123456789 .,;:!?'\"()-"
)


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 into (t, h, w) like Qwen3-VL's [24, 20, 20] for head_dim 128."""
    half = head_dim // 2
    hw = half * 5 // 16
    return [half - 2 * hw, hw, hw]


def tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE over a small corpus with Qwen's special tokens and chat template, as `Qwen2Tokenizer`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([CORPUS] * 4, trainer=trainer)
    bpe.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _text_config(ids: dict[str, int], moe: bool, head_dim: int, hidden_size: int, num_layers: int, vocab: int) -> dict:
    """The language model's config values, shared by the VL model and the text-only one."""
    text = {
        "vocab_size": vocab,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": head_dim,
        "max_position_embeddings": 4096,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": False,
    }
    if moe:
        text |= {
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": hidden_size,
            "decoder_sparse_step": 1,
        }
    return text


def build_tiny_qwen3_vl(
    out_dir: Path,
    *,
    moe: bool = False,
    head_dim: int = 64,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 512,
    max_pixels: int = 128 * 128,
    seed: int = 0,
) -> Path:
    """Write a tiny random Qwen3-VL (config, weights, tokenizer, processor) to `out_dir` and return it."""
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLMoeConfig,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text = _text_config(ids, moe, head_dim, hidden_size, num_layers, vocab_size)
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5_000_000.0,
        "mrope_section": _mrope_section(head_dim),
        "mrope_interleaved": True,
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": hidden_size,
        "num_position_embeddings": 64,  # a perfect square, as the position interpolation needs
        "deepstack_visual_indexes": [1],
    }
    config_cls = Qwen3VLMoeConfig if moe else Qwen3VLConfig
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.eos_token_id = ids["<|im_end|>"]
    config.pad_token_id = ids["<|endoftext|>"]
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    _save(model, ids, out_dir)

    size = {"shortest_edge": 32 * 32, "longest_edge": max_pixels}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, size=size),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, size=size),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_qwen3_lm(
    out_dir: Path, *, moe: bool = False, hidden_size: int = 64, num_layers: int = 2, vocab: int = 512, seed: int = 0
) -> Path:
    """Write a tiny random Qwen3 (or Qwen3-MoE, the paper's judge architecture) text model and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config, Qwen3MoeConfig

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(vocab)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text = _text_config(ids, moe, 32, hidden_size, num_layers, vocab)
    config = (Qwen3MoeConfig if moe else Qwen3Config)(**text, rope_theta=1_000_000.0)
    torch.manual_seed(seed)
    _save(AutoModelForCausalLM.from_config(config, dtype=torch.float32), ids, out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _save(model, ids: dict[str, int], out_dir: Path) -> None:
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir)

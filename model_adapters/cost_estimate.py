"""What an API run will cost, printed before it sends anything: the model's requests, and judging their answers.

The estimate is counted from the run's actual requests (lmms-eval hands them to `generate_until`), less those
already answered (the answer cache; lmms-eval's `--use_cache` hits never reach the model). Every count is stated:
- text: 4 characters a token, plus a few tokens a message (`covip.judges.budget`);
- OpenAI images: the published rule of the model's family: a 512-px tile count (fit in 2048x2048, shortest side at
  most 768 px; base + per-tile tokens, `detail: low` the base alone; `auto` counted as high, an upper bound), or
  32-px patches times a multiplier (capped at 1536 patches) for the patch-counted models;
- Gemini images: 258 tokens up to 384x384 px, else 258 per 768x768 tile (Gemini 2.x); 1120 on Gemini 3 (its
  default media resolution for images, high);
- output: every call spends its whole output budget (the task's `max_new_tokens` plus reasoning headroom; a CAG
  caption its `cag_caption_tokens`): an upper bound, the amount the budget reserves;
- judging: one call per question, each with the answer it judges at its longest, at the judge's `max_tokens`.
Prices are the list prices of `covip.judges.pricing`, whose date is printed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from PIL import Image

from covip.judges.budget import MESSAGE_TOKENS, text_tokens
from covip.judges.pricing import PRICES_DATE, listed_name
from covip.judges.prompt import binary_prompt, mcqa_prompt
from covip.judges.protocol import MCQA, format_question
from covip.model_adapters.cag import stage1_request, stage2_request
from covip.model_adapters.chat import ChatRequest, Reply, load_image
from covip.tasks.prompts import is_cag

if TYPE_CHECKING:
    from lmms_eval.api.instance import Instance

    from covip.model_adapters.api import ApiAdapter

# OpenAI's published image-token rules. Tile models: (base tokens, tokens per 512-px tile).
OPENAI_TILES: dict[str, tuple[int, int]] = {
    "gpt-4o": (85, 170),
    "gpt-4.1": (85, 170),
    "gpt-4o-mini": (2833, 5667),
    "gpt-5": (70, 140),
    "o1": (75, 150),
    "o3": (75, 150),
}
# Patch models: tokens per 32-px patch, at most 1536 patches an image.
OPENAI_PATCHES: dict[str, float] = {
    "gpt-4.1-mini": 1.62,
    "gpt-4.1-nano": 2.46,
    "gpt-5-mini": 1.62,
    "gpt-5-nano": 2.46,
    "o4-mini": 1.72,
}
MAX_PATCHES = 1536
GEMINI_TILE_TOKENS = 258
GEMINI_3_IMAGE_TOKENS = 1120


def openai_image_tokens(model: str, width: int, height: int, detail: str) -> int:
    """Input tokens of one image for an OpenAI model (`auto` detail counted as `high`, an upper bound).

    A model outside both tables (a local server's, a new one) is counted with gpt-4o's rule.
    """
    name = listed_name(model)
    if name in OPENAI_PATCHES:
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > MAX_PATCHES:  # scaled down to fit the cap, then to a whole number of patches on one side
            scale = math.sqrt(MAX_PATCHES * 32 * 32 / (width * height))
            across, down = width * scale / 32, height * scale / 32
            scale *= min(math.floor(across) / across, math.floor(down) / down)
            fit = [math.ceil(side * scale / 32 - 1e-9) for side in (width, height)]
            patches = min(MAX_PATCHES, fit[0] * fit[1])
        return math.ceil(patches * OPENAI_PATCHES[name])
    base, per_tile = OPENAI_TILES.get(name, OPENAI_TILES["gpt-4o"])
    if detail == "low":
        return base
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return base + per_tile * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


def gemini_image_tokens(model: str, width: int, height: int) -> int:
    """Input tokens of one image for a Gemini model (see the module docstring)."""
    if listed_name(model).startswith("gemini-3"):
        return GEMINI_3_IMAGE_TOKENS
    if width <= 384 and height <= 384:
        return GEMINI_TILE_TOKENS
    return GEMINI_TILE_TOKENS * math.ceil(width / 768) * math.ceil(height / 768)


def message_tokens(messages: list[dict], image_tokens: Callable[[int, int], int]) -> int:
    """A conversation's input tokens: texts at 4 characters a token, images by `image_tokens(width, height)`."""
    total = 0
    for m in messages:
        total += MESSAGE_TOKENS
        for item in [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]:
            if item["type"] == "image":
                value = item.get("url", item.get("image"))
                size = value.size if isinstance(value, Image.Image) else load_image(value).size
                total += image_tokens(*size)
            else:
                total += text_tokens(item["text"])
    return total


def model_calls(adapter: ApiAdapter, request: ChatRequest) -> Iterator[tuple[ChatRequest, int, bool]]:
    """The calls a request makes: (call, output tokens it adds to the input, answered before), CAG's two stages."""
    if not is_cag(request.messages):
        yield request, 0, stored(adapter, request) is not None
        return
    stage1 = stage1_request(request, adapter.cag_caption_tokens)
    caption = stored(adapter, stage1)
    yield stage1, 0, caption is not None
    stage2 = stage2_request(request, caption.text if caption else "")
    yield (
        stage2,
        0 if caption else adapter.cag_caption_tokens,
        caption is not None and stored(adapter, stage2) is not None,
    )


def stored(adapter: ApiAdapter, request: ChatRequest) -> Reply | None:
    if adapter.cache is None:
        return None
    found = adapter.cache.get_many([adapter.answer_key(request)])
    return Reply(**json.loads(next(iter(found.values())))) if found else None


def judge_prompts(adapter: ApiAdapter, instance: Instance, tasks: dict[str, Any]) -> tuple[str, list[int]]:
    """The judge (`mcqa` or `binary`) that will judge this request's answer, and each judge call's input tokens."""
    from covip.tasks.results.records import CaptionRecord

    _, _, gen_kwargs, doc_id, task, split = instance.args
    record = tasks[task].make_record(adapter.task_dict[task][split][doc_id], "")
    answer = int(gen_kwargs.get("max_new_tokens", 0))  # the answer judged, at its longest
    if isinstance(record, CaptionRecord):
        prompts = [
            mcqa_prompt("", format_question(MCQA(q.qid, "", q.question, dict(q.options)))) for q in record.questions
        ]
        return "mcqa", [text_tokens(p) + answer for p in prompts]
    if record.task == "lar":
        return "binary", [text_tokens(binary_prompt("", record.reference)) + answer]
    return "none", []


def judge_line(kind: str, counts: list[int]) -> str:
    from covip.tasks.scoring.judging import ENV_JUDGE, run_binary_judge, run_judge

    judge = run_judge() if kind == "mcqa" else run_binary_judge()
    name = f"{'CapEval-QAs' if kind == 'mcqa' else 'LAR'} judge {judge.spec.judge_id} ({ENV_JUDGE})"
    runner = getattr(judge, "runner", None)
    if runner is None:
        return f"  {name}: {len(counts)} questions, offline: free"
    ceiling = runner.cost_ceiling(sum(counts), len(counts))
    cost = "cost not estimated" if ceiling is None else f"at most ${ceiling:.4f}"
    budget = "" if runner.budget is None else f"; its max_cost_usd: ${runner.budget.limit:g}"
    return (
        f"  {name}: {len(counts)} questions, ~{sum(counts):,} input tokens (answers at their longest): "
        f"{cost} ({runner.pricing_note()}; answers it has cached are free){budget}"
    )


def log_estimate(adapter: ApiAdapter, instances: list[Instance]) -> None:
    """Print the estimated cost of these requests and of judging their answers (see the module docstring)."""
    from covip.tasks.lmms.task import CovipTask

    tasks = {t.config.task: t for t in CovipTask.loaded}  # the latest task of each name: this run's
    calls = answered = tokens_in = tokens_out = 0
    judged: dict[str, list[int]] = {"mcqa": [], "binary": [], "none": []}
    for start in range(0, len(instances), adapter.WINDOW):
        window = instances[start : start + adapter.WINDOW]
        for instance, request in zip(window, adapter.chat_requests(window), strict=True):
            for call, extra, cached in model_calls(adapter, request):
                calls += 1
                if cached:
                    answered += 1
                    continue
                tokens_in += adapter.prompt_tokens(call.messages) + extra
                tokens_out += adapter.output_ceiling(call.gen_kwargs)
            if instance.args[4] in tasks:
                kind, counts = judge_prompts(adapter, instance, tasks)
                judged[kind] += counts
    price = adapter.price
    cost = "no list price: cost not estimated" if price is None else f"at most ${price.cost(tokens_in, tokens_out):.4f}"
    batch = ", OpenAI Batch API at half price" if adapter.batch else ""
    budget = "" if adapter.budget is None else f"; max_cost_usd: ${adapter.budget.limit:g}"
    lines = [
        f"{adapter.provider} model {adapter.model}: estimated cost before sending "
        f"(list prices of {PRICES_DATE}{batch}):",
        f"  model: {len(instances)} requests, {calls} calls ({answered} answered before, from the answer cache); "
        f"{calls - answered} to send: ~{tokens_in:,} input tokens ({adapter.counting_note()}), at most "
        f"{tokens_out:,} output tokens (every call its whole output budget): {cost}{budget}",
    ]
    lines += [judge_line(kind, judged[kind]) for kind in ("mcqa", "binary") if judged[kind]]
    print("\n".join(lines), file=sys.stderr, flush=True)

"""A whole CoViP captioning evaluation on one GPU, stage by stage: how long until a model has its row.

Set: our builder's test split over 1-4 concepts, `--per-bucket` samples each (350: 1,400 samples and 31,500
CapEval-QAs, the paper's size or a little more), built where the benchmark runs. Models, random weights,
bf16, both on one GPU: the policy is Qwen3-VL-8B's architecture, the judge Qwen3-30B-A3B-Instruct-2507's
(the paper's). Stages, each timed with the GPU's peak memory:
1. load the policy (built with random weights: no checkpoint is read);
2. generate: `covip_qwen3_vl` with its default options through lmms-eval's `generate_until` on `Instance`s,
   requests in the order lmms-eval gives them for `covip_caption` (bucket 1 to 4), exactly `--new-tokens` each;
3. load the judge beside the policy;
4. judge: every question through the `hf` judge's default scoring mode (`LLMJudge`, cache off);
5. aggregate: Acc+ and Acc- per bucket.
Beside it, the reference's way, measured on slices and extrapolated linearly to the whole set (stated as such
in the report): lmms-eval's built-in `qwen3_vl` at `--builtin-batch` on a slice with equally many samples
per bucket (one full warm-up, then timed), and the `hf` judge one question at a time (`mode=generate`,
at most `--sequential-tokens` new tokens per answer).

  python benchmarks/qwen3_vl_throughput.py prepare --out runs/bench     # here: the tokenizer (and more)
  python benchmarks/full_eval.py --tokenizer runs/bench/tokenizer --out RESULT.json   # on the GPU
  python benchmarks/full_eval.py --tokenizer T --out r.json --smoke --per-bucket 1       # CPU check
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capeval_set import VERDICTS, accuracies, build_test_set, load_samples, questions  # noqa: E402
from qwen3_vl_8b import build_qwen3_30b_a3b, build_qwen3_vl_8b, peak_gib  # noqa: E402
from worktree import check_working_tree, use_working_tree  # noqa: E402

# At import, so that the builder's worker processes, which re-import this script (multiprocessing's spawn), also
# import covip from the working tree: on the GPU machine nothing else provides it.
use_working_tree()

TASK, SPLIT = "covip_caption", "test"


class Stages:
    """Wall time and peak GPU memory of each stage, in order."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.report: dict[str, dict] = {}

    def __call__(self, name: str, fn):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = fn()
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.report[name] = {"seconds": round(time.perf_counter() - t0, 1), "peak_gib": peak_gib()}
        print(name, self.report[name], flush=True)
        return result


def instances(samples: list, root: Path, gen_kwargs: dict) -> tuple[list, dict]:
    """lmms-eval `Instance`s over the samples and the task_dict they index, the images opened by
    `doc_to_messages` as a task does."""
    from lmms_eval.api.instance import Instance

    from covip.model_adapters.chat import load_image
    from covip.tasks.prompts import CAPTION_INSTRUCTION, user_turn

    def doc_to_messages(sample) -> list[dict]:
        images = [load_image(str(root / c.image)) for c in sample.concepts]
        dialogues = [c.dialogue for c in sample.concepts]
        return user_turn(images, dialogues, load_image(str(root / sample.query_image)), CAPTION_INSTRUCTION)

    requests = [
        Instance(
            request_type="generate_until",
            arguments=("", doc_to_messages, dict(gen_kwargs), i, TASK, SPLIT),
            idx=0,
            metadata={"task": TASK, "doc_id": i, "repeats": 1},
        )
        for i in range(len(samples))
    ]
    return requests, {TASK: {SPLIT: samples}}


def stratified(samples: list, n: int) -> list:
    """`n` samples, equally many from each bucket (the set has equally many per bucket)."""
    buckets = sorted({s.bucket for s in samples})
    per = max(1, n // len(buckets))
    return [s for b in buckets for s in [x for x in samples if x.bucket == b][:per]]


def judge_of(model, tokenizer, mode: str, **decoding):
    from covip.judges.hf_backend import HFBackend
    from covip.judges.llm import LLMJudge
    from covip.judges.presets import PRESETS, decoding_for

    backend = HFBackend.from_loaded(model, tokenizer, "qwen3-30b-a3b-random", mode=mode)
    strict = PRESETS["strict"]
    decoding = decoding_for(strict, decoding)
    return LLMJudge(backend, strict, decoding, cache=None, concurrency=backend.default_concurrency)


def run(args: argparse.Namespace) -> None:
    import torch
    import transformers
    from qwen3_vl_throughput import builtin_adapter

    from covip.model_adapters.qwen3_vl import Qwen3VL

    device = "cpu" if args.smoke else "cuda"
    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    t0 = time.perf_counter()
    root = build_test_set(args.data, args.per_bucket)
    samples = sorted(load_samples(root), key=lambda s: s.bucket)  # covip_caption_1c ... _4c, as lmms-eval asks
    report["data_build_s"] = round(time.perf_counter() - t0, 1)
    report["samples"] = len(samples)
    gen = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens, "temperature": 0, "do_sample": False}
    stage = Stages(device)

    model, processor = stage("load_policy", lambda: build_qwen3_vl_8b(args.tokenizer, device))
    requests, task_dict = instances(samples, root, gen)
    ours = Qwen3VL.from_loaded(model, processor, batch_size=args.batch)
    ours.task_dict = task_dict
    report["decode"] = "static cache, compiled step" if ours.static_cache else "dynamic cache"
    results = stage("generate", partial(ours.generate_until, requests))
    captions = [r.text for r in results]
    report["output_tokens"] = sorted({r.token_counts.output_tokens for r in results})
    del ours
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()

    # the reference's generation, on a slice (kept out of the stages above)
    slice_ = stratified(samples, args.builtin_slice)
    slice_requests, slice_dict = instances(slice_, root, gen)
    builtin = builtin_adapter(model, processor, args.builtin_batch, slice_dict, device)
    builtin.generate_until(slice_requests)  # warm-up: the same full run
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    builtin.generate_until(slice_requests)
    if device == "cuda":
        torch.cuda.synchronize()
    per_sample = (time.perf_counter() - t0) / len(slice_)
    del builtin
    gc.collect()

    judge_model, tokenizer = stage("load_judge", lambda: build_qwen3_30b_a3b(args.tokenizer, device))
    items = [q for s, c in zip(samples, captions, strict=True) for q in questions(s, c)]
    report["questions"] = len(items)
    scoring = judge_of(judge_model, tokenizer, "score")
    verdicts = stage("judge", lambda: scoring.judge_many(items))
    report["judge_letters"] = {x: sum(v.letter == x for v in verdicts) for x in VERDICTS}
    report["accuracy_by_bucket"] = stage("aggregate", lambda: accuracies(samples, verdicts))
    report["stages"] = stage.report
    report["total_s"] = round(sum(s["seconds"] for s in stage.report.values()), 1)
    report["peak_gib"] = max(s["peak_gib"] for s in stage.report.values())

    one_at_a_time = judge_of(judge_model, tokenizer, "generate", max_tokens=8)
    one_at_a_time.judge_many(items[:1])  # warm-up
    one_at_a_time = judge_of(judge_model, tokenizer, "generate", max_tokens=args.sequential_tokens)
    t0 = time.perf_counter()
    one_at_a_time.judge_many(items[: args.sequential])
    per_question = (time.perf_counter() - t0) / args.sequential
    report["reference_way_extrapolated"] = {
        "note": "measured on slices, extrapolated linearly to the whole set",
        "builtin_qwen3_vl": {
            "batch": args.builtin_batch,
            "slice_samples": len(slice_),
            "s_per_sample": round(per_sample, 3),
            "generate_s": round(per_sample * len(samples), 0),
        },
        "hf_judge_one_at_a_time": {
            "max_new_tokens": args.sequential_tokens,
            "slice_questions": args.sequential,
            "s_per_question": round(per_question, 2),
            "judge_s": round(per_question * len(items), 0),
        },
    }
    report["covip_modules"] = len(check_working_tree())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer folder written by a benchmark's prepare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=Path("/tmp/covip_full_eval"), help="where the set is built")
    p.add_argument("--per-bucket", type=int, default=350)
    p.add_argument("--batch", type=int, default=128, help="covip_qwen3_vl batch_size")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--builtin-batch", type=int, default=64)
    p.add_argument("--builtin-slice", type=int, default=64, help="samples of the built-in's slice")
    p.add_argument("--sequential", type=int, default=2, help="questions judged one at a time")
    p.add_argument("--sequential-tokens", type=int, default=128)
    p.add_argument("--smoke", action="store_true", help="CPU, 2-layer models: checks the script only")
    run(p.parse_args())


if __name__ == "__main__":
    main()

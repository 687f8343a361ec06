"""Questions/s of the `hf` judge scoring CapEval-QAs (its default mode) against the same backend generating one
question at a time (`mode=generate`, what `hf` did before), on the paper's judge architecture.

Model: Qwen3-30B-A3B-Instruct-2507's architecture with random weights, bf16, sdpa, built on the GPU (targets:
>= 50 questions/s, >= 100x one at a time). Questions: our builder's test samples over 1-4 concepts (9-36
questions per caption), each caption an oracle caption (the positive concepts' dialogues, ~100-300 words),
real Qwen3 tokenizer. Both go through the real judge (`LLMJudge`: prompts, runner, parsing), cache off.
The scoring judge is warmed on the first 512 questions, then timed on all; the one-at-a-time judge is warmed
on one question with 8 new tokens, then timed on a few questions with at most `--sequential-tokens` new
tokens each (random weights never stop early, so every answer is that long).

  python benchmarks/judge_hf.py prepare --out runs/judge_bench          # here: questions + tokenizer
  python benchmarks/judge_hf.py run --inputs runs/judge_bench --out RESULT.json   # on the GPU
  ... prepare --out runs/judge_smoke --per-bucket 1 --smoke; ... run --inputs runs/judge_smoke --out r.json --smoke
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capeval_set import VERDICTS, build_test_set, load_samples, questions  # noqa: E402
from qwen3_vl_8b import build_qwen3_30b_a3b, peak_gib, write_tokenizer  # noqa: E402
from worktree import check_working_tree, use_working_tree  # noqa: E402

# At import, so that the builder's worker processes, which re-import this script (multiprocessing's spawn), also
# import covip from the working tree: on the GPU machine nothing else provides it.
use_working_tree()

WARM_QUESTIONS = 512


def prepare(out: Path, per_bucket: int, smoke: bool) -> None:
    """Captions and their questions as JSON (no images travel), and the tokenizer."""
    from covip.model_adapters.baselines import recall_caption

    with tempfile.TemporaryDirectory() as tmp:
        samples = load_samples(build_test_set(Path(tmp) / "data", per_bucket))
    rows = []
    for s in samples:
        caption = recall_caption([s.concepts[k].dialogue for k in s.positives])
        rows.append({"caption": caption, "questions": [[q.qid, q.question, q.options] for q in questions(s, caption)]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "questions.json").write_text(json.dumps(rows))
    write_tokenizer(out / "tokenizer", smoke)
    print(f"{len(rows)} captions, {sum(len(r['questions']) for r in rows)} questions in {out}")


def load_questions(inputs: Path) -> list:
    from covip.judges.protocol import MCQA

    rows = json.loads((inputs / "questions.json").read_text())
    return [MCQA(qid, r["caption"], q, options) for r in rows for qid, q, options in r["questions"]]


def judge(model, tokenizer, mode: str, **decoding):
    from covip.judges.hf_backend import HFBackend
    from covip.judges.llm import LLMJudge
    from covip.judges.presets import PRESETS, decoding_for

    backend = HFBackend.from_loaded(model, tokenizer, "qwen3-30b-a3b-random", mode=mode)
    strict = PRESETS["strict"]
    return LLMJudge(
        backend, strict, decoding_for(strict, decoding), cache=None, concurrency=backend.default_concurrency
    )


def run(inputs: Path, out: Path, device: str, sequential: int, sequential_tokens: int) -> None:
    import torch
    import transformers

    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    items = load_questions(inputs)
    report["questions"] = len(items)
    report["captions"] = len({i.caption for i in items})
    t0 = time.perf_counter()
    model, tokenizer = build_qwen3_30b_a3b(inputs / "tokenizer", device)
    report["build_s"] = round(time.perf_counter() - t0, 1)
    report["params_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 2)
    report["experts_implementation"] = getattr(model.config, "_experts_implementation", None)
    report["weights_gib"] = peak_gib()

    scoring = judge(model, tokenizer, "score")
    scoring.judge_many(items[:WARM_QUESTIONS])
    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    scoring.runner.backend.scoring_stats = type(scoring.runner.backend.scoring_stats)()
    t0 = time.perf_counter()
    verdicts = scoring.judge_many(items)
    sync(device)
    seconds = time.perf_counter() - t0
    stats = scoring.runner.backend.scoring_stats
    report["score"] = {
        "seconds": round(seconds, 2),
        "questions_per_s": round(len(items) / seconds, 1),
        "peak_gib": peak_gib(),
        "forward_passes": stats.passes,
        "shared_prefixes": stats.prefixes,
        "tokens_encoded": stats.tokens,
        "letters": {x: sum(v.letter == x for v in verdicts) for x in VERDICTS},
    }
    print("score", report["score"], flush=True)

    generating = judge(model, tokenizer, "generate", max_tokens=8)
    generating.judge_many(items[:1])
    generating = judge(model, tokenizer, "generate", max_tokens=sequential_tokens)
    t0 = time.perf_counter()
    answers = generating.judge_many(items[:sequential])
    sync(device)
    seconds = time.perf_counter() - t0
    report["one_at_a_time"] = {
        "questions": sequential,
        "max_new_tokens": sequential_tokens,
        "seconds": round(seconds, 2),
        "questions_per_s": round(sequential / seconds, 4),
        "letters": [v.letter for v in answers],
        "details": sorted({v.detail[:120] for v in answers if v.detail}),
    }
    report["speedup"] = round(report["score"]["questions_per_s"] / report["one_at_a_time"]["questions_per_s"], 1)
    report["covip_modules"] = len(check_working_tree())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-bucket", type=int, default=60, help="samples per bucket (60: 240 captions, 5,400 questions)")
    p.add_argument("--smoke", action="store_true", help="the tiny test tokenizer instead of the real Qwen3 one")
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--sequential", type=int, default=2, help="questions judged one at a time")
    r.add_argument("--sequential-tokens", type=int, default=128, help="new tokens per one-at-a-time answer")
    r.add_argument("--smoke", action="store_true", help="CPU, 2-layer MoE: checks the script only")
    args = parser.parse_args()
    if args.cmd == "prepare":
        if args.out.exists():
            shutil.rmtree(args.out)
        prepare(args.out, args.per_bucket, args.smoke)
    else:
        run(args.inputs, args.out, "cpu" if args.smoke else "cuda", args.sequential, args.sequential_tokens)


if __name__ == "__main__":
    main()

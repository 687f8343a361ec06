"""`openai` judge backend throughput against a loopback server that answers after 50 ms.

Compares, in one process and against the same server:
1. the reference's way: one blocking call at a time (the sync openai client, in a loop);
2. ours: the LLM judge with bounded concurrency (real async openai client, retries, parsing);
3. ours again from the cache: must make 0 calls.
Target (judges issue): ours >= 20x the reference. Run:
    .venv/bin/python benchmarks/judge_openai.py [--questions N] [--reference-questions M] [--concurrency C]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the loopback fake server of the tests

import openai  # noqa: E402
from fake_servers import openai_server  # noqa: E402
from judge_rule import make_items  # noqa: E402

from covip.judges.prompt import mcqa_prompt  # noqa: E402
from covip.judges.protocol import format_question  # noqa: E402
from covip.judges.registry import make_judge  # noqa: E402

DELAY_S = 0.05
TARGET = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--reference-questions", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    items = make_items(args.questions, seed=1)
    with openai_server(lambda prompt: "Answer: \\boxed{D}", delay=DELAY_S) as srv:
        base_url = f"{srv.url}/v1"
        client = openai.OpenAI(api_key="EMPTY", base_url=base_url, max_retries=0)
        start = time.perf_counter()
        for item in items[: args.reference_questions]:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": mcqa_prompt(item.caption, format_question(item))}]
            )
        ref_rate = args.reference_questions / (time.perf_counter() - start)
        client.close()

        with tempfile.TemporaryDirectory() as tmp:
            cache = str(Path(tmp) / "cache.sqlite")
            options = {"model": "m", "base_url": base_url, "cache": cache, "concurrency": args.concurrency}
            before = len(srv.requests)
            judge = make_judge("openai", **options)
            start = time.perf_counter()
            verdicts = judge.judge_many(items)
            ours = time.perf_counter() - start
            calls = len(srv.requests) - before
            assert all(v.letter == "D" for v in verdicts), "unexpected verdicts"
            before = len(srv.requests)
            again = make_judge("openai", **options)
            start = time.perf_counter()
            again.judge_many(items)
            cached = time.perf_counter() - start
            cached_calls = len(srv.requests) - before
    our_rate = len(items) / ours
    print(f"server answers after {DELAY_S * 1000:.0f} ms; max requests in flight seen: {srv.max_in_flight}")
    print(
        f"reference (one blocking call at a time): {ref_rate:,.1f} questions/s ({args.reference_questions} questions)"
    )
    print(f"ours (concurrency {args.concurrency}): {our_rate:,.1f} questions/s ({len(items)} questions, {calls} calls)")
    print(f"ours from the cache: {len(items) / cached:,.0f} questions/s, {cached_calls} calls")
    print(f"ratio ours / reference: {our_rate / ref_rate:.1f}x (target >= {TARGET:.0f}x)")


if __name__ == "__main__":
    main()

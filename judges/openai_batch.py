"""OpenAI's Batch API for chat completions: one uploaded JSONL file, answered within 24 hours at half the list price.

Used by the `openai` judge (`batch: true`) and `covip_gpt` (`batch=true`), with the same request bodies, cache and
answer parsing as their online calls: each request's `custom_id` is its cache key, so a batch answer lands in the
cache exactly where the online answer would. Steps:

1. requests whose key is already in a batch recorded as pending in the cache (a run killed while waiting) are not
   sent again: that batch is polled instead;
2. the others are written as JSONL files of at most 50,000 requests and 200 MB each (OpenAI's limits), uploaded
   (`POST /v1/files`, purpose `batch`) and submitted (`POST /v1/batches`); each batch id is recorded in the cache the
   moment it exists;
3. every batch is polled (`GET /v1/batches/{id}`) every `poll_interval` seconds, with a progress bar, until it ends;
4. its output and error files are downloaded (`GET /v1/files/{id}/content`); each answered line is handed to the
   caller, which parses and caches it, and only then is the batch forgotten. A request the batch did not answer
   (an error line, an expired or failed batch) comes back as `BatchRequestFailed`: never cached, so a rerun sends it
   again.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tqdm import tqdm

from covip.judges.budget import BudgetExceeded
from covip.judges.cache import JudgeCache
from covip.judges.resilience import Classifier, RetryPolicy, call_with_retries

T = TypeVar("T")
CHAT_URL = "/v1/chat/completions"
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
ENDED = ("completed", "failed", "expired", "cancelled")


class BatchRequestFailed(RuntimeError):
    """The batch did not answer this request (its error line, or the batch's own failure or expiry)."""


def reserve_all(keys: list[str], reserve: Callable[[str], float]) -> tuple[dict[str, float], dict[str, BaseException]]:
    """Each request's budget reservation, or its refusal: a batch is paid for as a whole, so reserve before sending."""
    reserved: dict[str, float] = {}
    refused: dict[str, BaseException] = {}
    for key in keys:
        try:
            reserved[key] = reserve(key)
        except BudgetExceeded as exc:
            refused[key] = exc
    return reserved, refused


def batch_lines(bodies: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """One JSONL line per request: custom_id (the cache key), method, url and the chat-completion body."""
    return {
        key: (
            json.dumps({"custom_id": key, "method": "POST", "url": CHAT_URL, "body": body}, ensure_ascii=False) + "\n"
        ).encode()
        for key, body in bodies.items()
    }


def chunks(lines: dict[str, bytes], max_requests: int, max_bytes: int) -> list[list[str]]:
    """Keys grouped into files within OpenAI's limits (a single line over the byte limit is an error)."""
    groups: list[list[str]] = []
    size = 0
    for key, line in lines.items():
        if len(line) > max_bytes:
            raise ValueError(f"batch request {key} is {len(line):,} bytes, over the {max_bytes:,}-byte file limit")
        if not groups or len(groups[-1]) == max_requests or size + len(line) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += len(line)
    return groups


@dataclass
class OpenAIBatch:
    """Runs chat-completion bodies through the Batch API of `client`; `endpoint` names the server in the cache."""

    client: Any  # openai.AsyncOpenAI
    cache: JudgeCache
    endpoint: str
    label: str
    classify: Classifier  # which failures of a call (upload, submit, poll, download) are worth another try
    poll_interval: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_requests: int = MAX_REQUESTS
    max_file_bytes: int = MAX_FILE_BYTES

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One API call, retried on transient failures: a rate limit must not end a day-long wait."""
        return await call_with_retries(fn, self.classify, self.retry)

    async def run(
        self, bodies: dict[str, dict[str, Any]], answered: Callable[[str, dict[str, Any]], T]
    ) -> dict[str, T | BaseException]:
        """`answered(key, response body)` (which stores the answer) or the failure, for every key of `bodies`.

        Answers that a resumed batch holds for other keys are handed to `answered` too: they were paid for.
        """
        pending = {
            batch_id: keys
            for batch_id, keys in self.cache.pending_batches(self.endpoint).items()
            if set(keys) & set(bodies)
        }
        waiting = {key for keys in pending.values() for key in keys}
        fresh = {k: b for k, b in bodies.items() if k not in waiting}
        if pending:
            print(
                f"{self.label}: resuming {len(pending)} OpenAI batch(es) submitted before: {', '.join(pending)}",
                file=sys.stderr,
                flush=True,
            )
        lines = batch_lines(fresh)
        for keys in chunks(lines, self.max_requests, self.max_file_bytes):
            pending[await self.submit(keys, lines)] = keys
        results: dict[str, T | BaseException] = {}
        sizes = {batch_id: len(keys) for batch_id, keys in pending.items()}
        progress = dict.fromkeys(pending, 0)
        with tqdm(total=sum(sizes.values()), desc=f"{self.label}: OpenAI batch", unit="request") as bar:
            while pending:
                for batch_id in list(pending):
                    batch = await self.call(lambda b=batch_id: self.client.batches.retrieve(b))
                    counts = batch.request_counts
                    progress[batch_id] = counts.completed + counts.failed if counts else 0
                    if batch.status in ENDED:
                        results.update(await self.collect(batch, pending.pop(batch_id), answered))
                        progress[batch_id] = sizes[batch_id]
                    bar.set_postfix_str(f"{batch_id}: {batch.status}")
                bar.update(sum(progress.values()) - bar.n)
                if pending:
                    await asyncio.sleep(self.poll_interval)
        return {key: results.get(key, BatchRequestFailed(f"{key}: no batch answered it")) for key in bodies}

    async def submit(self, keys: list[str], lines: dict[str, bytes]) -> str:
        data = b"".join(lines[k] for k in keys)
        upload = ("covip_batch.jsonl", data, "application/jsonl")
        uploaded = await self.call(lambda: self.client.files.create(file=upload, purpose="batch"))
        batch = await self.call(
            lambda: self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=CHAT_URL,
                completion_window="24h",
                metadata={"source": "covip-bench"},
            )
        )
        self.cache.add_batch(batch.id, self.endpoint, keys)
        print(
            f"{self.label}: submitted OpenAI batch {batch.id} ({len(keys)} requests, {len(data):,} bytes)",
            file=sys.stderr,
            flush=True,
        )
        return batch.id

    async def collect(
        self, batch: Any, keys: list[str], answered: Callable[[str, dict[str, Any]], T]
    ) -> dict[str, T | BaseException]:
        """The answers and failures of an ended batch; the batch is forgotten once its answers are stored."""
        out: dict[str, T | BaseException] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.call(lambda f=file_id: self.client.files.content(f))
            for line in content.text.splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                response = row.get("response") or {}
                if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                    out[row["custom_id"]] = answered(row["custom_id"], response["body"])
                else:
                    error = row.get("error") or (response.get("body") or {}).get("error") or response
                    out[row["custom_id"]] = BatchRequestFailed(f"batch {batch.id}: {json.dumps(error)[:300]}")
        reason = f"batch {batch.id} ended {batch.status}"
        if batch.errors and batch.errors.data:
            reason += ": " + "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data[:3])
        for key in keys:
            out.setdefault(key, BatchRequestFailed(f"{reason}, without an answer to this request"))
        self.cache.forget_batch(batch.id)
        return out

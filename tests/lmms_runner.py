"""The real `lmms_eval` command, run inside the test process.

Starting `lmms_eval` in a subprocess costs about 11 s of imports on a 2-core machine; in-process, each run pays only
for its own work. `run_lmms_eval` calls the command's `main` exactly as the console script does, with the
environment a user would set (restored afterwards), and returns the exit status, the output and what the run wrote.
A few tests keep real subprocesses (exit status, help, several processes) so that the console script itself stays
covered.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass
class LmmsRun:
    code: int
    output: str
    out: Path | None

    @property
    def results(self) -> dict[str, Any]:
        [path] = self.results_files()
        return json.loads(path.read_text(encoding="utf-8"))

    def results_files(self) -> list[Path]:
        return sorted(self.out.rglob("*_results.json")) if self.out else []

    @property
    def run_dir(self) -> Path:
        [path] = self.results_files()
        return path.parent

    def samples(self, task: str) -> list[dict[str, Any]]:
        [path] = self.run_dir.glob(f"*_samples_{task}.jsonl")
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _set_environment(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def environment(values: dict[str, str | None]):
    """The given variables set (None: unset) for the duration, then restored."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def run_lmms_eval(args: list[str], data: Path | None, out: Path | None = None, **env: str | None) -> LmmsRun:
    """`lmms_eval ARGS [--output_path OUT --log_samples]` with COVIP_DATA=data and the given environment."""
    from covip.tasks.cli.lmms_eval import main

    argv = [*args, *(["--output_path", str(out), "--log_samples"] if out else [])]
    values = {**OFFLINE, "COVIP_DATA": str(data) if data else None, **env}
    buffer = io.StringIO()
    saved_argv = sys.argv
    with environment(values), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            code = main(argv)
        finally:
            sys.argv = saved_argv
    return LmmsRun(code, buffer.getvalue(), out)

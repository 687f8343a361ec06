"""A leaderboard submission: one model's lmms-eval run directory, and its model card.

The run is read by `covip.tasks.results.run.read_run`, the one reader of a run directory, whatever the run's shape
(`--tasks 'covip_*'`, single tasks, groups); `validate.py` checks the rest. The card is read from, in order, the
`--card` file, then `card.yaml` beside the results. Fields the card leaves out are derived from what lmms-eval's
config says for sure (see `Submission.derived_card`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from covip.tasks.results import run as runs
from covip.tasks.results.run import Problem, Run, read_run

CARD_FILE = "card.yaml"
CARD_FIELDS = ("id", "name", "parameters", "base_model", "method", "training_data", "access", "date", "notes")
ACCESS = ("open", "api")
MODEL_ACCESS = {"covip_gpt": "api", "covip_gemini": "api", "covip_qwen3_vl": "open", "covip_vllm": "open"}
BASELINES = ("covip_oracle", "covip_shortcut", "covip_blind", "covip_retrieval")


@dataclass(frozen=True)
class Limits(runs.Limits):
    """The run reader's limits, and those of a model card."""

    card_bytes: int = 64 * 2**10
    card_chars: int = 500  # one card value


LIMITS = Limits()


@dataclass
class Submission:
    """A run and its card; `card_problems` are the card's reading problems (file, field, message)."""

    run: Run
    card: dict[str, Any] = field(default_factory=dict)
    card_file: str = ""
    card_problems: list[Problem] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.run.root

    @property
    def model_id(self) -> str:
        """The card's `id`, else lmms-eval's model name with its model_args (a checkpoint path, say)."""
        if self.card.get("id"):
            return str(self.card["id"])
        args = self.run.model_args
        return f"{self.run.model}({args})" if args else self.run.model

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.model_id)

    @property
    def derived_card(self) -> dict[str, str]:
        """Card fields the results themselves establish, shown where the card leaves them out.

        Only what lmms-eval's config says for sure: the base model is `pretrained=`, `lora=` means a LoRA adapter,
        the adapter tells open weights from an API, a baseline is one of ours, and the run's date. Parameters or
        training data are never guessed.
        """
        model, args = str(self.run.config.get("model") or ""), parse_model_args(self.run.model_args)
        card: dict[str, str] = {}
        if args.get("pretrained"):
            card["base_model"] = args["pretrained"]
        if args.get("lora"):
            card["method"], card["notes"] = "LoRA adapter", f"adapter: {args['lora']}"
        if model in BASELINES:
            card["method"] = f"baseline ({model.removeprefix('covip_')}, shipped with CoViP bench)"
        if model in MODEL_ACCESS:
            card["access"] = MODEL_ACCESS[model]
        stamps = sorted(str(r.get("date", "")) for r in self.run.results.values())
        m = re.match(r"^(\d{4})(\d{2})(\d{2})", stamps[-1]) if stamps else None
        if m:
            card["date"] = f"{m[1]}-{m[2]}-{m[3]}"
        return card


def parse_model_args(model_args: str) -> dict[str, str]:
    """lmms-eval's `--model_args` string `key=value,key=value` as a dict."""
    pairs = (item.split("=", 1) for item in model_args.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def load_submission(root: Path, card_path: Path | None = None, limits: Limits = LIMITS) -> Submission:
    """Read one submission directory (every results file and sample log) and its card."""
    sub = Submission(run=read_run(Path(root), limits))
    _load_card(sub, card_path, limits)
    return sub


def _load_card(sub: Submission, card_path: Path | None, limits: Limits) -> None:
    """The model card: the `--card` file, else `card.yaml` in the submission (it must lie inside it)."""
    path = card_path or sub.root / CARD_FILE
    name = str(path) if card_path is not None else CARD_FILE

    def problem(where: str, message: str) -> None:
        sub.card_problems.append(Problem(name, where, message))

    if card_path is None and (path.is_symlink() or path.exists()):
        if not path.resolve().is_relative_to(sub.root.resolve()):
            return problem("path", f"resolves to {path.resolve()}, outside the submission directory {sub.root}")
    if not path.is_file():
        if card_path is not None:
            problem("path", "no such file")
        return
    if path.stat().st_size > limits.card_bytes:
        return problem("size", f"{path.stat().st_size} bytes is over the limit of {limits.card_bytes}")
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        return problem("file", f"not valid YAML: {str(exc) or 'nested too deeply'}")
    sub.card_file = name
    if not isinstance(card, dict):
        return problem("card", "must be a mapping of card fields")
    # YAML reads an unquoted `date: 2025-01-01` as a date: keep it, as its ISO text.
    sub.card = {key: value.isoformat() if isinstance(value, date) else value for key, value in card.items()}

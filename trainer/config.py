"""The trainer's one typed configuration, its presets, and how YAML files and flags override it.

Precedence, lowest first: field defaults < the chosen `preset` < the YAML file < command-line
flags. GSPO, GRPO and DR-GRPO are the same trainer with different numbers, so an algorithm is a
preset (data), never a code path. `reference` reproduces the reference run as its code behaved,
defects included (on-policy "GSPO" whose ratio is always 1, the model's T=0.7/top-k 20/top-p 0.8
rollout sampling, the unnormalised caption reward, no recognition reward, no penalty for an empty
completion); `paper` is the method the paper describes on the same hyperparameters (GSPO that acts,
r = r_vis + r_caps, an empty completion degenerate); see docs/protocol.md §5.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REWARDS = ("capeval", "recognition", "degeneration", "truncation")
ROLLOUT_CACHES = ("auto", "static", "dynamic")


class SetupError(RuntimeError):
    """Something the user must fix before a run can start (missing data split, model that cannot load);
    `covip-train` prints it without a traceback. Its message names the fix."""


def _doc(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainConfig:
    """Everything a CoViP post-training run needs; `config_hash` identifies the run's behaviour."""

    # --- what to train, on what, where -----------------------------------------------------------
    model: str = field(default="Qwen/Qwen3-VL-8B-Instruct", metadata=_doc("base model: hub id or local directory"))
    data: str = field(
        default="default",
        metadata=_doc(
            "canonical dataset directory with caption_train.jsonl (`covip-data build --split train`); "
            "'default' means $COVIP_HOME/benchmark; 'hf:<id or path>' reads the paper's HF captioning layout"
        ),
    )
    split: str = field(default="train", metadata=_doc("dataset split to train on"))
    output_dir: str = field(default="runs/train", metadata=_doc("run directory: checkpoints, logs, config"))
    max_samples: int | None = field(default=None, metadata=_doc("use only the first N caption samples (None: all)"))
    recognition_ratio: float = field(
        default=0.0,
        metadata=_doc(
            "share of training rows that are the multi-concept recognition task (§5.1) instead of "
            "captioning; 0.25 adds one recognition row per three caption rows"
        ),
    )
    max_pixels: int | None = field(
        default=None, metadata=_doc("cap on image pixels given to the processor (None: the processor's default)")
    )
    preset: str = field(
        default="gspo", metadata=_doc("algorithm preset: gspo, grpo, dr_grpo, paper (the paper's method) or reference")
    )

    # --- optimisation ------------------------------------------------------------------------------
    learning_rate: float = field(default=5e-6, metadata=_doc("AdamW learning rate"))
    num_train_epochs: float = field(default=2.0, metadata=_doc("passes over the training rows"))
    max_steps: int = field(default=-1, metadata=_doc("stop after this many optimizer steps (-1: use epochs)"))
    per_device_train_batch_size: int = field(
        default=4, metadata=_doc("completions per device per micro-batch (a multiple of num_generations/GPUs)")
    )
    gradient_accumulation_steps: int = field(default=1, metadata=_doc("micro-batches per optimizer step"))
    steps_per_generation: int | None = field(
        default=4,
        metadata=_doc(
            "micro-batches generated at once; greater than gradient_accumulation_steps makes later "
            "updates off-policy, so the importance ratio and its clip act (None: equal to it, on-policy)"
        ),
    )
    num_generations: int = field(default=4, metadata=_doc("completions per prompt (the group size G)"))
    max_completion_length: int = field(default=512, metadata=_doc("new tokens per completion"))
    max_grad_norm: float = field(default=1.0, metadata=_doc("gradient clipping norm"))
    warmup_steps: float = field(
        default=0.0, metadata=_doc("learning-rate warm-up: steps, or a share of all steps if < 1")
    )
    seed: int = field(default=42, metadata=_doc("seed of sampling, data order and LoRA initialisation"))

    # --- objective (set by the preset) ------------------------------------------------------------
    importance_sampling_level: str = field(
        default="sequence", metadata=_doc("'sequence' (GSPO: length-normalised sequence ratio) or 'token' (GRPO)")
    )
    loss_type: str = field(default="grpo", metadata=_doc("TRL loss aggregation: grpo, dr_grpo, dapo, bnpo"))
    beta: float = field(default=0.0, metadata=_doc("KL coefficient against the base model (0: no reference pass)"))
    epsilon: float = field(default=3e-4, metadata=_doc("lower clip range of the importance ratio"))
    epsilon_high: float | None = field(default=4e-4, metadata=_doc("upper clip range (None: same as epsilon)"))
    scale_rewards: str = field(
        default="group", metadata=_doc("advantage scaling: 'group' (divide by group std) or 'none' (DR-GRPO)")
    )

    # --- rollouts ----------------------------------------------------------------------------------
    temperature: float = field(default=1.0, metadata=_doc("rollout sampling temperature (set explicitly)"))
    top_p: float = field(default=1.0, metadata=_doc("rollout nucleus sampling (1.0: off)"))
    top_k: int = field(default=0, metadata=_doc("rollout top-k (0: off); the model's own defaults never apply"))
    rollout_cache: str = field(
        default="auto",
        metadata=_doc(
            "KV cache of transformers rollouts: 'static' decodes with a static cache, whose decoding step "
            "transformers compiles on a GPU (CUDA graphs), with the policy in eval mode (no LoRA dropout, as "
            "vLLM samples); 'dynamic' is TRL's plain generate; 'auto': static on a GPU for a dense model"
        ),
    )

    # --- rollout engine (TRL's vLLM options, passed through; `pip install 'trl[vllm]'`) ---------------
    use_vllm: bool = field(
        default=False, metadata=_doc("generate rollouts with vLLM instead of transformers' generate")
    )
    vllm_mode: str = field(
        default="colocate",
        metadata=_doc(
            "'server': a separate `trl vllm-serve --model M` process on its own GPU(s); "
            "'colocate': a vLLM engine inside each training process, sharing its GPU"
        ),
    )
    vllm_server_base_url: str | None = field(
        default=None, metadata=_doc("server mode: URL of the vLLM server, e.g. http://host:8000 (overrides host/port)")
    )
    vllm_server_host: str = field(default="0.0.0.0", metadata=_doc("server mode: host of the vLLM server"))
    vllm_server_port: int = field(default=8000, metadata=_doc("server mode: port of the vLLM server"))
    vllm_server_timeout: float = field(
        default=240.0, metadata=_doc("server mode: seconds to wait for the vLLM server to come up")
    )
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata=_doc("colocate mode: share of GPU memory vLLM may take (server: a vllm-serve flag)")
    )
    vllm_tensor_parallel_size: int = field(
        default=1, metadata=_doc("colocate mode: GPUs per vLLM engine (server: a vllm-serve flag)")
    )
    vllm_max_model_length: int | None = field(
        default=None, metadata=_doc("colocate mode: vLLM context length (None: from the model config)")
    )
    vllm_enable_sleep_mode: bool = field(
        default=False, metadata=_doc("colocate mode: offload vLLM's weights and cache during the optimizer step")
    )

    # --- rewards -----------------------------------------------------------------------------------
    reward_weights: dict[str, float] = field(
        default_factory=lambda: {"capeval": 1.0, "recognition": 0.5, "degeneration": 1.0, "truncation": 1.0},
        metadata=_doc(f"weight of each reward ({', '.join(REWARDS)}); a reward not named, or weighted 0, is off"),
    )
    empty_is_degenerate: bool = field(
        default=True,
        metadata=_doc("an empty completion gets the degeneration penalty (the paper); the reference code gave it none"),
    )
    capeval_scale: str = field(
        default="normalized",
        metadata=_doc(
            "'normalized': mean(positive questions right) - mean(negative questions leaked), in [-1, 1]; "
            "'paper': right/3 - leaked/N_neg, in [-1, #positives]"
        ),
    )
    judge: str = field(default="rule", metadata=_doc("CapEval-QAs judge backend (covip.judges: rule, openai, ...)"))
    judge_options: dict[str, Any] = field(
        default_factory=dict, metadata=_doc("judge backend options, e.g. {model, base_url, concurrency, cache}")
    )
    judge_allow_errors: bool = field(
        default=False,
        metadata=_doc(
            "false: a failed judge call stops training; true: failed questions are left out of that "
            "completion's reward and counted in the log (judge/errors)"
        ),
    )

    # --- model -------------------------------------------------------------------------------------
    lora_r: int = field(default=64, metadata=_doc("LoRA rank"))
    lora_alpha: int = field(default=128, metadata=_doc("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_doc("LoRA dropout"))
    gradient_checkpointing: bool = field(default=True, metadata=_doc("recompute activations to save memory"))
    bf16: bool = field(default=True, metadata=_doc("bfloat16 weights and autocast (false on CPU)"))
    use_cpu: bool = field(default=False, metadata=_doc("train on CPU (tests)"))
    attn_implementation: str = field(default="sdpa", metadata=_doc("attention kernel: sdpa, flash_attention_2, eager"))

    # --- checkpoints and logs ----------------------------------------------------------------------
    save_steps: int = field(default=50, metadata=_doc("write a checkpoint every N optimizer steps"))
    save_total_limit: int | None = field(default=None, metadata=_doc("keep only the last N checkpoints"))
    logging_steps: int = field(default=1, metadata=_doc("log metrics every N steps"))
    report_to: str = field(default="none", metadata=_doc("trackers: none, wandb, tensorboard, ..."))
    resume: str = field(
        default="auto",
        metadata=_doc(
            "'auto': continue from the latest complete checkpoint in output_dir if any; "
            "'never': start fresh (refuses a non-empty output_dir); or a checkpoint directory"
        ),
    )

    def __post_init__(self) -> None:
        problems = []
        if self.preset not in PRESETS:
            problems.append(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if unknown := set(self.reward_weights) - set(REWARDS):
            problems.append(f"reward_weights: unknown reward(s) {sorted(unknown)}; known: {', '.join(REWARDS)}")
        if self.capeval_scale not in ("normalized", "paper"):
            problems.append(f"capeval_scale must be 'normalized' or 'paper', got {self.capeval_scale!r}")
        if not 0.0 <= self.recognition_ratio < 1.0:
            problems.append(f"recognition_ratio must be in [0, 1), got {self.recognition_ratio}")
        if self.importance_sampling_level not in ("sequence", "token"):
            problems.append(
                f"importance_sampling_level must be 'sequence' or 'token', got {self.importance_sampling_level!r}"
            )
        if self.rollout_cache not in ROLLOUT_CACHES:
            problems.append(f"rollout_cache must be one of {', '.join(ROLLOUT_CACHES)}, got {self.rollout_cache!r}")
        if self.vllm_mode not in ("server", "colocate"):
            problems.append(f"vllm_mode must be 'server' or 'colocate', got {self.vllm_mode!r}")
        if (
            self.per_device_train_batch_size
            * (self.steps_per_generation or self.gradient_accumulation_steps)
            % (self.num_generations)
        ):
            problems.append("per_device_train_batch_size x steps_per_generation must be a multiple of num_generations")
        if problems:
            raise ValueError("invalid training config:\n  " + "\n  ".join(problems))

    @property
    def weights(self) -> dict[str, float]:
        """Every reward's weight, 0 for those not named."""
        return {name: float(self.reward_weights.get(name, 0.0)) for name in REWARDS}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Hash of what determines training (not where it is written, how it is logged or resumed, nor where
        the rollout engine runs: a run may resume against another vLLM server or memory share)."""
        ignored = {"output_dir", "resume", "report_to", "logging_steps", "save_total_limit", "judge_allow_errors"}
        ignored |= {name for name in FIELDS if name.startswith("vllm_") and name != "vllm_max_model_length"}
        blob = json.dumps({k: v for k, v in self.to_dict().items() if k not in ignored}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# The reference run's hyperparameters (run_gspo_pmllm.sh), shared by the `paper` and `reference` presets.
_REFERENCE_RUN: dict[str, Any] = {
    "importance_sampling_level": "sequence",
    "loss_type": "grpo",
    "beta": 0.0,
    "epsilon": 3e-4,
    "epsilon_high": 4e-4,
    "scale_rewards": "group",
    "gradient_accumulation_steps": 1,
    "learning_rate": 5e-6,
    "num_generations": 4,
    "per_device_train_batch_size": 4,
    "num_train_epochs": 2.0,
    "max_completion_length": 512,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "capeval_scale": "paper",
    "lora_r": 64,
    "lora_alpha": 128,
    "lora_dropout": 0.05,
    "save_steps": 50,
    "seed": 42,
}

# The algorithms differ only in these values. TRL's GSPO recipe: sequence-level ratio, no KL, tiny clip
# range, and more generated micro-batches than accumulated ones so that most updates are off-policy.
PRESETS: dict[str, dict[str, Any]] = {
    "gspo": {
        "importance_sampling_level": "sequence",
        "loss_type": "grpo",
        "beta": 0.0,
        "epsilon": 3e-4,
        "epsilon_high": 4e-4,
        "scale_rewards": "group",
        "gradient_accumulation_steps": 1,
        "steps_per_generation": 4,
        "learning_rate": 5e-6,
    },
    "grpo": {
        "importance_sampling_level": "token",
        "loss_type": "grpo",
        "beta": 0.04,
        "epsilon": 0.2,
        "epsilon_high": 0.2,
        "scale_rewards": "group",
        "gradient_accumulation_steps": 2,
        "steps_per_generation": 2,
        "learning_rate": 1e-5,
    },
    "dr_grpo": {
        "importance_sampling_level": "token",
        "loss_type": "dr_grpo",
        "beta": 0.0,
        "epsilon": 0.2,
        "epsilon_high": 0.28,
        "scale_rewards": "none",
        "gradient_accumulation_steps": 2,
        "steps_per_generation": 2,
        "learning_rate": 5e-6,
    },
    # The paper's method: GSPO with the reference run's hyperparameters, made off-policy so that the sequence ratio
    # and the clip act (4 generated micro-batches per update), and the paper's reward r = r_vis + r_caps: the
    # recognition F1 (named concepts of a caption; boxed indices of a recognition row) plus CapEval-QAs at the
    # reference's scale, -1 for degenerate (empty included) or truncated completions. Recognition rows: 1 in 4.
    "paper": {
        **_REFERENCE_RUN,
        "steps_per_generation": 4,
        "reward_weights": {"capeval": 1.0, "recognition": 1.0, "degeneration": 1.0, "truncation": 1.0},
        "recognition_ratio": 0.25,
        "empty_is_degenerate": True,
    },
    # run_gspo_pmllm.sh as it actually behaved: on-policy (ratio == 1, the clip never acts), the model's
    # sampling defaults, the unnormalised caption reward, only the judge reward plus the two -1 penalties,
    # and no penalty for an empty completion.
    "reference": {
        **_REFERENCE_RUN,
        "steps_per_generation": 1,
        "reward_weights": {"capeval": 1.0, "recognition": 0.0, "degeneration": 1.0, "truncation": 1.0},
        "recognition_ratio": 0.0,
        "empty_is_degenerate": False,
    },
}

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def resolve(values: dict[str, Any]) -> TrainConfig:
    """Apply the chosen preset under the given values; unknown keys are an error naming them."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}; see `covip-train --help`")
    preset = values.get("preset", FIELDS["preset"].default)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    typed = {k: _parse_value(k, v) if isinstance(v, str) and _wants_parsing(k) else v for k, v in values.items()}
    return TrainConfig(**{**PRESETS[preset], **typed})


def _wants_parsing(name: str) -> bool:
    """YAML reads `3e-4` as a string; fields that are not plain strings parse such values like flags."""
    return typing.get_type_hints(TrainConfig)[name] is not str


def load_yaml(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training config must be a YAML mapping of field: value")
    return data


def _parse_value(name: str, raw: str) -> Any:
    """Parse a flag by the field's type: numbers, booleans, None and dicts (as JSON or YAML)."""
    kind = typing.get_type_hints(TrainConfig)[name]
    if typing.get_origin(kind) is dict:
        value = yaml.safe_load(raw)
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"--{name}: expected a mapping such as '{{a: 1}}', got {raw!r}")
        return value
    args = set(typing.get_args(kind)) if isinstance(kind, types.UnionType) or typing.get_origin(kind) else {kind}
    if raw.lower() in ("none", "null") and type(None) in args:
        return None
    if bool in args:
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise argparse.ArgumentTypeError(f"--{name}: expected true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    try:
        if int in args:
            return int(raw)
        if float in args:
            return float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    return raw


def add_field_flags(parser: argparse.ArgumentParser) -> None:
    """One `--field VALUE` flag per config field, documented from the field's metadata."""
    group = parser.add_argument_group("config fields (override the preset and the YAML file)")
    for name, f in FIELDS.items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        group.add_argument(
            f"--{name}",
            dest=f"field_{name}",
            metavar="VALUE",
            default=None,
            help=f"{f.metadata.get('help', '')} (default: {default!r})".replace("%", "%%"),
        )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {name: _parse_value(name, raw) for name in FIELDS if (raw := getattr(args, f"field_{name}")) is not None}


def save(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump({**config.to_dict(), "config_hash": config.config_hash()}, sort_keys=False))

"""Build and run a CoViP post-training run on TRL's GRPOTrainer (GSPO, GRPO and DR-GRPO are presets).

What we add to TRL: the CoViP data and rewards, LoRA on the language model only (vision tower
frozen), the per-sequence importance ratio in the log (`ratio/seq_min|mean|max`: the reference's
"GSPO" had it identically 1, defect 18), checkpoints that describe themselves, resuming from the
latest complete checkpoint after a kill, and fast transformers rollouts: the adapter's decode path
(a static KV cache whose decoding step transformers compiles with CUDA graphs, packed GQA decode
attention), with the unmerged LoRA layers compiled into the step and the policy in eval mode.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.import_utils import is_vllm_available

from covip.judges.registry import make_judge
from covip.model_adapters import gqa_decode
from covip.model_adapters.qwen3_vl import cache_length, load_qwen3_vl, prompt_length
from covip.trainer import config as config_mod
from covip.trainer.checkpoints import CheckpointMarker, latest_checkpoint, read_marker
from covip.trainer.config import SetupError, TrainConfig
from covip.trainer.data import build_rows, image_sizes, load_samples, row_prompt, training_dataset
from covip.trainer.rewards import (
    CapEvalReward,
    Reward,
    degeneration_reward_for,
    recognition_reward,
    truncation_reward_for,
)

logger = logging.getLogger(__name__)
RUN_CONFIG = "covip_train_config.yaml"
# LoRA on every linear layer of the language model; the vision tower (`visual`) stays frozen. The reference also
# adapted lm_head (184,573,952 vs our 174,587,904 trainable parameters at r64 on Qwen3-VL-8B), which TRL 1.16
# refuses: its fused log-prob head reads lm_head.weight directly, so an lm_head adapter would never train.
LANGUAGE_LINEAR = r"^(?!.*visual).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


class CoViPGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that also logs the sequence-level importance ratio exp(mean_t log pi/pi_old), and generates
    transformers rollouts with the policy in eval mode when `rollout_cache` is static (see `use_fast_rollouts`)."""

    eval_mode_rollouts = False

    def _generate_single_turn(self, *args: Any, **kwargs: Any):
        if not self.eval_mode_rollouts:
            return super()._generate_single_turn(*args, **kwargs)
        policy = self.accelerator.unwrap_model(self.model)
        training = policy.training
        policy.eval()  # no dropout: one fixed set of modules for the compiled step, and vLLM's sampling semantics
        try:
            return super()._generate_single_turn(*args, **kwargs)
        finally:
            policy.train(training)

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if torch.is_grad_enabled():  # the policy pass of the loss (old/ref passes run under no_grad)
            self._last_policy_logps = out[0].detach()  # detached: holding the graph would keep activations alive
        return out

    def _compute_loss(self, model, inputs):  # noqa: ANN001 - TRL signature
        loss = super()._compute_loss(model, inputs)
        logps = self._last_policy_logps
        old = inputs.get("old_per_token_logps")
        mask = inputs["completion_mask"].to(logps.dtype)
        if old is None:  # TRL skips pi_old when the step is on-policy: the ratio is exactly 1
            ratio = torch.ones(logps.shape[0], device=logps.device)
        else:
            ratio = torch.exp(((logps - old) * mask).sum(-1) / mask.sum(-1).clamp(min=1.0))
        ratio = self.accelerator.gather(ratio)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["ratio/seq_mean"].append(ratio.mean().item())
        self._metrics[mode]["ratio/seq_min"].append(ratio.min().item())
        self._metrics[mode]["ratio/seq_max"].append(ratio.max().item())
        return loss


def grpo_args(config: TrainConfig) -> GRPOConfig:
    """TRL's configuration from ours; anything not listed keeps TRL's default."""
    return GRPOConfig(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        steps_per_generation=config.steps_per_generation,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        max_grad_norm=config.max_grad_norm,
        warmup_steps=config.warmup_steps,
        seed=config.seed,
        data_seed=config.seed,
        importance_sampling_level=config.importance_sampling_level,
        loss_type=config.loss_type,
        beta=config.beta,
        epsilon=config.epsilon,
        epsilon_high=config.epsilon_high,
        scale_rewards=config.scale_rewards,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        reward_weights=[config.weights[name] for name in config.weights if config.weights[name]],
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=config.bf16,
        use_cpu=config.use_cpu,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        save_only_model=False,
        logging_steps=config.logging_steps,
        report_to=config.report_to,
        remove_unused_columns=False,
        log_completions=False,
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
        vllm_server_base_url=config.vllm_server_base_url,
        vllm_server_host=config.vllm_server_host,
        vllm_server_port=config.vllm_server_port,
        vllm_server_timeout=config.vllm_server_timeout,
        vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=config.vllm_tensor_parallel_size,
        vllm_max_model_length=config.vllm_max_model_length,
        vllm_enable_sleep_mode=config.vllm_enable_sleep_mode,
    )


def reward_functions(config: TrainConfig, eos_ids: set[int]) -> list[Reward]:
    """The weighted rewards of the config, in `TrainConfig.weights` order; weight 0 drops one."""
    made: dict[str, Reward] = {}
    for name, weight in config.weights.items():
        if not weight:
            continue
        if name == "capeval":
            made[name] = CapEvalReward(
                make_judge(config.judge, **config.judge_options),
                scale=config.capeval_scale,
                allow_errors=config.judge_allow_errors,
                max_length=config.max_completion_length,
                eos_ids=eos_ids,
                empty_is_degenerate=config.empty_is_degenerate,
            )
        elif name == "recognition":
            made[name] = recognition_reward
        elif name == "degeneration":
            made[name] = degeneration_reward_for(config.empty_is_degenerate)
        elif name == "truncation":
            made[name] = truncation_reward_for(config.max_completion_length, eos_ids)
    return list(made.values())


def load_model(config: TrainConfig):
    """The base model and processor, through the adapter's loader; LoRA is added by TRL from `lora_config`."""
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    try:
        model, processor = load_qwen3_vl(
            config.model, dtype, config.attn_implementation, padding_side="left", truncation_side="left"
        )
    except OSError as exc:  # not on disk and no hub: the first thing a user without a download meets
        raise SetupError(
            f"cannot load the model {config.model!r} ({str(exc).splitlines()[0]}). For a first run without a "
            "download: covip-train make-tiny-model DIR, then --model DIR (see the README's Training section)"
        ) from exc
    if config.max_pixels:
        processor.image_processor.size = {**dict(processor.image_processor.size), "longest_edge": config.max_pixels}
    return model, processor


def vision_token_ids(model_config: Any) -> list[int]:
    """Tokens a rollout must never sample: a sampled image/video pad or vision start/end token breaks
    Qwen3-VL's 3D position ids in the scoring pass (TRL suppresses only the image pad)."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return sorted({int(getattr(model_config, n)) for n in names if getattr(model_config, n, None) is not None})


def rollout_kwargs(config: TrainConfig, model_config: Any) -> dict[str, Any]:
    """Generation options that keep the vision tokens out of rollouts, in each engine's terms:
    transformers' `generate` takes `suppress_tokens`, vLLM's `SamplingParams` only a `logit_bias`."""
    banned = vision_token_ids(model_config)
    if config.use_vllm:
        return {"logit_bias": dict.fromkeys(banned, -100.0)}
    return {"suppress_tokens": banned}


def rollout_cache(config: TrainConfig, model_config: Any) -> str | None:
    """'static' when transformers rollouts should decode with a static, compiled cache, else None (TRL's plain
    `generate`); `auto` logs why it falls back."""
    if config.use_vllm or config.rollout_cache == "dynamic":
        return None
    if config.rollout_cache == "static":
        return "static"
    if config.use_cpu or not torch.cuda.is_available():
        reason = "no GPU: transformers compiles the decoding step on a GPU only"
    elif getattr(model_config.get_text_config(), "num_experts", 0):
        reason = "MoE model: its expert routing has data-dependent shapes"
    else:
        return "static"
    logger.warning("rollouts decode with TRL's dynamic cache (%s)", reason)
    return None


def longest_rollout(rows: list[dict[str, Any]], processor: Any, completion_tokens: int) -> int:
    """Tokens of the run's longest rollout: its longest prompt (text and image tokens, from the image headers)
    plus the completion budget."""
    longest = 0
    for row in rows:
        text = processor.apply_chat_template(
            row_prompt(row["task"], row["sample"]), tokenize=False, add_generation_prompt=True
        )
        longest = max(longest, prompt_length(processor, text, image_sizes(row["image_paths"])))
    return longest + completion_tokens


def use_fast_rollouts(trainer: CoViPGRPOTrainer, config: TrainConfig, rows: list[dict[str, Any]], processor) -> None:
    """The adapter's decode path for transformers rollouts: a static KV cache (compiled with CUDA graphs on a
    GPU: TRL turns compilation off, this turns it back on), packed GQA decode attention, eval-mode policy.
    The cache has one length for the whole run, that of its longest rollout (rounded up as the adapter rounds
    it), so that the decoding step compiles once whatever the order of the prompts."""
    cache = rollout_cache(config, trainer.model.config)
    if cache is None:
        return
    trainer.generation_config.cache_implementation = cache
    trainer.generation_config.max_cache_len = cache_length(
        longest_rollout(rows, processor, config.max_completion_length)
    )
    trainer.generation_config.disable_compile = False
    trainer.eval_mode_rollouts = True
    if config.attn_implementation == "sdpa":
        gqa_decode.use_for_text(trainer.accelerator.unwrap_model(trainer.model))
    logger.info(
        "rollouts decode with a %s cache of %d tokens, the policy in eval mode",
        cache,
        trainer.generation_config.max_cache_len,
    )


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=LANGUAGE_LINEAR,
        task_type="CAUSAL_LM",
    )


def resume_point(config: TrainConfig) -> str | None:
    """Which checkpoint to resume from; a checkpoint made under another config hash is refused."""
    out = Path(config.output_dir)
    if config.resume == "never":
        if out.is_dir() and any(out.glob("checkpoint-*")):
            raise FileExistsError(f"{out} already holds checkpoints; use resume: auto or another output_dir")
        return None
    checkpoint = latest_checkpoint(out) if config.resume == "auto" else Path(config.resume)
    if checkpoint is None:
        return None
    marker = read_marker(checkpoint)
    if marker["config_hash"] != config.config_hash():
        raise ValueError(
            f"{checkpoint} was trained with config {marker['config_hash']}, this run is {config.config_hash()}: "
            "resuming would mix two runs; use a new output_dir or resume: never"
        )
    return str(checkpoint)


def build_trainer(
    config: TrainConfig,
    extra_rewards: Sequence[tuple[Reward, float]] = (),
    callbacks: Sequence[Any] = (),
    loaded: tuple[Any, Any] | None = None,
) -> CoViPGRPOTrainer:
    """The trainer of a run, ready to `train()`.

    `extra_rewards` (function, weight) are appended to the config's (tests, research); `loaded` is a
    (model, processor) pair built elsewhere (benchmarks build Qwen3-VL-8B with random weights) instead of
    `from_pretrained(config.model)`.
    """
    if config.use_vllm and not is_vllm_available():  # TRL would say so too, but only after loading the model
        raise ImportError("use_vllm: true needs vLLM installed (pip install 'trl[vllm]'); or set use_vllm: false")
    root, samples = load_samples(config.data, config.split, config.max_samples)
    rows = build_rows(samples, root, config.recognition_ratio, config.seed)
    counts = {task: sum(r["task"] == task for r in rows) for task in ("caption", "recognition")}
    logger.info("training rows: %s from %d samples in %s", counts, len(samples), root)
    model, processor = loaded or load_model(config)
    # TRL left-pads prompts; a right-padding processor misaligns Qwen3-VL's image token types (mm_token_type_ids).
    processor.tokenizer.padding_side = "left"
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {processor.tokenizer.eos_token_id}
    rewards = reward_functions(config, eos_ids)
    args = grpo_args(config)
    args.generation_kwargs = rollout_kwargs(config, model.config)
    if extra_rewards:
        rewards += [f for f, _ in extra_rewards]
        args.reward_weights = [*args.reward_weights, *(w for _, w in extra_rewards)]
    if not rewards:
        raise ValueError("every reward weight is 0: nothing to train on")
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_mod.save(config, out / RUN_CONFIG)
    marker = CheckpointMarker(config.model, config.config_hash(), config.to_dict())
    trainer = CoViPGRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=training_dataset(rows),
        processing_class=processor,
        peft_config=lora_config(config),
        callbacks=[marker, *callbacks],
    )
    use_fast_rollouts(trainer, config, rows, processor)
    return trainer


def train(config: TrainConfig) -> Path:
    """Run (or resume) training; returns the run directory. The final state is also a checkpoint."""
    resume = resume_point(config)
    trainer = build_trainer(config)
    if resume:
        logger.info("resuming from %s", resume)
    started = time.time()
    trainer.train(resume_from_checkpoint=resume)
    if latest_checkpoint(config.output_dir) is None or trainer.state.global_step % config.save_steps:
        trainer._save_checkpoint(trainer.model, trial=None)  # noqa: SLF001 - the final step is a candidate too
        trainer.callback_handler.on_save(trainer.args, trainer.state, trainer.control)
    if trainer.is_world_process_zero():
        summary = {"steps": trainer.state.global_step, "seconds": round(time.time() - started, 1)}
        (Path(config.output_dir) / "covip_train_summary.json").write_text(json.dumps(summary, indent=2))
    return Path(config.output_dir)

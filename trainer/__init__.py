"""CoViP post-training of Qwen3-VL on TRL's GRPOTrainer: GSPO, GRPO and DR-GRPO presets, CoViP rewards,
self-describing LoRA checkpoints and their evaluation into leaderboard submissions (`covip-train`).

Modules: config (typed config and presets), data (training rows), rewards, checkpoints, train, evaluate, cli.
Nothing else in the project imports this package.
"""

"""GSPO/GRPO post-training of Qwen3-VL. Not implemented yet (issue 6); nothing here to import."""

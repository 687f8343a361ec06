"""lmms-eval model classes registered by entry point: baselines now, real VLM adapters later."""

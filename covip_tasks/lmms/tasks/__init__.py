"""Task YAMLs for lmms-eval (package data); `covip-tasks-path` prints this directory."""

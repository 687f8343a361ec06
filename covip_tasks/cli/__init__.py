"""The command-line tools: `covip-data`, `covip-judge`, `lmms_eval` and `covip-tasks-path`."""

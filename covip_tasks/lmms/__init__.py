"""The lmms-eval task glue: the task classes the YAMLs under tasks/ name, and their hooks."""

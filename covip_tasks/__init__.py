"""CoViP tasks: the data model, dataset builder and loaders, prompts, metrics and lmms-eval task YAMLs."""

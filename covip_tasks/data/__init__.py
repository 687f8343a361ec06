"""The canonical data model, the on-disk dataset format and where a task's data comes from."""

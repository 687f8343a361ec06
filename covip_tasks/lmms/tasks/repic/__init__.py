"""RePIC task YAMLs."""

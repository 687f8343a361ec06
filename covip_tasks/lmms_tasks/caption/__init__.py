"""Captioning task YAMLs."""

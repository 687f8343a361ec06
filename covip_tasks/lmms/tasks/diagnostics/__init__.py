"""Diagnostic task YAMLs (LSD, LAR, ITR)."""

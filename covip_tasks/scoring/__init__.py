"""Scoring: the CapEval-QAs and diagnostic metrics, and the judging stage that gives verdicts."""

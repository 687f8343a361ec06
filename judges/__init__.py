"""CapEval-QAs judges: answer a multiple-choice question from a caption alone."""

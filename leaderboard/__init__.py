"""Leaderboard: reads lmms-eval result directories and summarises them."""

"""Leaderboard: validates lmms-eval runs of CoViP tasks, ranks like runs together, writes a static site."""

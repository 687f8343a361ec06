"""Offline benchmark builder: procedurally drawn concepts, templated dialogues and MCQAs."""

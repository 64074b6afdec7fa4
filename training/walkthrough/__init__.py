"""The workshop's tour of Ray tasks and actors (python -m training.walkthrough.ray_patterns)."""

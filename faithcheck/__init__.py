"""faithcheck: reasoning-faithfulness checks before RL."""

__version__ = "0.1.0"

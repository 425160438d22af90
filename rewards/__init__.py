"""Scoring completions against gold answers. Imports no torch, so it runs in light worker processes."""

from rewards.registry import REWARDS, load_reward, register_reward

__all__ = ["REWARDS", "load_reward", "register_reward"]

"""PPO with a critic, written on transformers + accelerate (TRL no longer ships PPO or a value-head model).

Modules: ``gae`` (token rewards, GAE, whitening), ``losses`` (clipped policy and value losses, KL
estimators), ``value_head`` (the critic, router freezing, LoRA), ``rollout`` (prompt order,
sampling, scoring), ``state`` (checkpoints), ``trainer`` (the loop).
"""

from mathrl.rl.ppo.gae import ADVANTAGE_ESTIMATORS, gae, token_rewards, whiten
from mathrl.rl.ppo.losses import KL_ESTIMATORS, POLICY_LOSSES, VALUE_LOSSES, clipped_policy_loss, clipped_value_loss
from mathrl.rl.ppo.trainer import PPOTrainer, build_ppo_trainer

__all__ = ["ADVANTAGE_ESTIMATORS", "KL_ESTIMATORS", "POLICY_LOSSES", "VALUE_LOSSES", "PPOTrainer",
           "build_ppo_trainer", "clipped_policy_loss", "clipped_value_loss", "gae", "token_rewards", "whiten"]

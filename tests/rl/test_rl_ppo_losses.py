"""PPO loss terms on hand-made tensors: ratio clipping, value clipping, KL estimators and KL modes."""

import math

import pytest
import torch

from mathrl.rl.ppo.gae import token_rewards
from mathrl.rl.ppo.losses import (KL_ESTIMATORS, POLICY_LOSSES, VALUE_LOSSES, clipped_policy_loss,
                                  clipped_value_loss, entropy_from_logits, explained_variance, kl_loss)


def logs(ratios):
    return torch.log(torch.tensor([ratios]))


def test_registries_hold_the_defaults():
    assert POLICY_LOSSES.get("clip") is clipped_policy_loss
    assert VALUE_LOSSES.get("clipped") is clipped_value_loss
    assert KL_ESTIMATORS.names() == ["k1", "k2", "k3"]


def test_policy_loss_unclipped_is_ratio_times_advantage():
    loss, metrics = clipped_policy_loss(logs([1.1, 0.9]), torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]),
                                        torch.ones(1, 2), epsilon=0.2)
    assert loss.item() == pytest.approx(-(1.1 * 1.0 + 0.9 * -1.0) / 2)
    assert metrics["clip/frac_low"] == 0.0
    assert metrics["clip/frac_high"] == 0.0


def test_policy_loss_clips_high_for_positive_advantage():
    # ratio 1.5 with A = 2 is held at 1 + eps_high = 1.28.
    loss, metrics = clipped_policy_loss(logs([1.5]), torch.zeros(1, 1), torch.tensor([[2.0]]), torch.ones(1, 1),
                                        epsilon=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx(-1.28 * 2.0)
    assert metrics["clip/frac_high"] == 1.0
    assert metrics["clip/frac_low"] == 0.0


def test_policy_loss_clips_low_for_negative_advantage():
    loss, metrics = clipped_policy_loss(logs([0.5]), torch.zeros(1, 1), torch.tensor([[-1.0]]), torch.ones(1, 1),
                                        epsilon=0.2)
    assert loss.item() == pytest.approx(0.8)
    assert metrics["clip/frac_low"] == 1.0


def test_policy_loss_keeps_pessimistic_side_unclipped():
    # ratio 0.5 with A > 0: the unclipped term is smaller, so no clipping and a gradient flows.
    log_ratio = logs([0.5]).requires_grad_()
    loss, metrics = clipped_policy_loss(log_ratio, torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1))
    loss.backward()
    assert loss.item() == pytest.approx(-0.5)
    assert log_ratio.grad.abs().item() > 0
    assert metrics["clip/frac_low"] == 0.0 and metrics["clip/frac_high"] == 0.0


def test_policy_loss_clipped_token_has_no_gradient():
    log_ratio = logs([1.5]).requires_grad_()
    loss, _ = clipped_policy_loss(log_ratio, torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1))
    loss.backward()
    assert log_ratio.grad.item() == 0.0


def test_policy_loss_ignores_masked_tokens():
    loss, _ = clipped_policy_loss(logs([1.0, 3.0]), torch.zeros(1, 2), torch.tensor([[1.0, 100.0]]),
                                  torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(-1.0)


def test_approx_kl_is_zero_at_ratio_one():
    _, metrics = clipped_policy_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.randn(2, 3), torch.ones(2, 3))
    assert metrics["policy/approx_kl"] == 0.0


def test_value_loss_without_clipping():
    loss, metrics = clipped_value_loss(torch.tensor([[1.0, 3.0]]), torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]),
                                       torch.ones(1, 2), clip=None)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 4.0) / 2)
    assert metrics["value/clip_frac"] == 0.0


def test_value_loss_takes_clipped_error_when_larger():
    # old 0, new 1, return 2: the clipped value is 0.2 with error 3.24 > 1.
    loss, metrics = clipped_value_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]),
                                       torch.ones(1, 1), clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 1.8 ** 2)
    assert metrics["value/clip_frac"] == 1.0


def test_value_loss_unclipped_error_when_larger():
    # old 0, new 1, return -1: the plain error 4 exceeds the clipped 1.44.
    loss, metrics = clipped_value_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[-1.0]]),
                                       torch.ones(1, 1), clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 4.0)
    assert metrics["value/clip_frac"] == 0.0


def test_kl_estimators_on_known_values():
    logprobs, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert KL_ESTIMATORS.get("k1")(logprobs, ref).item() == pytest.approx(math.log(2))
    assert KL_ESTIMATORS.get("k2")(logprobs, ref).item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert KL_ESTIMATORS.get("k3")(logprobs, ref).item() == pytest.approx(0.5 - math.log(0.5) - 1)


def test_kl_estimators_zero_when_equal():
    x = torch.randn(3, 4)
    for name in KL_ESTIMATORS:
        assert KL_ESTIMATORS.get(name)(x, x).abs().max().item() == 0.0


def test_k3_never_negative():
    generator = torch.Generator().manual_seed(0)
    kl = KL_ESTIMATORS.get("k3")(torch.randn(100, generator=generator), torch.randn(100, generator=generator))
    assert (kl >= 0).all()


def test_kl_loss_mode_is_token_mean():
    logprobs = torch.tensor([[0.0, -1.0, -5.0]])
    ref = torch.tensor([[-1.0, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, metrics = kl_loss(logprobs, ref, mask, "k1")
    assert loss.item() == pytest.approx(0.5)
    assert metrics["loss/kl"] == pytest.approx(0.5)


def test_kl_reward_mode_penalises_each_token():
    kl = KL_ESTIMATORS.get("k1")(torch.tensor([[0.0, -1.0]]), torch.tensor([[-1.0, -1.0]]))
    rewards = token_rewards(torch.tensor([1.0]), torch.ones(1, 2), kl, kl_coef=0.5)
    torch.testing.assert_close(rewards, torch.tensor([[-0.5, 1.0]]))


def test_entropy_of_uniform_logits():
    entropy = entropy_from_logits(torch.zeros(2, 3, 8))
    torch.testing.assert_close(entropy, torch.full((2, 3), math.log(8)))


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.ones(1, 4)
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 4), 2.5), returns, mask) == pytest.approx(0.0)
    assert math.isnan(explained_variance(returns, torch.ones(1, 4), mask))

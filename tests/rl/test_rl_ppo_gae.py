"""GAE, token rewards and whitening against plain per-row loops, with masks for variable completion lengths."""

import pytest
import torch

from mathrl.rl.ppo.gae import gae, masked_mean, token_rewards, whiten


def gae_loop(rewards, values, mask, gamma, lam):
    """Textbook GAE, one row at a time, over the row's real tokens only (masked tokens removed)."""
    advantages = torch.zeros_like(values)
    for row in range(values.shape[0]):
        positions = [t for t in range(values.shape[1]) if mask[row, t]]
        running = 0.0
        for i in reversed(range(len(positions))):
            t = positions[i]
            next_value = values[row, positions[i + 1]].item() if i + 1 < len(positions) else 0.0
            delta = rewards[row, t].item() + gamma * next_value - values[row, t].item()
            running = delta + gamma * lam * running
            advantages[row, t] = running
    return advantages, (advantages + values) * mask


def prefix_mask(lengths, num_tokens):
    return (torch.arange(num_tokens)[None, :] < torch.tensor(lengths)[:, None]).float()


CASES = [
    # (seed, rows, tokens, gamma, lam)
    (0, 1, 1, 1.0, 0.95),
    (1, 4, 7, 1.0, 0.95),
    (2, 8, 16, 0.99, 0.9),
    (3, 3, 30, 0.9, 1.0),
    (4, 5, 12, 1.0, 0.0),
    (5, 16, 5, 0.5, 0.5),
]


@pytest.mark.parametrize("seed,rows,tokens,gamma,lam", CASES)
def test_gae_matches_loop_with_prefix_masks(seed, rows, tokens, gamma, lam):
    generator = torch.Generator().manual_seed(seed)
    rewards = torch.randn(rows, tokens, generator=generator, dtype=torch.float64)
    values = torch.randn(rows, tokens, generator=generator, dtype=torch.float64)
    lengths = torch.randint(0, tokens + 1, (rows,), generator=generator).tolist()
    mask = prefix_mask(lengths, tokens).double()
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    expected_advantages, expected_returns = gae_loop(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(advantages, expected_advantages)
    torch.testing.assert_close(returns, expected_returns)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_skips_gaps_in_mask(seed):
    generator = torch.Generator().manual_seed(seed)
    rewards = torch.randn(6, 10, generator=generator, dtype=torch.float64)
    values = torch.randn(6, 10, generator=generator, dtype=torch.float64)
    mask = (torch.rand(6, 10, generator=generator) > 0.3).double()
    advantages, returns = gae(rewards, values, mask, 0.97, 0.9)
    expected_advantages, expected_returns = gae_loop(rewards, values, mask, 0.97, 0.9)
    torch.testing.assert_close(advantages, expected_advantages)
    torch.testing.assert_close(returns, expected_returns)


def test_gae_masked_positions_are_zero():
    values = torch.ones(2, 4)
    mask = prefix_mask([2, 0], 4)
    advantages, returns = gae(torch.ones(2, 4), values, mask)
    assert advantages[0, 2:].abs().sum() == 0
    assert advantages[1].abs().sum() == 0
    assert returns[1].abs().sum() == 0


def test_gae_monte_carlo_when_lam_and_gamma_are_one():
    # With gamma = lam = 1 the return at every token is the sum of the rewards that follow it.
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.3, -0.2, 0.5, 9.0]])
    mask = prefix_mask([3], 4)
    advantages, returns = gae(rewards, values, mask, 1.0, 1.0)
    torch.testing.assert_close(returns, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    torch.testing.assert_close(advantages, torch.tensor([[0.7, 1.2, 0.5, 0.0]]))


def test_token_rewards_score_on_last_real_token():
    mask = prefix_mask([3, 1, 0], 4)
    rewards = token_rewards(torch.tensor([1.0, -2.0, 5.0]), mask)
    expected = torch.tensor([[0.0, 0.0, 1.0, 0.0], [-2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(rewards, expected)


def test_token_rewards_kl_penalty_per_token():
    mask = prefix_mask([2, 3], 3)
    kl = torch.tensor([[0.5, 1.0, 7.0], [0.1, 0.2, 0.3]])
    rewards = token_rewards(torch.tensor([1.0, 0.0]), mask, kl, kl_coef=0.1)
    expected = torch.tensor([[-0.05, 1.0 - 0.1, 0.0], [-0.01, -0.02, -0.03]])
    torch.testing.assert_close(rewards, expected)


def test_whiten_over_mask():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    out = whiten(x, mask)
    assert masked_mean(out, mask).abs() < 1e-6
    assert masked_mean(out ** 2, mask).sub(1).abs() < 1e-4
    assert out[:, 2].abs().sum() == 0


def test_whiten_with_given_statistics():
    x = torch.tensor([[2.0, 4.0]])
    out = whiten(x, torch.ones(1, 2), mean=torch.tensor(1.0), var=torch.tensor(4.0))
    torch.testing.assert_close(out, torch.tensor([[0.5, 1.5]]))

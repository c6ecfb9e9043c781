"""Every algorithm's advantages and loss against values computed by hand on one fixed batch,
plus the schedules (OR1 entropy control, staged context, learning rate) and group filtering."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.trainers.algorithms import (
    BatchWhitened,
    GroupNormalized,
    LeaveOneOut,
    PolicyLoss,
    ReinforcePlusPlus,
    k3_kl,
    make_algorithm,
    token_weights,
    zero_variance_groups,
)
from arenagym.trainers.schedules import AdaptiveEntropyControl, ContextSchedule, lr_lambda

# The fixed batch: two prompts, two rollouts each; completion lengths 2, 1, 3, 2.
REWARDS = torch.tensor([1.0, 0.0, 3.0, 1.0])
GROUPS = torch.tensor([0, 0, 1, 1])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def first_token(advantages: torch.Tensor) -> list[float]:
    return advantages[:, 0].tolist()


def test_grpo_advantage_is_group_mean_over_sample_std() -> None:
    # verl's (and so Skywork-OR1's) torch.std divides by N - 1:
    # group 0: mean 0.5, sample std sqrt(0.5) -> +-1/sqrt(2); group 1: mean 2, std sqrt(2) -> same
    s = 1 / math.sqrt(2)
    adv = GroupNormalized().compute(REWARDS, GROUPS, MASK)
    assert first_token(adv) == pytest.approx([s, -s, s, -s], abs=1e-5)
    assert adv[2].tolist() == pytest.approx([s, s, s], abs=1e-5)  # broadcast to every token
    assert adv[0, 2].item() == 0.0  # padding
    # the population std (N) is still available: std 0.5 and 1 -> +-1
    population = GroupNormalized(unbiased=False).compute(REWARDS, GROUPS, MASK)
    assert first_token(population) == pytest.approx([1.0, -1.0, 1.0, -1.0], abs=1e-5)


def test_drgrpo_advantage_is_only_mean_centred() -> None:
    adv = make_algorithm("drgrpo").estimator.compute(REWARDS, GROUPS, MASK)
    assert first_token(adv) == pytest.approx([0.5, -0.5, 1.0, -1.0])


def test_rloo_baseline_leaves_the_sample_out() -> None:
    # each baseline is the other rollout's reward: 1-0, 0-1, 3-1, 1-3
    adv = LeaveOneOut().compute(REWARDS, GROUPS, MASK)
    assert first_token(adv) == pytest.approx([1.0, -1.0, 2.0, -2.0])
    three = LeaveOneOut().compute(
        torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0, 0, 0]), torch.ones(3, 1)
    )
    assert first_token(three) == pytest.approx([3.0, -1.5, -1.5])  # 3 - 0, 0 - 1.5, 0 - 1.5
    alone = LeaveOneOut().compute(torch.tensor([5.0]), torch.tensor([0]), torch.ones(1, 1))
    assert first_token(alone) == [0.0]


def test_ppo_advantage_is_batch_whitened() -> None:
    # mean 1.25; population variance (0.0625 + 1.5625 + 3.0625 + 0.0625) / 4 = 1.1875
    std = math.sqrt(1.1875)
    adv = BatchWhitened().compute(REWARDS, GROUPS, MASK)
    expected = [-0.25 / std, -1.25 / std, 1.75 / std, -0.25 / std]
    assert first_token(adv) == pytest.approx(expected, rel=1e-5)


def test_reinforce_pp_without_kl_whitens_returns_over_tokens() -> None:
    # every token's return is its sequence's reward: 1,1 | 0 | 3,3,3 | 1,1 -> mean 13/8
    values = [1.0, 1.0, 0.0, 3.0, 3.0, 3.0, 1.0, 1.0]
    mean = sum(values) / 8
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 8)  # 9.875 / 8
    adv = ReinforcePlusPlus().compute(REWARDS, GROUPS, MASK)
    assert adv[0, :2].tolist() == pytest.approx([(1 - mean) / std] * 2, rel=1e-5)
    assert adv[2].tolist() == pytest.approx([(3 - mean) / std] * 3, rel=1e-5)
    assert adv[1, 1:].tolist() == [0.0, 0.0]
    masked_mean = (adv * MASK).sum() / MASK.sum()
    assert masked_mean.item() == pytest.approx(0.0, abs=1e-6)


def test_reinforce_pp_kl_penalty_enters_the_returns() -> None:
    # one sequence, 3 tokens, log pi_old - log pi_ref = [0.5, -0.2, 0.1], beta 0.1, reward 1:
    # token rewards [-0.05, 0.02, -0.01 + 1]; returns to go [0.96, 1.01, 0.99]; then whitened
    old = torch.tensor([[0.5, -0.2, 0.1]])
    ref = torch.zeros(1, 3)
    adv = ReinforcePlusPlus(kl_coef=0.1).compute(
        torch.tensor([1.0]), torch.tensor([0]), torch.ones(1, 3), old, ref
    )
    returns = [0.96, 1.01, 0.99]
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert adv[0].tolist() == pytest.approx([(r - mean) / std for r in returns], rel=1e-4)


# ----------------------------------------------------------------------------- the loss

LOGPROBS = torch.log(torch.tensor([[0.3, 0.5], [0.2, 1.0]]))
OLD = torch.log(torch.tensor([[0.2, 0.5], [0.4, 1.0]]))  # ratios 1.5, 1.0 | 0.5
ADVANTAGES = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
LOSS_MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
# per-token losses: -min(1.5, 1.2) = -1.2 (clipped), -1.0, -min(-0.5, -0.8) = 0.8 (clipped)


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("token-mean", (-1.2 - 1.0 + 0.8) / 3),  # OR1 / GRPO default: all tokens of the batch
        ("seq-mean-token-mean", ((-1.2 - 1.0) / 2 + 0.8) / 2),  # DeepSeekMath GRPO
        ("seq-mean-token-sum-norm", (-1.2 - 1.0 + 0.8) / (4 * 2)),  # Dr. GRPO, budget 4
    ],
)
def test_clipped_surrogate_by_aggregation(aggregation: str, expected: float) -> None:
    weights = token_weights(LOSS_MASK, aggregation, norm_length=4)  # type: ignore[arg-type]
    out = PolicyLoss(aggregation=aggregation)(LOGPROBS, OLD, ADVANTAGES, weights)  # type: ignore[arg-type]
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.policy_loss == pytest.approx(expected, rel=1e-5)


def test_clip_fraction_kl_and_entropy_terms() -> None:
    weights = token_weights(LOSS_MASK, "token-mean")
    ref = torch.log(torch.tensor([[0.3, 0.25], [0.2, 1.0]]))
    # k3 per token: 0, exp(-ln 2) + ln 2 - 1 = 0.193147, 0
    kl_token = 0.5 + math.log(2) - 1
    entropy = torch.tensor([[1.0, 2.0], [3.0, 9.0]])  # the 9 is padding
    out = PolicyLoss(kl_coef=0.1)(LOGPROBS, OLD, ADVANTAGES, weights, ref, entropy, 0.01)
    base = (-1.2 - 1.0 + 0.8) / 3
    assert out.clip_fraction == pytest.approx(2 / 3)
    assert out.kl == pytest.approx(kl_token / 3, rel=1e-5)
    assert out.entropy == pytest.approx(2.0)
    assert out.loss.item() == pytest.approx(base + 0.1 * kl_token / 3 - 0.01 * 2.0, rel=1e-5)


def test_asymmetric_clip_high() -> None:
    # DAPO-style clip-higher: ratio 1.5 with clip_high 0.28 is clipped at 1.28
    weights = token_weights(LOSS_MASK, "token-mean")
    out = PolicyLoss(clip_low=0.2, clip_high=0.28)(LOGPROBS, OLD, ADVANTAGES, weights)
    assert out.loss.item() == pytest.approx((-1.28 - 1.0 + 0.8) / 3, rel=1e-5)


def test_gradient_flows_only_through_unclipped_tokens() -> None:
    logprobs = LOGPROBS.clone().requires_grad_(True)
    weights = token_weights(LOSS_MASK, "token-mean")
    PolicyLoss()(logprobs, OLD, ADVANTAGES, weights).loss.backward()
    assert logprobs.grad is not None
    # d/dlogp of -ratio*A/3 = -ratio*A/3 at the unclipped token (ratio 1, A 1); 0 where clipped
    assert logprobs.grad.flatten().tolist() == pytest.approx([0.0, -1 / 3, 0.0, 0.0], abs=1e-6)


def test_micro_batch_weights_sum_to_the_batch_loss() -> None:
    """Summing micro-batch losses with batch-level weights equals the loss of the whole batch."""
    weights = token_weights(LOSS_MASK, "token-mean")
    whole = PolicyLoss()(LOGPROBS, OLD, ADVANTAGES, weights).loss
    parts = sum(
        PolicyLoss()(
            LOGPROBS[i : i + 1], OLD[i : i + 1], ADVANTAGES[i : i + 1], weights[i : i + 1]
        ).loss
        for i in range(2)
    )
    assert float(parts) == pytest.approx(float(whole))


def test_k3_is_zero_at_equality_and_positive_elsewhere() -> None:
    x = torch.tensor([-1.0, -2.0, -0.1])
    assert k3_kl(x, x).tolist() == [0.0, 0.0, 0.0]
    assert bool((k3_kl(x, x + torch.tensor([0.5, -0.3, 1.0])) > 0).all())


def test_presets_pick_the_algorithms_standard_settings() -> None:
    assert make_algorithm("grpo").loss.aggregation == "token-mean"
    assert make_algorithm("grpo", aggregation="seq-mean-token-mean", kl_coef=0.04).needs_reference
    assert make_algorithm("drgrpo").loss.aggregation == "seq-mean-token-sum-norm"
    assert not make_algorithm("drgrpo").estimator.std  # type: ignore[attr-defined]
    assert make_algorithm("reinforce_pp").needs_reference
    assert not make_algorithm("reinforce_pp", kl_coef=0.0).needs_reference
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_algorithm("a2c")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=12),
    st.integers(1, 4),
)
def test_group_advantages_are_zero_mean_per_group(rewards: list[float], groups_count: int) -> None:
    r = torch.tensor(rewards)
    g = torch.arange(len(rewards)) % groups_count
    mask = torch.ones(len(rewards), 1)
    for estimator in (GroupNormalized(), GroupNormalized(std=False), LeaveOneOut()):
        adv = estimator.compute(r, g, mask)[:, 0]
        for group in g.unique():
            assert adv[g == group].sum().item() == pytest.approx(0.0, abs=1e-3)


# ----------------------------------------------------------------------------- filtering


def test_zero_variance_groups_are_flagged() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    assert zero_variance_groups(rewards, groups).tolist() == [True] * 3 + [False] * 3 + [True] * 2


# ----------------------------------------------------------------------------- schedules


def test_entropy_control_follows_the_or1_rule() -> None:
    control = AdaptiveEntropyControl(target=0.2, delta=1e-4, max_coef=0.005)
    assert control.alpha == 0.0  # starts at 0
    # below target: +1e-4 and on; above: -1e-4 and off; exactly at target: unchanged and on
    assert control.update(0.1) == pytest.approx(1e-4)
    assert control.update(0.15) == pytest.approx(2e-4)
    assert control.update(0.2) == pytest.approx(2e-4)
    assert control.coef == pytest.approx(2e-4)
    assert control.update(0.5) == 0.0 and control.coef == pytest.approx(1e-4)
    assert control.update(0.5) == 0.0 and control.coef == 0.0
    assert control.update(0.5) == 0.0 and control.coef == 0.0  # never below 0
    for _ in range(100):
        control.update(0.0)
    assert control.coef == pytest.approx(0.005) and control.alpha == pytest.approx(0.005)  # capped


def test_entropy_control_disabled_keeps_the_fixed_coefficient() -> None:
    control = AdaptiveEntropyControl(enabled=False, coef=0.001)
    assert control.update(0.0) == 0.001 and control.update(9.0) == 0.001


def test_context_schedule_stages() -> None:
    schedule = ContextSchedule([[0, 8192], [500, 16384], [1000, 32768]])
    assert [schedule.max_tokens(s) for s in (0, 499, 500, 999, 1000, 10**6)] == [
        8192,
        8192,
        16384,
        16384,
        32768,
        32768,
    ]
    with pytest.raises(ValueError, match="start at step 0"):
        ContextSchedule([[5, 10]])
    with pytest.raises(ValueError, match="increase"):
        ContextSchedule([[0, 10], [0, 20]])


def test_lr_schedules() -> None:
    linear = lr_lambda("linear", warmup_steps=0, total_steps=4)
    assert [linear(s) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    constant = lr_lambda("constant", warmup_steps=4, total_steps=100)
    assert [constant(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]

r"""Advantage estimators and policy losses: GRPO (Skywork-OR1's variant by default), Dr. GRPO,
RLOO, REINFORCE++ and critic-free PPO-clip — the trainer's algorithm seam.

An :class:`Algorithm` is an :class:`AdvantageEstimator` (sequence rewards -> per-token
advantages) plus a :class:`PolicyLoss` (the clipped surrogate, its aggregation over tokens, an
optional KL to a reference model and an entropy bonus). Both work on padded tensors of shape
``[sequences, completion tokens]`` with a 0/1 ``mask`` of real tokens:

- **GRPO** (:class:`GroupNormalized`): ``A_i = (r_i - mean_g) / (std_g + eps)`` over the rollouts
  of one prompt (population std, as Skywork-OR1 and verl compute it), broadcast to every token.
  The OR1 loss is the PPO-clip surrogate with ``eps = 0.2`` averaged over *all response tokens
  in the batch* (``aggregation="token-mean"``) and no KL term; DeepSeekMath's original averages
  per sequence first (``"seq-mean-token-mean"``) and adds ``kl_coef * k3``.
- **Dr. GRPO** (``GroupNormalized(std=False)``): ``A_i = r_i - mean_g``, and the token losses are
  summed per sequence and divided by a constant (the generation budget), not by the length
  (``"seq-mean-token-sum-norm"``): neither normalisation biases it towards long wrong answers.
- **RLOO** (:class:`LeaveOneOut`): ``A_i = r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean_g)``.
- **REINFORCE++** (:class:`ReinforcePlusPlus`): per-token rewards ``-beta * (log pi_old -
  log pi_ref)`` plus the outcome reward on the last token, returns summed to the end
  (``gamma = 1``), then whitened over every token of the batch (no per-prompt baseline).
- **PPO-clip** (:class:`BatchWhitened` + a KL term): critic-free — the outcome reward whitened
  over the batch is every token's advantage; the clipped surrogate runs for several epochs, and
  ``kl_coef * k3`` keeps it near the reference model.

Why per-token *weights* instead of a mean: the trainer splits a batch into micro-batches for
gradient accumulation, and "mean over all tokens of the batch" must divide by the batch's token
count, not the micro-batch's. :func:`token_weights` computes, once per batch, the weight of every
token so that ``sum(weights * token_loss)`` over all micro-batches is exactly the aggregated loss.

Example (a group of four rollouts of one prompt, two right):
    >>> import torch
    >>> rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> groups = torch.tensor([0, 0, 0, 0])
    >>> mask = torch.ones(4, 2)
    >>> GroupNormalized().compute(rewards, groups, mask)[:, 0].round(decimals=4).tolist()
    [1.0, -1.0, 1.0, -1.0]
    >>> [round(a, 4) for a in LeaveOneOut().compute(rewards, groups, mask)[:, 0].tolist()]
    [0.6667, -0.6667, 0.6667, -0.6667]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")

__all__ = [
    "AGGREGATIONS",
    "ALGORITHMS",
    "AdvantageEstimator",
    "Algorithm",
    "BatchWhitened",
    "GroupNormalized",
    "LeaveOneOut",
    "LossOutput",
    "PolicyLoss",
    "ReinforcePlusPlus",
    "group_stats",
    "k3_kl",
    "make_algorithm",
    "token_weights",
    "zero_variance_groups",
]


# --------------------------------------------------------------------------- helpers


def group_stats(
    rewards: torch.Tensor, groups: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sequence: the mean, population std and size of its group's rewards.

    Example:
        >>> mean, std, size = group_stats(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 1]))
        >>> mean.tolist(), std.tolist(), size.tolist()
        ([2.0, 2.0, 5.0], [1.0, 1.0, 0.0], [2.0, 2.0, 1.0])
    """
    rewards = rewards.double()
    _, inverse = torch.unique(groups, return_inverse=True)
    count = torch.zeros(int(inverse.max()) + 1, dtype=torch.float64).index_add_(
        0, inverse, torch.ones_like(rewards)
    )
    total = torch.zeros_like(count).index_add_(0, inverse, rewards)
    mean = total / count
    squares = torch.zeros_like(count).index_add_(0, inverse, (rewards - mean[inverse]) ** 2)
    std = (squares / count).sqrt()
    return mean[inverse].float(), std[inverse].float(), count[inverse].float()


def zero_variance_groups(rewards: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """A bool per sequence: its group's rewards are all equal (no learning signal for GRPO).

    Example:
        >>> zero_variance_groups(torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor([0, 0, 1, 1]))
        tensor([ True,  True, False, False])
    """
    _, std, _ = group_stats(rewards, groups)
    return std == 0


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref) per token: ``exp(d) - d - 1``, ``d = ref - logp``.

    Unbiased and always >= 0 (DeepSeekMath's GRPO KL term).

    Example:
        >>> round(k3_kl(torch.tensor([-1.0]), torch.tensor([-2.0])).item(), 6)
        0.367879
    """
    delta = (ref_logprobs - logprobs).clamp(-20.0, 20.0)
    return torch.exp(delta) - delta - 1.0


def token_weights(
    mask: torch.Tensor, aggregation: Aggregation, norm_length: int | None = None
) -> torch.Tensor:
    """The weight of every token in the aggregated loss of the whole batch (see module docs).

    - ``token-mean``: ``1 / (tokens in the batch)``;
    - ``seq-mean-token-mean``: ``1 / (len_i * sequences)``;
    - ``seq-mean-token-sum-norm``: ``1 / (norm_length * sequences)`` (Dr. GRPO's constant).

    Example:
        >>> mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
        >>> token_weights(mask, "token-mean").tolist()
        [[0.25, 0.25, 0.25], [0.25, 0.0, 0.0]]
        >>> token_weights(mask, "seq-mean-token-mean")[:, 0].tolist()
        [0.1666666716337204, 0.5]
        >>> token_weights(mask, "seq-mean-token-sum-norm", norm_length=4)[0, 0].item()
        0.125
    """
    mask = mask.float()
    sequences = max(int((mask.sum(-1) > 0).sum()), 1)
    if aggregation == "token-mean":
        return mask / mask.sum().clamp(min=1.0)
    if aggregation == "seq-mean-token-mean":
        return mask / (mask.sum(-1, keepdim=True).clamp(min=1.0) * sequences)
    if aggregation == "seq-mean-token-sum-norm":
        if not norm_length or norm_length < 1:
            raise ValueError("seq-mean-token-sum-norm needs norm_length >= 1 (the token budget)")
        return mask / (float(norm_length) * sequences)
    raise ValueError(f"unknown aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)}")


def _whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(values - mean) / (std + eps)`` over the masked entries (population std)."""
    count = mask.sum().clamp(min=1.0)
    mean = (values * mask).sum() / count
    variance = (((values - mean) * mask) ** 2).sum() / count
    return (values - mean) / (variance.sqrt() + eps) * mask


# --------------------------------------------------------------------------- estimators


class AdvantageEstimator(Protocol):
    """Sequence rewards (and optionally per-token log-probabilities) -> per-token advantages."""

    #: Whether :meth:`compute` needs ``old_logprobs`` and ``ref_logprobs``.
    needs_logprobs: bool

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[sequences, tokens]`` advantages (0 on padding)."""
        ...


@dataclass(frozen=True)
class GroupNormalized:
    """GRPO's group-relative advantage; ``std=False`` is Dr. GRPO's (mean-centred only).

    Example:
        >>> r, g, m = torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1]), torch.ones(4, 1)
        >>> GroupNormalized().compute(r, g, m).flatten().round(decimals=4).tolist()
        [1.0, -1.0, 0.0, 0.0]
        >>> GroupNormalized(std=False).compute(r, g, m).flatten().tolist()
        [1.0, -1.0, 0.0, 0.0]
    """

    std: bool = True
    eps: float = 1e-6
    needs_logprobs: bool = field(default=False, init=False)

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mean, std, _ = group_stats(rewards, groups)
        advantage = rewards.float() - mean
        if self.std:
            advantage = advantage / (std + self.eps)
        return advantage[:, None] * mask


@dataclass(frozen=True)
class LeaveOneOut:
    """RLOO: each rollout's baseline is the mean of the *other* rollouts of its prompt.

    A group of one has no baseline; its advantage is 0.
    """

    needs_logprobs: bool = field(default=False, init=False)

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mean, _, size = group_stats(rewards, groups)
        scale = torch.where(size > 1, size / (size - 1).clamp(min=1.0), torch.zeros_like(size))
        return ((rewards.float() - mean) * scale)[:, None] * mask


@dataclass(frozen=True)
class ReinforcePlusPlus:
    """REINFORCE++ (OpenRLHF): KL-penalised token rewards, returns-to-go, batch whitening.

    ``kl_coef`` is the per-token penalty ``beta`` on ``log pi_old - log pi_ref`` (the k1
    estimator); 0 skips the reference model.
    """

    kl_coef: float = 0.0
    gamma: float = 1.0

    @property
    def needs_logprobs(self) -> bool:
        return self.kl_coef != 0.0

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mask = mask.float()
        token_rewards = torch.zeros_like(mask)
        if self.kl_coef:
            if old_logprobs is None or ref_logprobs is None:
                raise ValueError("REINFORCE++ with kl_coef needs old and reference log-probs")
            token_rewards = -self.kl_coef * (old_logprobs - ref_logprobs) * mask
        lengths = mask.sum(-1).long()
        rows = torch.arange(mask.shape[0])
        last = (lengths - 1).clamp(min=0)
        token_rewards[rows, last] += rewards.float() * (lengths > 0)
        returns = torch.zeros_like(token_rewards)
        running = torch.zeros(mask.shape[0])
        for t in range(mask.shape[1] - 1, -1, -1):
            running = token_rewards[:, t] + self.gamma * running * mask[:, t]
            returns[:, t] = running
        return _whiten(returns * mask, mask)


@dataclass(frozen=True)
class BatchWhitened:
    """Critic-free PPO's advantage: the outcome reward whitened over the batch's sequences.

    Example:
        >>> BatchWhitened().compute(torch.tensor([1.0, 3.0]), torch.tensor([0, 1]), torch.ones(2, 1)).flatten().round(decimals=4).tolist()
        [-1.0, 1.0]
    """

    eps: float = 1e-6
    needs_logprobs: bool = field(default=False, init=False)

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        rewards = rewards.float()
        advantage = (rewards - rewards.mean()) / (rewards.std(unbiased=False) + self.eps)
        return advantage[:, None] * mask


# --------------------------------------------------------------------------- the loss


@dataclass
class LossOutput:
    """A micro-batch's loss (already weighted for the whole batch) and its statistics.

    The statistics are weighted sums with the same token weights, so summing them over the
    micro-batches gives the batch's aggregated value.
    """

    loss: torch.Tensor
    policy_loss: float
    clip_fraction: float
    kl: float
    entropy: float


@dataclass(frozen=True)
class PolicyLoss:
    """PPO-clip surrogate with asymmetric clipping, an optional k3 KL term and entropy bonus.

    Per token: ``ratio = exp(logp - logp_old)``, ``l = -min(ratio * A, clip(ratio, 1 - clip_low,
    1 + clip_high) * A) + kl_coef * k3(logp, logp_ref) - entropy_coef * H``, aggregated by
    ``aggregation`` (see :func:`token_weights`). ``clip_fraction`` counts tokens whose ratio was
    clipped (the gradient of the surrogate is zero there).
    """

    clip_low: float = 0.2
    clip_high: float = 0.2
    aggregation: Aggregation = "token-mean"
    kl_coef: float = 0.0

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"unknown aggregation {self.aggregation!r}; use one of {', '.join(AGGREGATIONS)}"
            )
        if self.clip_low < 0 or self.clip_high < 0:
            raise ValueError("clip_low and clip_high must be >= 0")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")

    def __call__(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        weights: torch.Tensor,
        ref_logprobs: torch.Tensor | None = None,
        entropy: torch.Tensor | None = None,
        entropy_coef: float = 0.0,
    ) -> LossOutput:
        """The weighted loss of one micro-batch (all tensors ``[sequences, tokens]``).

        Example (one token, advantage 1, the new policy 1.5x more likely: clipped at 1.2):
            >>> lp, old = torch.log(torch.tensor([[0.3]])), torch.log(torch.tensor([[0.2]]))
            >>> out = PolicyLoss()(lp, old, torch.ones(1, 1), torch.ones(1, 1))
            >>> round(out.loss.item(), 6), out.clip_fraction
            (-1.2, 1.0)
        """
        mask = (weights > 0).float()
        ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
        clipped = ratio.clamp(1.0 - self.clip_low, 1.0 + self.clip_high)
        surrogate = torch.minimum(ratio * advantages, clipped * advantages)
        token_loss = -surrogate
        was_clipped = ((ratio * advantages) > (clipped * advantages)).float() * mask
        kl_value = 0.0
        if ref_logprobs is not None:
            kl = k3_kl(logprobs, ref_logprobs) * mask
            kl_value = float((kl.detach() * weights).sum())
            if self.kl_coef:
                token_loss = token_loss + self.kl_coef * kl
        policy_loss = float((token_loss.detach() * weights).sum())
        entropy_value = 0.0
        if entropy is not None:
            entropy_value = float((entropy.detach() * weights).sum())
            if entropy_coef:
                token_loss = token_loss - entropy_coef * entropy
        return LossOutput(
            loss=(token_loss * weights).sum(),
            policy_loss=policy_loss,
            clip_fraction=float((was_clipped * weights).sum()),
            kl=kl_value,
            entropy=entropy_value,
        )


# --------------------------------------------------------------------------- algorithms


@dataclass(frozen=True)
class Algorithm:
    """An advantage estimator and a loss, under a name; see :func:`make_algorithm`."""

    name: str
    estimator: AdvantageEstimator
    loss: PolicyLoss

    @property
    def needs_reference(self) -> bool:
        """Whether a frozen reference model must score the batch (a KL term somewhere)."""
        return self.loss.kl_coef > 0 or bool(getattr(self.estimator, "kl_coef", 0.0))


#: Every algorithm name :func:`make_algorithm` knows.
ALGORITHMS: tuple[str, ...] = ("grpo", "drgrpo", "rloo", "reinforce_pp", "ppo")


def make_algorithm(
    name: str,
    *,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    aggregation: Aggregation | None = None,
    kl_coef: float | None = None,
    std_normalize: bool | None = None,
) -> Algorithm:
    """The algorithm ``name`` with its standard settings, any of which can be overridden.

    ========== ====================== ======================== ===============
    name       advantage              aggregation              KL
    ========== ====================== ======================== ===============
    grpo       group (r-mean)/std     token-mean (OR1)         none (OR1)
    drgrpo     group r-mean           seq-mean-token-sum-norm  none
    rloo       leave-one-out          token-mean               none
    reinforce_pp whitened returns     token-mean               0.01 in reward
    ppo        batch-whitened         token-mean               0.05 k3 in loss
    ========== ====================== ======================== ===============

    Example:
        >>> algo = make_algorithm("grpo")
        >>> algo.loss.aggregation, algo.loss.kl_coef, algo.needs_reference
        ('token-mean', 0.0, False)
        >>> make_algorithm("ppo").needs_reference
        True
    """
    clip_high = clip_low if clip_high is None else clip_high
    estimator: AdvantageEstimator
    if name == "grpo":
        estimator = GroupNormalized(std=True if std_normalize is None else std_normalize)
        loss = PolicyLoss(clip_low, clip_high, aggregation or "token-mean", kl_coef or 0.0)
    elif name == "drgrpo":
        estimator = GroupNormalized(std=bool(std_normalize))
        loss = PolicyLoss(
            clip_low, clip_high, aggregation or "seq-mean-token-sum-norm", kl_coef or 0.0
        )
    elif name == "rloo":
        estimator = LeaveOneOut()
        loss = PolicyLoss(clip_low, clip_high, aggregation or "token-mean", kl_coef or 0.0)
    elif name == "reinforce_pp":
        estimator = ReinforcePlusPlus(kl_coef=0.01 if kl_coef is None else kl_coef)
        loss = PolicyLoss(clip_low, clip_high, aggregation or "token-mean", 0.0)
    elif name == "ppo":
        estimator = BatchWhitened()
        loss = PolicyLoss(
            clip_low, clip_high, aggregation or "token-mean", 0.05 if kl_coef is None else kl_coef
        )
    else:
        raise ValueError(f"unknown algorithm {name!r}; use one of {', '.join(ALGORITHMS)}")
    return Algorithm(name, estimator, loss)

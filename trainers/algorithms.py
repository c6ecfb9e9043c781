r"""Advantage estimators and policy losses: GRPO (Skywork-OR1's variant by default), Dr. GRPO,
RLOO, REINFORCE++ and critic-free PPO-clip — the trainer's algorithm seam.

An :class:`Algorithm` is an :class:`AdvantageEstimator` (trajectory rewards -> per-token
advantages) plus a :class:`PolicyLoss` (the clipped surrogate, its aggregation over tokens, an
optional KL to a reference model and an entropy bonus). Both work on padded tensors of shape
``[rows, completion tokens]`` with a 0/1 ``mask`` of sampled tokens.

**Credit is per trajectory.** A row is one model call (one turn); a multi-turn episode is
several rows that share a ``trajectories`` id (given in turn order) and its reward. Every
statistic is taken over *trajectories*, never over rows, so an episode weighs the same whether
it took one turn or nine: in a group of a 1-turn win and a 9-turn loss, the RLOO advantages are
``+1`` / ``-1`` on every sampled token of each (not ``+3`` / ``-0.33`` as per-turn statistics
would give). The advantage of a trajectory is applied to every sampled token of every one of its
turns; prompt and observation tokens (what the env wrote) are never in the mask. Without
``trajectories`` every row is its own trajectory (single-turn batches).

- **GRPO** (:class:`GroupNormalized`): ``A_i = (r_i - mean_g) / (std_g + eps)`` over the
  trajectories of one prompt, with the *sample* std (``torch.std``, ``N - 1``) and
  ``eps = 1e-6`` exactly as verl's ``compute_grpo_outcome_advantage`` (which Skywork-OR1 runs)
  computes it. The OR1 loss is the PPO-clip surrogate with ``eps = 0.2`` averaged over *all
  sampled tokens in the batch* (``aggregation="token-mean"``, as DAPO) and no KL term;
  DeepSeekMath's original averages per sequence first (``"seq-mean-token-mean"``, a sequence
  being a whole trajectory) and adds ``kl_coef * k3``.
- **Dr. GRPO** (``GroupNormalized(std=False)``): ``A_i = r_i - mean_g``, and the token losses are
  summed per trajectory and divided by a constant (the per-turn generation budget), not by the
  length (``"seq-mean-token-sum-norm"``): neither normalisation biases it towards long wrong
  answers.
- **RLOO** (:class:`LeaveOneOut`): ``A_i = r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean_g)``,
  ``j`` over the other trajectories of the group.
- **REINFORCE++** (:class:`ReinforcePlusPlus`): per-token rewards ``-beta * (log pi_old -
  log pi_ref)`` plus the outcome reward on the last sampled token of the trajectory's last turn,
  returns summed to the end of the *trajectory* (across turns, ``gamma = 1``), then whitened over
  every sampled token of the batch (no per-prompt baseline).
- **PPO-clip** (:class:`BatchWhitened` + a KL term): critic-free — the outcome reward whitened
  over the batch's trajectories is every token's advantage; the clipped surrogate runs for
  several epochs, and ``kl_coef * k3`` keeps it near the reference model.

Why per-token *weights* instead of a mean: the trainer splits a batch into micro-batches for
gradient accumulation, and "mean over all tokens of the batch" must divide by the batch's token
count, not the micro-batch's. :func:`token_weights` computes, once per (mini-)batch, the weight of
every token so that ``sum(weights * token_loss)`` over all micro-batches is exactly the aggregated
loss.

Example (a group of four single-turn rollouts of one prompt, two right):
    >>> import torch
    >>> rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    >>> groups = torch.tensor([0, 0, 0, 0])
    >>> mask = torch.ones(4, 2)
    >>> [round(a, 4) for a in GroupNormalized().compute(rewards, groups, mask)[:, 0].tolist()]
    [0.866, -0.866, 0.866, -0.866]
    >>> [round(a, 4) for a in LeaveOneOut().compute(rewards, groups, mask)[:, 0].tolist()]
    [0.6667, -0.6667, 0.6667, -0.6667]

A 1-turn win (row 0) and a 9-turn loss (rows 1-9) of one prompt:
    >>> rewards, groups = torch.tensor([1.0] + [0.0] * 9), torch.zeros(10, dtype=torch.long)
    >>> trajectories = torch.tensor([0] + [1] * 9)
    >>> adv = LeaveOneOut().compute(rewards, groups, torch.ones(10, 1), trajectories=trajectories)
    >>> adv[:, 0].tolist()
    [1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
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
    "TrajectoryView",
    "group_stats",
    "k3_kl",
    "make_algorithm",
    "token_weights",
    "trajectory_view",
    "zero_variance_groups",
]


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class TrajectoryView:
    """The trajectories behind a batch of rows (turns), one entry per trajectory.

    ``row_to_trajectory[row]`` is the trajectory's position ``0..n-1`` (in order of first
    appearance); ``rewards`` and ``groups`` hold one value per trajectory.
    """

    row_to_trajectory: torch.Tensor
    rewards: torch.Tensor
    groups: torch.Tensor

    @property
    def count(self) -> int:
        """How many trajectories."""
        return int(self.rewards.shape[0])


def trajectory_view(
    rewards: torch.Tensor, groups: torch.Tensor, trajectories: torch.Tensor | None = None
) -> TrajectoryView:
    """Collapse per-row ``rewards``/``groups`` to one value per trajectory.

    ``trajectories`` (one id per row; ``None``: every row is its own trajectory) says which rows
    are turns of the same episode; they must share its reward and group, else ``ValueError``
    (a per-turn reward here would silently weight episodes by their turn count).

    Example:
        >>> view = trajectory_view(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0, 0, 0]),
        ...                        torch.tensor([7, 3, 3]))
        >>> view.row_to_trajectory.tolist(), view.rewards.tolist(), view.count
        ([0, 1, 1], [1.0, 0.0], 2)
    """
    rows = rewards.shape[0]
    if trajectories is None:
        return TrajectoryView(torch.arange(rows), rewards.float(), groups.long())
    trajectories = trajectories.long().cpu()
    if trajectories.shape[0] != rows:
        raise ValueError(f"trajectories has {trajectories.shape[0]} ids for {rows} rows")
    # positions in order of first appearance (torch.unique sorts; re-rank by first row)
    unique, inverse = torch.unique(trajectories, return_inverse=True)
    first = torch.full((unique.shape[0],), rows, dtype=torch.long).scatter_reduce_(
        0, inverse, torch.arange(rows), reduce="amin"
    )
    rank = torch.empty_like(first)
    rank[torch.argsort(first)] = torch.arange(first.shape[0])
    row_to_trajectory = rank[inverse]
    first_rows = torch.sort(first).values
    traj_rewards = rewards.float().cpu()[first_rows]
    traj_groups = groups.long().cpu()[first_rows]
    if not torch.equal(traj_rewards[row_to_trajectory], rewards.float().cpu()) or not torch.equal(
        traj_groups[row_to_trajectory], groups.long().cpu()
    ):
        raise ValueError(
            "the rows (turns) of one trajectory must share its reward and group: credit is "
            "assigned per trajectory"
        )
    return TrajectoryView(row_to_trajectory, traj_rewards, traj_groups)


def group_stats(
    rewards: torch.Tensor, groups: torch.Tensor, unbiased: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per entry: the mean, std and size of its group's rewards.

    One entry per *trajectory* (see :func:`trajectory_view`). ``unbiased`` (the default, as
    verl's ``torch.std``) divides by ``N - 1``, else by ``N``; a group of one has std 0.

    Example:
        >>> mean, std, size = group_stats(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 1]))
        >>> mean.tolist(), [round(s, 4) for s in std.tolist()], size.tolist()
        ([2.0, 2.0, 5.0], [1.4142, 1.4142, 0.0], [2.0, 2.0, 1.0])
        >>> group_stats(torch.tensor([1.0, 3.0]), torch.tensor([0, 0]), unbiased=False)[1].tolist()
        [1.0, 1.0]
    """
    rewards = rewards.double()
    _, inverse = torch.unique(groups, return_inverse=True)
    count = torch.zeros(int(inverse.max()) + 1, dtype=torch.float64).index_add_(
        0, inverse, torch.ones_like(rewards)
    )
    total = torch.zeros_like(count).index_add_(0, inverse, rewards)
    mean = total / count
    squares = torch.zeros_like(count).index_add_(0, inverse, (rewards - mean[inverse]) ** 2)
    divisor = (count - 1).clamp(min=1.0) if unbiased else count
    std = (squares / divisor).sqrt()
    return mean[inverse].float(), std[inverse].float(), count[inverse].float()


def zero_variance_groups(
    rewards: torch.Tensor, groups: torch.Tensor, trajectories: torch.Tensor | None = None
) -> torch.Tensor:
    """A bool per row: its group's trajectory rewards are all equal (no GRPO signal).

    Exact (the group's largest reward equals its smallest), so no rounding in a std can keep a
    constant group alive. With ``trajectories``, rows are turns and the test is over trajectories.

    Example:
        >>> zero_variance_groups(torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor([0, 0, 1, 1]))
        tensor([ True,  True, False, False])
    """
    view = trajectory_view(rewards, groups, trajectories)
    _, inverse = torch.unique(view.groups, return_inverse=True)
    size = int(inverse.max()) + 1 if inverse.numel() else 0
    high = torch.full((size,), -torch.inf).scatter_reduce_(0, inverse, view.rewards, "amax")
    low = torch.full((size,), torch.inf).scatter_reduce_(0, inverse, view.rewards, "amin")
    return (high == low)[inverse][view.row_to_trajectory]


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
    mask: torch.Tensor,
    aggregation: Aggregation,
    norm_length: int | None = None,
    trajectories: torch.Tensor | None = None,
) -> torch.Tensor:
    """The weight of every token in the aggregated loss of the whole batch (see module docs).

    A "sequence" is a trajectory: all sampled tokens of all its turns (rows sharing an id in
    ``trajectories``; ``None``: every row is one). With ``S`` trajectories that sampled tokens:

    - ``token-mean`` (OR1, DAPO): ``1 / (sampled tokens in the batch)``;
    - ``seq-mean-token-mean`` (DeepSeekMath GRPO): ``1 / (tokens of its trajectory * S)``;
    - ``seq-mean-token-sum-norm`` (Dr. GRPO): ``1 / (norm_length * S)``, ``norm_length`` a
      constant (the trainer passes the per-turn generation budget).

    Example:
        >>> mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
        >>> token_weights(mask, "token-mean").tolist()
        [[0.25, 0.25, 0.25], [0.25, 0.0, 0.0]]
        >>> token_weights(mask, "seq-mean-token-mean")[:, 0].tolist()
        [0.1666666716337204, 0.5]
        >>> token_weights(mask, "seq-mean-token-sum-norm", norm_length=4)[0, 0].item()
        0.125

        The two rows as two turns of one trajectory: one sequence of four tokens.

        >>> token_weights(mask, "seq-mean-token-mean", trajectories=torch.tensor([0, 0]))[:, 0].tolist()
        [0.25, 0.25]
    """
    mask = mask.float()
    if aggregation == "token-mean":
        return mask / mask.sum().clamp(min=1.0)
    rows = mask.shape[0]
    ids = torch.arange(rows) if trajectories is None else trajectories.long().cpu()
    _, inverse = torch.unique(ids, return_inverse=True)
    inverse = inverse.to(mask.device)
    lengths = torch.zeros(int(inverse.max()) + 1 if rows else 0, device=mask.device)
    lengths = lengths.index_add_(0, inverse, mask.sum(-1))
    sequences = max(int((lengths > 0).sum()), 1)
    if aggregation == "seq-mean-token-mean":
        return mask / (lengths[inverse][:, None].clamp(min=1.0) * sequences)
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


def _to_rows(
    per_trajectory: torch.Tensor, view: TrajectoryView, mask: torch.Tensor
) -> torch.Tensor:
    """Broadcast one advantage per trajectory to every sampled token of its rows."""
    return per_trajectory[view.row_to_trajectory].to(mask.device)[:, None] * mask


# --------------------------------------------------------------------------- estimators


class AdvantageEstimator(Protocol):
    """Trajectory rewards (and optionally per-token log-probs) -> per-token advantages."""

    #: Whether :meth:`compute` needs ``old_logprobs`` and ``ref_logprobs``.
    needs_logprobs: bool

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[rows, tokens]`` advantages (0 on padding).

        ``rewards``/``groups``: per row, the row's trajectory's; ``trajectories``: per row, its
        trajectory id (rows of one trajectory in turn order; ``None``: one row each).
        """
        ...


@dataclass(frozen=True)
class GroupNormalized:
    """GRPO's group-relative advantage; ``std=False`` is Dr. GRPO's (mean-centred only).

    Statistics over the trajectories of each group; ``unbiased`` (default, verl's and so
    Skywork-OR1's ``torch.std``) uses the sample std. A group of one gets advantage 0 (verl
    passes its raw reward through instead, which is no baseline at all).

    Example:
        >>> r, g, m = torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1]), torch.ones(4, 1)
        >>> [round(a, 4) for a in GroupNormalized().compute(r, g, m).flatten().tolist()]
        [0.7071, -0.7071, 0.0, 0.0]
        >>> [round(a, 4) for a in GroupNormalized(unbiased=False).compute(r, g, m).flatten().tolist()]
        [1.0, -1.0, 0.0, 0.0]
        >>> GroupNormalized(std=False).compute(r, g, m).flatten().tolist()
        [1.0, -1.0, 0.0, 0.0]
    """

    std: bool = True
    eps: float = 1e-6
    unbiased: bool = True
    needs_logprobs: bool = field(default=False, init=False)

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        view = trajectory_view(rewards, groups, trajectories)
        mean, std, _ = group_stats(view.rewards, view.groups, unbiased=self.unbiased)
        advantage = view.rewards - mean
        if self.std:
            advantage = advantage / (std + self.eps)
        return _to_rows(advantage, view, mask)


@dataclass(frozen=True)
class LeaveOneOut:
    """RLOO: each trajectory's baseline is the mean of the *other* trajectories of its prompt.

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
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        view = trajectory_view(rewards, groups, trajectories)
        mean, _, size = group_stats(view.rewards, view.groups)
        scale = torch.where(size > 1, size / (size - 1).clamp(min=1.0), torch.zeros_like(size))
        return _to_rows((view.rewards - mean) * scale, view, mask)


@dataclass(frozen=True)
class ReinforcePlusPlus:
    """REINFORCE++ (OpenRLHF): KL-penalised token rewards, returns-to-go, batch whitening.

    ``kl_coef`` is the per-token penalty ``beta`` on ``log pi_old - log pi_ref`` (the k1
    estimator); 0 skips the reference model. The outcome reward sits on the last sampled token
    of a trajectory's last turn and returns run to the end of the trajectory, across turns
    (env tokens in between are not actions and are not discounted); whitening is over every
    sampled token of the batch, as OpenRLHF defines it — so splitting a trajectory into more
    turns changes nothing.
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
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mask = mask.float()
        view = trajectory_view(rewards, groups, trajectories)
        token_rewards = torch.zeros_like(mask)
        if self.kl_coef:
            if old_logprobs is None or ref_logprobs is None:
                raise ValueError("REINFORCE++ with kl_coef needs old and reference log-probs")
            token_rewards = -self.kl_coef * (old_logprobs - ref_logprobs) * mask
        lengths = mask.sum(-1).long()
        rows = mask.shape[0]
        row_ids = torch.arange(rows)
        # the outcome reward goes on the last row (turn) of each trajectory that sampled tokens
        owner = view.row_to_trajectory
        has_tokens = (lengths > 0).cpu()
        last_row = torch.full((view.count,), -1, dtype=torch.long).scatter_reduce_(
            0, owner[has_tokens], row_ids[has_tokens], reduce="amax"
        )
        is_last = torch.zeros(rows, dtype=torch.bool)
        is_last[last_row[last_row >= 0]] = True
        last = (lengths - 1).clamp(min=0)
        token_rewards[row_ids, last] += rewards.float().to(mask.device) * is_last.to(mask.device)
        # returns to go within each row ...
        returns = torch.zeros_like(token_rewards)
        running = torch.zeros(rows, device=mask.device)
        for t in range(mask.shape[1] - 1, -1, -1):
            running = token_rewards[:, t] + self.gamma * running * mask[:, t]
            returns[:, t] = running
        # ... plus what the later turns of the trajectory return, discounted to each token
        start = returns[:, 0].cpu() if mask.shape[1] else torch.zeros(rows)
        carry = torch.zeros(rows)  # the return at the first token of the row's next turn
        following = torch.zeros(view.count)  # per trajectory, walking its rows backwards
        for row in range(rows - 1, -1, -1):
            if not has_tokens[row]:
                continue
            trajectory = int(owner[row])
            carry[row] = following[trajectory]
            following[trajectory] = start[row] + self.gamma ** int(lengths[row]) * carry[row]
        if bool((carry != 0).any()):
            steps_to_end = lengths[:, None] - torch.arange(mask.shape[1], device=mask.device)
            discount = self.gamma ** steps_to_end.clamp(min=0).float()
            returns = returns + discount * carry.to(mask.device)[:, None] * mask
        return _whiten(returns * mask, mask)


@dataclass(frozen=True)
class BatchWhitened:
    """Critic-free PPO's advantage: the outcome reward whitened over the batch's trajectories.

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
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        view = trajectory_view(rewards, groups, trajectories)
        r = view.rewards
        advantage = (r - r.mean()) / (r.std(unbiased=False) + self.eps)
        return _to_rows(advantage, view, mask)


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

    Advantages are per trajectory (see the module docs); ``grpo``'s std is the sample std of the
    group's trajectory rewards (verl's ``torch.std``).

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

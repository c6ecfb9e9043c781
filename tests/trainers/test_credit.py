"""Credit is per trajectory: every estimator takes its statistics over trajectories (not turns),
gives every sampled token of every turn of a trajectory one advantage, and the loss normalisers
count a multi-turn trajectory as one sequence. Plus both pass-rate filters: online (zero-variance
groups, per trajectory) and offline (OR1's measurement of every task before step 1).

Hand-computed values throughout; a hypothesis property checks that splitting trajectories into
more or fewer turns changes no token's advantage or loss weight."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import threading
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.agents.rollout import Step, Trajectory
from arenagym.envs.core.spaces import UnicodeText
from arenagym.trainers.algorithms import (
    BatchWhitened,
    GroupNormalized,
    LeaveOneOut,
    PolicyLoss,
    ReinforcePlusPlus,
    make_algorithm,
    token_weights,
    trajectory_view,
    zero_variance_groups,
)
from arenagym.trainers.batch import Sample, collate, samples_from_trajectories
from arenagym.trainers.config import ConfigError, TaskConfig, TrainConfig, load_config
from arenagym.trainers.trainer import PASS_RATE_FILE, Trainer, _drop_zero_variance, plan_step

# ----------------------------------------------------------------------------- fixtures

# A 1-turn win (trajectory 0: row 0) and a 9-turn loss (trajectory 1: rows 1-9) of one prompt;
# completion lengths vary by turn (3, then 1, 2, 1, 2, 1, 2, 1, 2, 1).
WIN_LOSS_REWARDS = torch.tensor([1.0] + [0.0] * 9)
WIN_LOSS_GROUPS = torch.zeros(10, dtype=torch.long)
WIN_LOSS_TRAJECTORIES = torch.tensor([0] + [1] * 9)
WIN_LOSS_LENGTHS = [3, 1, 2, 1, 2, 1, 2, 1, 2, 1]


def mask_of(lengths: list[int]) -> torch.Tensor:
    """A left-aligned 0/1 mask with the given number of tokens per row."""
    mask = torch.zeros(len(lengths), max(lengths))
    for row, n in enumerate(lengths):
        mask[row, :n] = 1.0
    return mask


WIN_LOSS_MASK = mask_of(WIN_LOSS_LENGTHS)


def token_values(advantages: torch.Tensor, mask: torch.Tensor, rows: list[int]) -> list[float]:
    """Every sampled token's value in ``rows``, in order."""
    return [float(advantages[r, t]) for r in rows for t in range(int(mask[r].sum()))]


def compute(estimator: Any, trajectories: torch.Tensor | None = WIN_LOSS_TRAJECTORIES) -> Any:
    return estimator.compute(
        WIN_LOSS_REWARDS, WIN_LOSS_GROUPS, WIN_LOSS_MASK, trajectories=trajectories
    )


# ----------------------------------------------------------------------------- estimators


def test_a_1_turn_win_and_a_9_turn_loss_weigh_the_same() -> None:
    win, loss = [0], list(range(1, 10))
    # RLOO: the other trajectory is the baseline: 1 - 0, 0 - 1
    rloo = compute(LeaveOneOut())
    assert token_values(rloo, WIN_LOSS_MASK, win) == [1.0] * 3
    assert token_values(rloo, WIN_LOSS_MASK, loss) == [-1.0] * 13
    # GRPO (verl / OR1): mean 0.5, sample std sqrt(0.5): +-0.5 / 0.70711 = +-0.70711
    s = 0.5 / (math.sqrt(0.5) + 1e-6)
    grpo = compute(GroupNormalized())
    assert token_values(grpo, WIN_LOSS_MASK, win) == pytest.approx([s] * 3, rel=1e-6)
    assert token_values(grpo, WIN_LOSS_MASK, loss) == pytest.approx([-s] * 13, rel=1e-6)
    # with the population std (0.5): exactly +-1
    population = compute(GroupNormalized(unbiased=False))
    assert token_values(population, WIN_LOSS_MASK, win + loss) == pytest.approx(
        [1.0] * 3 + [-1.0] * 13, rel=1e-5
    )
    # Dr. GRPO: mean-centred only
    drgrpo = compute(make_algorithm("drgrpo").estimator)
    assert token_values(drgrpo, WIN_LOSS_MASK, win + loss) == [0.5] * 3 + [-0.5] * 13
    # padding stays 0
    assert grpo[1, 1:].tolist() == [0.0, 0.0] and rloo[9, 1:].tolist() == [0.0, 0.0]


def test_statistics_over_turns_were_the_bias() -> None:
    """What the per-turn statistics gave: the win +3, each losing turn -1/3 (mean 0.1, std 0.3)."""
    per_turn = compute(GroupNormalized(unbiased=False), trajectories=None)
    assert per_turn[:, 0].tolist() == pytest.approx([3.0] + [-1 / 3] * 9, rel=1e-5)


# Three groups of trajectories with mixed turn counts:
# group 0: rewards 2 (1 turn), 0 (2 turns), 1 (3 turns); group 1: 1 (4 turns), 1 (1 turn).
MIXED_TURNS = [1, 2, 3, 4, 1]
MIXED_REWARDS = [2.0, 0.0, 1.0, 1.0, 1.0]
MIXED_GROUPS = [0, 0, 0, 1, 1]


def mixed_rows() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = [i for i, n in enumerate(MIXED_TURNS) for _ in range(n)]
    lengths = [1 + (row % 3) for row in range(len(ids))]
    return (
        torch.tensor([MIXED_REWARDS[i] for i in ids]),
        torch.tensor([MIXED_GROUPS[i] for i in ids]),
        mask_of(lengths),
        torch.tensor(ids),
    )


def per_trajectory(advantages: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor) -> list[float]:
    """The one advantage of each trajectory (asserting all of its tokens share it)."""
    values = []
    for trajectory in range(len(MIXED_TURNS)):
        rows = (ids == trajectory).nonzero().flatten().tolist()
        tokens = token_values(advantages, mask, rows)
        assert tokens == pytest.approx([tokens[0]] * len(tokens), abs=1e-6), trajectory
        values.append(tokens[0])
    return values


def test_group_statistics_are_over_trajectories_with_mixed_turn_counts() -> None:
    rewards, groups, mask, ids = mixed_rows()
    # group 0: mean 1, sample std sqrt((1 + 1 + 0) / 2) = 1; group 1 has no variance
    grpo = GroupNormalized().compute(rewards, groups, mask, trajectories=ids)
    assert per_trajectory(grpo, mask, ids) == pytest.approx([1.0, -1.0, 0.0, 0.0, 0.0], abs=1e-5)
    # leave-one-out over the *other trajectories*: 2 - (0+1)/2, 0 - (2+1)/2, 1 - (2+0)/2
    rloo = LeaveOneOut().compute(rewards, groups, mask, trajectories=ids)
    assert per_trajectory(rloo, mask, ids) == pytest.approx([1.5, -1.5, 0.0, 0.0, 0.0])
    # batch whitening over the five trajectories: mean 1, population var (1 + 1) / 5 = 0.4
    std = math.sqrt(0.4)
    ppo = BatchWhitened().compute(rewards, groups, mask, trajectories=ids)
    assert per_trajectory(ppo, mask, ids) == pytest.approx(
        [1 / std, -1 / std, 0.0, 0.0, 0.0], rel=1e-5, abs=1e-6
    )


def test_rows_of_one_trajectory_must_share_its_reward() -> None:
    with pytest.raises(ValueError, match="share its reward"):
        trajectory_view(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), torch.tensor([4, 4]))
    view = trajectory_view(torch.tensor([0.0, 1.0, 0.0]), torch.zeros(3), torch.tensor([9, 2, 9]))
    assert view.row_to_trajectory.tolist() == [0, 1, 0] and view.rewards.tolist() == [0.0, 1.0]


def test_reinforce_pp_returns_run_across_turns() -> None:
    # one trajectory of two turns (2 tokens, then 1), log pi_old - log pi_ref = [0.5, -0.2 | 0.1],
    # beta 0.1, reward 1 on the last token of the *last* turn: token rewards [-0.05, 0.02 | 0.99];
    # returns to the end of the trajectory [0.96, 1.01 | 0.99], then whitened
    mask = mask_of([2, 1])
    old = torch.tensor([[0.5, -0.2], [0.1, 0.0]])
    ref = torch.zeros(2, 2)
    estimator = ReinforcePlusPlus(kl_coef=0.1)
    adv = estimator.compute(
        torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), mask, old, ref, torch.tensor([0, 0])
    )
    returns = [0.96, 1.01, 0.99]
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    expected = [(r - mean) / std for r in returns]
    assert token_values(adv, mask, [0, 1]) == pytest.approx(expected, rel=1e-4)
    # the same tokens as one single-turn sequence: the same advantages
    single = estimator.compute(
        torch.tensor([1.0]),
        torch.tensor([0]),
        torch.ones(1, 3),
        torch.tensor([[0.5, -0.2, 0.1]]),
        torch.zeros(1, 3),
    )
    assert single[0].tolist() == pytest.approx(expected, rel=1e-4)


def test_reinforce_pp_without_kl_gives_a_trajectory_one_advantage() -> None:
    # A: 1 turn of 2 tokens, reward 1; B: 2 turns of 1 + 2 tokens, reward 0.
    # tokens 1, 1 | 0, 0, 0: mean 0.4, population var (2 * 0.36 + 3 * 0.16) / 5 = 0.24
    mask = mask_of([2, 1, 2])
    adv = ReinforcePlusPlus().compute(
        torch.tensor([1.0, 0.0, 0.0]),
        torch.tensor([0, 0, 0]),
        mask,
        None,
        None,
        torch.tensor([0, 1, 1]),
    )
    std = math.sqrt(0.24)
    assert token_values(adv, mask, [0]) == pytest.approx([0.6 / std] * 2, rel=1e-5)
    assert token_values(adv, mask, [1, 2]) == pytest.approx([-0.4 / std] * 3, rel=1e-5)


# ----------------------------------------------------------------------------- loss normalisers

# trajectory 0: rows 0 (3 tokens) and 1 (1 token); trajectory 1: row 2 (2 tokens)
NORM_MASK = mask_of([3, 1, 2])
NORM_TRAJECTORIES = torch.tensor([0, 0, 1])


def test_loss_weights_count_a_trajectory_as_one_sequence() -> None:
    weights = {
        aggregation: token_weights(NORM_MASK, aggregation, 8, NORM_TRAJECTORIES)  # type: ignore[arg-type]
        for aggregation in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
    }
    # OR1 / DAPO: every sampled token of the batch, 1/6
    assert token_values(weights["token-mean"], NORM_MASK, [0, 1, 2]) == pytest.approx([1 / 6] * 6)
    # GRPO (DeepSeekMath): 1 / (4 tokens * 2 trajectories), 1 / (2 tokens * 2 trajectories)
    assert token_values(weights["seq-mean-token-mean"], NORM_MASK, [0, 1, 2]) == pytest.approx(
        [0.125] * 4 + [0.25] * 2
    )
    # Dr. GRPO: the constant 8, times 2 trajectories
    assert token_values(weights["seq-mean-token-sum-norm"], NORM_MASK, [0, 1, 2]) == pytest.approx(
        [1 / 16] * 6
    )
    # rows as sequences (the old, per-turn count) would have been 1/9, 1/3 and 1/(8 * 3)
    per_turn = token_weights(NORM_MASK, "seq-mean-token-mean")
    assert per_turn[:, 0].tolist() == pytest.approx([1 / 9, 1 / 3, 1 / 6])


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("token-mean", -(4 * 1.0 - 2 * 1.0) / 6),  # -1/3
        ("seq-mean-token-mean", -(4 * 0.125 - 2 * 0.25)),  # each trajectory's mean, averaged: 0
        ("seq-mean-token-sum-norm", -(4 - 2) / 16),  # token sums / (8 * 2 trajectories)
    ],
)
def test_aggregated_loss_of_a_multi_turn_batch(aggregation: str, expected: float) -> None:
    # on-policy (ratio 1), advantage +1 for trajectory 0's four tokens, -1 for trajectory 1's two
    advantages = GroupNormalized(std=False).compute(
        torch.tensor([1.0, 1.0, -1.0]),
        torch.tensor([0, 0, 0]),
        NORM_MASK,
        trajectories=NORM_TRAJECTORIES,
    )
    assert token_values(advantages, NORM_MASK, [0, 1, 2]) == [1.0] * 4 + [-1.0] * 2
    weights = token_weights(NORM_MASK, aggregation, 8, NORM_TRAJECTORIES)  # type: ignore[arg-type]
    logprobs = torch.full_like(NORM_MASK, -1.0)
    out = PolicyLoss(aggregation=aggregation)(logprobs, logprobs, advantages, weights)  # type: ignore[arg-type]
    assert out.loss.item() == pytest.approx(expected, abs=1e-7)


# ----------------------------------------------------------------------------- from trajectories


def make_trajectory(index: int, reward: float, lengths: list[int]) -> Trajectory:
    """A trajectory whose turns sampled ``lengths`` tokens (0: a turn that sampled nothing)."""
    steps = [
        Step(
            f"obs {turn}",
            "act",
            0.0,
            {},
            list(range(100 + turn, 110 + turn)),  # prompt: system prompt + observations so far
            list(range(1, n + 1)),
            [-0.5] * n,
        )
        for turn, n in enumerate(lengths)
    ]
    return Trajectory(index, "X-v0", {}, 0, "solved", steps, reward=reward, clean_reward=reward)


def test_every_sampled_token_of_a_multi_turn_trajectory_gets_its_advantage() -> None:
    trajectories = [
        make_trajectory(0, 1.0, [4]),
        make_trajectory(1, 0.0, [2, 0, 3, 1]),  # the empty turn makes no row
        make_trajectory(2, 0.5, [1, 5]),
    ]
    rewards = [t.reward for t in trajectories]
    samples = samples_from_trajectories(trajectories, rewards, [0, 0, 0])
    assert [s.trajectory for s in samples] == [0, 1, 1, 1, 2, 2]
    batch = collate(samples, pad_id=0)
    # only sampled tokens are in the mask; prompt (env) tokens never are
    assert batch.mask.sum(-1).tolist() == [4, 2, 3, 1, 1, 5]
    assert bool((batch.targets[batch.mask.bool()] < 100).all())
    for estimator in (GroupNormalized(), LeaveOneOut(), BatchWhitened(), ReinforcePlusPlus()):
        adv = estimator.compute(
            batch.rewards, batch.groups, batch.mask, trajectories=batch.trajectories
        )
        for trajectory, rows in ((0, [0]), (1, [1, 2, 3]), (2, [4, 5])):
            tokens = token_values(adv, batch.mask, rows)
            assert tokens == pytest.approx([tokens[0]] * len(tokens), abs=1e-6), (
                estimator,
                trajectory,
            )
        assert float((adv * (1 - batch.mask)).abs().sum()) == 0.0  # nothing on padding
    # the values: mean 0.5, sample std 0.5 -> +1, -1, 0
    grpo = GroupNormalized().compute(
        batch.rewards, batch.groups, batch.mask, trajectories=batch.trajectories
    )
    assert grpo[[0, 1, 4], 0].tolist() == pytest.approx([1.0, -1.0, 0.0], abs=1e-5)


# ----------------------------------------------------------------------------- the property


@st.composite
def split_batches(draw: st.DrawFn) -> dict[str, Any]:
    """Trajectories (reward, group, token count) and a random split of each into turns."""
    count = draw(st.integers(2, 7))
    trajectories = []
    for _ in range(count):
        tokens = draw(st.integers(1, 6))
        cuts = (
            sorted(draw(st.sets(st.integers(1, tokens - 1), max_size=tokens - 1)))
            if tokens > 1
            else []
        )
        bounds = [0, *cuts, tokens]
        trajectories.append(
            {
                "reward": draw(st.sampled_from([0.0, 0.25, 1.0, 2.0])),
                "group": draw(st.integers(0, 2)),
                "turns": [b - a for a, b in itertools.pairwise(bounds)],
                "kl": draw(
                    st.lists(st.floats(-1, 1, allow_nan=False), min_size=tokens, max_size=tokens)
                ),
            }
        )
    return {"trajectories": trajectories}


def layout(trajectories: list[dict[str, Any]], split: bool) -> dict[str, torch.Tensor]:
    """Rows: one per turn (``split``) or one per trajectory, with their tensors."""
    rows: list[tuple[int, list[float]]] = []  # (trajectory, kl values of the row's tokens)
    for i, t in enumerate(trajectories):
        pieces = t["turns"] if split else [sum(t["turns"])]
        start = 0
        for n in pieces:
            rows.append((i, t["kl"][start : start + n]))
            start += n
    width = max(len(kl) for _, kl in rows)
    mask = torch.zeros(len(rows), width)
    old = torch.zeros(len(rows), width)
    for r, (_, kl) in enumerate(rows):
        mask[r, : len(kl)] = 1.0
        old[r, : len(kl)] = torch.tensor(kl)
    ids = torch.tensor([i for i, _ in rows])
    return {
        "rewards": torch.tensor([trajectories[i]["reward"] for i, _ in rows]),
        "groups": torch.tensor([trajectories[i]["group"] for i, _ in rows]),
        "mask": mask,
        "old": old,
        "ids": ids,
    }


def by_trajectory(
    values: torch.Tensor, rows: dict[str, torch.Tensor], count: int
) -> list[list[float]]:
    """Each trajectory's token values, concatenated over its rows."""
    out: list[list[float]] = [[] for _ in range(count)]
    for r, i in enumerate(rows["ids"].tolist()):
        out[i].extend(values[r, : int(rows["mask"][r].sum())].tolist())
    return out


@settings(max_examples=60, deadline=None)
@given(split_batches())
def test_advantages_and_weights_do_not_depend_on_the_number_of_turns(batch: dict[str, Any]) -> None:
    trajectories = batch["trajectories"]
    split, whole = layout(trajectories, True), layout(trajectories, False)
    estimators = (
        GroupNormalized(),
        GroupNormalized(std=False),
        LeaveOneOut(),
        BatchWhitened(),
        ReinforcePlusPlus(),
        ReinforcePlusPlus(kl_coef=0.1),
        ReinforcePlusPlus(kl_coef=0.1, gamma=0.9),
    )
    for estimator in estimators:
        results = [
            by_trajectory(
                estimator.compute(
                    rows["rewards"],
                    rows["groups"],
                    rows["mask"],
                    rows["old"],
                    torch.zeros_like(rows["old"]),
                    rows["ids"],
                ),
                rows,
                len(trajectories),
            )
            for rows in (split, whole)
        ]
        for a, b in zip(*results, strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-4), estimator
            if not getattr(estimator, "kl_coef", 0.0):  # one advantage per trajectory
                assert a == pytest.approx([a[0]] * len(a), abs=1e-5), estimator
    for aggregation in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
        weights = [
            by_trajectory(
                token_weights(rows["mask"], aggregation, 6, rows["ids"]),  # type: ignore[arg-type]
                rows,
                len(trajectories),
            )
            for rows in (split, whole)
        ]
        for a, b in zip(*weights, strict=True):
            assert a == pytest.approx(b, rel=1e-6), aggregation


# ----------------------------------------------------------------------------- online filter


def sample(trajectory: int, group: int, reward: float) -> Sample:
    return Sample([1], [2], [-0.1], reward, reward, group, trajectory)


def test_zero_variance_filter_is_per_trajectory() -> None:
    # group 0: a 1-turn and a 3-turn trajectory, both reward 1 -> dropped however many turns;
    # group 1: 1 vs 0 -> kept; group 2: 0 (2 turns) vs 1 but that trajectory sampled nothing
    # (no rows): the trajectories trained on all have reward 0 -> dropped
    rewards = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    groups = [0, 0, 1, 1, 2, 2]
    samples = [
        sample(0, 0, 1.0),
        *(sample(1, 0, 1.0) for _ in range(3)),
        sample(2, 1, 1.0),
        *(sample(3, 1, 0.0) for _ in range(4)),
        *(sample(4, 2, 0.0) for _ in range(2)),
    ]
    kept, dropped = _drop_zero_variance(samples, [], rewards, groups)
    assert dropped == 2
    assert [s.trajectory for s in kept] == [2, 3, 3, 3, 3]
    flags = zero_variance_groups(
        torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]),
        torch.tensor([0, 0, 0, 1, 1]),
        torch.tensor([0, 1, 1, 2, 3]),
    )
    assert flags.tolist() == [True, True, True, False, False]


# ----------------------------------------------------------------------------- the trainer

TURNS_ENV_ID = "TrainerTest-Turns-v0"


class TurnsEnv(gym.Env[str, str]):
    """``turns`` turns; the last one's reward is the share of vowels in the response."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, turns: int = 3) -> None:
        self.turns = turns
        self.turn = 0
        self.observation_space = UnicodeText(max_length=10_000)
        self.action_space = UnicodeText(max_length=10_000)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.turn = 0
        return "Say something.", {"system_prompt": "", "task_id": "turns"}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turn += 1
        if self.turn < self.turns:
            return "Again.", 0.0, False, False, {"reward_components": {"vowels": 0.0}}
        text = action if isinstance(action, str) else ""
        reward = sum(c in "aeiou" for c in text) / len(text) if text else 0.0
        info = {"reward_components": {"vowels": reward}, "stop_reason": "solved"}
        return "done", reward, True, False, info


PASS_ENV_ID = "TrainerTest-PassRate-v0"


class PassRateEnv(gym.Env[str, str]):
    """One turn, solved by ``mode``: ``"always"``, ``"never"`` or ``"alternate"`` (every other
    reset of that mode in this process, so any 2k consecutive episodes pass exactly k times)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    resets: ClassVar[dict[str, int]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, mode: str = "always") -> None:
        self.mode = mode
        self.solves = False
        self.observation_space = UnicodeText(max_length=10_000)
        self.action_space = UnicodeText(max_length=10_000)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        with PassRateEnv.lock:
            count = PassRateEnv.resets.get(self.mode, 0)
            PassRateEnv.resets[self.mode] = count + 1
        self.solves = self.mode == "always" or (self.mode == "alternate" and count % 2 == 0)
        return "Answer.", {"system_prompt": "", "task_id": self.mode}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        reward = 1.0 if self.solves else 0.0
        info = {
            "reward_components": {"correct": reward},
            "stop_reason": "solved" if self.solves else "failed",
        }
        return "done", reward, True, False, info


for _id, _entry in ((TURNS_ENV_ID, TurnsEnv), (PASS_ENV_ID, PassRateEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry)


def tiny_config(model: Path, output: Path, *overrides: str, tasks: list[TaskConfig]) -> TrainConfig:
    config = load_config(
        "grpo",
        [
            f'model.path="{model}"',
            'model.device="cpu"',
            f'run.output_dir="{output}"',
            "run.steps=1",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=4",
            "rollout.max_tokens=5",
            "optim.lr=0.001",
            *overrides,
        ],
    )
    config.tasks = tasks
    return config


@dataclasses.dataclass(frozen=True)
class Recording:
    """An estimator that records what the trainer gave it and what it returned."""

    inner: Any
    calls: list[dict[str, torch.Tensor]]

    @property
    def needs_logprobs(self) -> bool:
        return bool(self.inner.needs_logprobs)

    def compute(
        self,
        rewards: torch.Tensor,
        groups: torch.Tensor,
        mask: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
        trajectories: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.inner.compute(rewards, groups, mask, old_logprobs, ref_logprobs, trajectories)
        self.calls.append(
            {"rewards": rewards, "groups": groups, "mask": mask, "ids": trajectories, "adv": out}
        )
        return out


def test_trainer_gives_each_multi_turn_trajectory_one_advantage(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = tiny_config(tiny_model_dir, tmp_path, tasks=[TaskConfig(TURNS_ENV_ID, {"turns": 3})])
    trainer = Trainer(config)
    calls: list[dict[str, torch.Tensor]] = []
    trainer.algorithm = dataclasses.replace(
        trainer.algorithm, estimator=Recording(trainer.algorithm.estimator, calls)
    )
    [record] = trainer.train()
    [call] = calls
    ids, mask, adv = call["ids"], call["mask"], call["adv"]
    assert record["samples"] == len(ids) == 8 * 3  # 8 trajectories of 3 turns each
    assert sorted(set(ids.tolist())) == list(range(8))
    expected = {}
    for group in (0, 1):
        members = sorted({int(i) for i, g in zip(ids, call["groups"], strict=True) if g == group})
        rewards = [float(call["rewards"][ids == i][0]) for i in members]
        mean = sum(rewards) / len(rewards)
        std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1))
        expected.update(
            {i: (r - mean) / (std + 1e-6) for i, r in zip(members, rewards, strict=True)}
        )
    for trajectory, value in expected.items():
        rows = (ids == trajectory).nonzero().flatten().tolist()
        assert token_values(adv, mask, rows) == pytest.approx(
            [value] * int(mask[rows].sum()), abs=1e-4
        )


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean"])
def test_multi_turn_micro_batching_is_exact(
    aggregation: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A trajectory's turns in different micro-batches still make exactly the batch's loss."""
    states = []
    for micro in (1, 5, 64):
        config = tiny_config(
            tiny_model_dir,
            tmp_path / str(micro),
            f'algorithm.aggregation="{aggregation}"',
            f"optim.micro_batch_size={micro}",
            "optim.eps=1.0",
            "optim.lr=1.0",
            "optim.max_grad_norm=0",
            tasks=[TaskConfig(TURNS_ENV_ID, {"turns": 2})],
        )
        trainer = Trainer(config)
        trainer.train()
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    for other in states[1:]:
        for name, tensor in states[0].items():
            assert torch.allclose(tensor, other[name], atol=1e-6, rtol=1e-5), name


# ----------------------------------------------------------------------------- offline filter

NEVER = TaskConfig(PASS_ENV_ID, {"mode": "never"})
ALWAYS = TaskConfig(PASS_ENV_ID, {"mode": "always"})
ALTERNATE = TaskConfig(PASS_ENV_ID, {"mode": "alternate"})


def test_offline_filter_drops_tasks_always_or_never_solved(
    tiny_model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def config() -> TrainConfig:
        return tiny_config(
            tiny_model_dir,
            tmp_path,
            "data.pass_rate_samples=4",
            "run.checkpoint_every=1",
            tasks=[NEVER, ALWAYS, ALTERNATE],
        )

    trainer = Trainer(config())
    with caplog.at_level(logging.INFO, logger="arenagym.trainers.trainer"):
        [record] = trainer.train()
    assert "dropped 2 of 3 tasks" in caplog.text
    assert [row["pass_rate"] for row in trainer.pass_rates or []] == [0.0, 1.0, 0.5]
    assert trainer.config.tasks == [ALTERNATE]
    assert all(e.env_kwargs == {"mode": "alternate"} for e in plan_step(trainer.config, 0).episodes)
    assert record["step"] == 1
    saved = json.loads((tmp_path / PASS_RATE_FILE).read_text())
    assert [row["kept"] for row in saved["tasks"]] == [False, False, True]

    # a resumed run reuses the measurement instead of measuring the trained policy
    def must_not_run() -> list[dict[str, Any]]:
        raise AssertionError("a resumed run measured the pass rates again")

    resumed = Trainer(config(), resume=True)
    assert resumed.step_count == 1
    monkeypatch.setattr(resumed, "_measure_pass_rates", must_not_run)
    [record] = resumed.train(steps=2)
    assert record["step"] == 2 and resumed.config.tasks == [ALTERNATE]
    # without the measurement, a resumed run warns and keeps every task
    (tmp_path / PASS_RATE_FILE).unlink()
    again = Trainer(config(), resume=True)
    assert again.step_count == 2
    monkeypatch.setattr(again, "_measure_pass_rates", must_not_run)
    with pytest.warns(UserWarning, match="without the offline filter"):
        again._filter_tasks_by_pass_rate()
    assert again.config.tasks == [NEVER, ALWAYS, ALTERNATE]


def test_offline_filter_is_off_by_default_and_refuses_to_drop_everything(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    plain = Trainer(tiny_config(tiny_model_dir, tmp_path / "plain", tasks=[NEVER, ALTERNATE]))
    plain.train()
    assert plain.pass_rates is None and plain.config.tasks == [NEVER, ALTERNATE]
    assert not (tmp_path / "plain" / PASS_RATE_FILE).exists()
    config = tiny_config(
        tiny_model_dir, tmp_path / "all", "data.pass_rate_samples=2", tasks=[NEVER, ALWAYS]
    )
    with pytest.raises(RuntimeError, match="no task is left"):
        Trainer(config).train()
    with pytest.raises(ConfigError, match="pass_rate_low"):
        load_config("grpo", ["data.pass_rate_low=0.5", "data.pass_rate_high=0.5"])
    with pytest.raises(ConfigError, match="pass_rate_samples"):
        load_config("grpo", ["data.pass_rate_samples=-1"])

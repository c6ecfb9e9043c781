"""The trainer on the tiny model: it learns, every preset runs, micro-batching is exact,
OR1's filtering / entropy control / context stages act as configured, weights reach the
generator, and every step writes its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from arenagym.trainers.config import TaskConfig, TrainConfig, load_config
from arenagym.trainers.metrics import STEP_FIELDS, read_metrics
from arenagym.trainers.trainer import Trainer, plan_step

CHARS = TaskConfig("TrainerTest-Chars-v0", {"chars": "aeiou"})


def tiny_config(
    preset: str, model: Path, output: Path, *overrides: str, tasks: list[TaskConfig] | None = None
) -> TrainConfig:
    config = load_config(
        preset,
        [
            f'model.path="{model}"',
            'model.device="cpu"',
            f'run.output_dir="{output}"',
            "run.steps=1",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=4",
            "rollout.max_tokens=6",
            "rollout.context_stages=[]",
            "optim.micro_batch_size=8",
            "optim.lr=0.001",
            *overrides,
        ],
    )
    config.tasks = tasks or [CHARS]
    return config


def test_training_raises_the_reward(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(
        "grpo",
        tiny_model_dir,
        tmp_path,
        "run.steps=14",
        "optim.lr=0.003",
        "rollout.prompts_per_step=2",
        "rollout.group_size=8",
        "rollout.max_tokens=8",
        "optim.micro_batch_size=16",
    )
    records = Trainer(config).train()
    rewards = [r["reward_mean"] for r in records]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.08, rewards  # ~0.28 -> ~0.45 with seed 0
    assert records[-1]["entropy"] < records[0]["entropy"]


@pytest.mark.parametrize("preset", ["grpo", "or1", "drgrpo", "rloo", "reinforce_pp", "ppo"])
def test_every_preset_makes_an_update(preset: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(preset, tiny_model_dir, tmp_path, "optim.mini_batches=1")
    trainer = Trainer(config)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    [record] = trainer.train()
    changed = any(
        not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True)
    )
    assert changed and record["optimizer_steps"] >= 1
    if config.optim.ppo_epochs == 1:  # one update of fresh samples: every ratio is exactly 1
        assert record["clip_fraction"] == 0.0
    else:  # PPO's second epoch runs on the updated policy, so some ratios leave [0.8, 1.2]
        assert 0.0 <= record["clip_fraction"] <= 1.0
    if trainer.algorithm.needs_reference and config.optim.ppo_epochs == 1:
        assert record["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before update


def test_micro_batching_is_exact_gradient_accumulation(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    states = []
    for micro in (1, 3, 8):
        # Adam's first step is ~lr * sign(g); with eps = 1 it is ~lr * g, so the weights
        # compare the accumulated gradients themselves
        config = tiny_config(
            "grpo",
            tiny_model_dir,
            tmp_path / str(micro),
            f"optim.micro_batch_size={micro}",
            "optim.eps=1.0",
            "optim.lr=1.0",
            "optim.max_grad_norm=0",
        )
        trainer = Trainer(config)
        trainer.train()
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    for other in states[1:]:
        for name, tensor in states[0].items():
            assert torch.allclose(tensor, other[name], atol=1e-6, rtol=1e-5), name


def _one_update(tiny_model_dir: Path, output: Path, *overrides: str) -> tuple[Any, dict]:
    """One GRPO update whose weight change is ~ the (clipped) gradient: Adam's first step is
    ``lr * g / (|g| + eps)``, within 1% of ``g`` with ``lr = eps = 100`` (|g| < 1 per entry)."""
    config = tiny_config(
        "grpo", tiny_model_dir, output, "optim.eps=100.0", "optim.lr=100.0", *overrides
    )
    trainer = Trainer(config)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    [record] = trainer.train()
    delta = torch.cat(
        [
            (p.detach() - b).flatten()
            for p, b in zip(trainer.model.parameters(), before, strict=True)
        ]
    )
    return trainer, {"record": record, "update_norm": float(delta.norm())}


def test_gradient_clipping_bounds_the_update(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, free = _one_update(tiny_model_dir, tmp_path / "free", "optim.max_grad_norm=0")
    grad_norm = free["record"]["grad_norm"]  # the norm before clipping
    assert free["update_norm"] == pytest.approx(grad_norm, rel=0.02)
    limit = grad_norm / 10
    _, clipped = _one_update(tiny_model_dir, tmp_path / "clip", f"optim.max_grad_norm={limit}")
    assert clipped["record"]["grad_norm"] == pytest.approx(grad_norm, rel=1e-4)
    assert clipped["update_norm"] == pytest.approx(limit, rel=0.02)


def _checkpointing(model: Any) -> bool:
    if hasattr(model, "is_activation_checkpointing"):  # newer transformers
        return bool(model.is_activation_checkpointing)
    return bool(model.is_gradient_checkpointing)


def test_gradient_checkpointing_gives_the_same_update(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain, _ = _one_update(tiny_model_dir, tmp_path / "plain", "optim.max_grad_norm=0")
    checkpointed, _ = _one_update(
        tiny_model_dir,
        tmp_path / "ckpt",
        "optim.max_grad_norm=0",
        "model.gradient_checkpointing=true",
    )
    assert _checkpointing(checkpointed.model) and not _checkpointing(plain.model)
    expected = plain.model.state_dict()
    for name, tensor in checkpointed.model.state_dict().items():
        assert torch.allclose(tensor, expected[name], atol=1e-6, rtol=1e-5), name


def test_metrics_jsonl_has_every_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config("grpo", tiny_model_dir, tmp_path, "run.steps=2")
    Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert set(STEP_FIELDS) <= set(row)
        assert 0.0 <= row["reward_mean"] <= 1.0 and row["tokens_per_s"] > 0
        assert 1 <= row["response_length"] <= 6


def test_tensorboard_gets_the_same_scalars_as_the_jsonl(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package is not installed",
    )
    config = tiny_config("grpo", tiny_model_dir, tmp_path, "run.steps=2", "run.tensorboard=true")
    Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    reward = events.Scalars("train/reward_mean")
    assert [e.step for e in reward] == [1, 2]
    assert [e.value for e in reward] == pytest.approx([r["reward_mean"] for r in rows])
    assert "train/entropy_coef" in events.Tags()["scalars"]


def test_or1_drops_groups_without_reward_variance(tiny_model_dir: Path, tmp_path: Path) -> None:
    # Math-v0 answers from a random model are all wrong: every group is all zeros -> dropped
    math = TaskConfig("Math-v0", {"difficulty": 1})
    config = tiny_config("or1", tiny_model_dir, tmp_path, "rollout.max_tokens=3", tasks=[math])
    trainer = Trainer(config)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    [record] = trainer.train()
    assert record["reward_mean"] == 0.0
    assert record["filtered_groups"] == record["groups"] == 2
    assert record["samples"] == 0 and record["skipped_update"]
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    # the same batch without filtering keeps every group (and GRPO's advantages are then all 0)
    config.algorithm.filter_zero_variance_groups = False
    config.run.output_dir = str(tmp_path / "unfiltered")
    [record] = Trainer(config).train()
    assert record["filtered_groups"] == 0 and record["samples"] == 8


def test_entropy_control_moves_the_coefficient_in_training(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # the tiny model's entropy (~6 nats) is below a target of 10: the bonus turns on and grows
    config = tiny_config(
        "or1",
        tiny_model_dir,
        tmp_path,
        "run.steps=3",
        "entropy.target=10.0",
        "algorithm.filter_zero_variance_groups=false",
    )
    records = Trainer(config).train()
    assert [r["entropy_coef"] for r in records] == pytest.approx([1e-4, 2e-4, 3e-4])
    config.entropy.target = 0.2  # above target: stays at 0 (and off)
    config.run.output_dir = str(tmp_path / "high")
    assert [r["entropy_coef"] for r in Trainer(config).train()] == [0.0, 0.0, 0.0]


def test_context_stages_set_the_generation_budget(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(
        "grpo",
        tiny_model_dir,
        tmp_path,
        "run.steps=3",
        "rollout.context_stages=[[0, 2], [2, 5]]",
    )
    assert [plan_step(config, s).max_tokens for s in range(3)] == [2, 2, 5]
    records = Trainer(config).train()
    assert [r["max_tokens"] for r in records] == [2, 2, 5]
    assert [r["context_stage"] for r in records] == [0, 0, 1]
    assert records[0]["response_length"] <= 2 < records[2]["response_length"] <= 5


def test_transformers_generator_samples_from_the_updated_policy(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = Trainer(tiny_config("grpo", tiny_model_dir, tmp_path))
    backend = trainer.generator.backend  # type: ignore[attr-defined]
    assert backend.model is trainer.model  # shared, so an update needs no copy


class FakeVLLMBackend:
    """Records what the trainer pushes (the real engine is tested in tests/agents/test_vllm_backend.py)."""

    instances: ClassVar[list[FakeVLLMBackend]] = []

    def __init__(self, model_path: str, **kwargs: Any) -> None:
        from arenagym.agents.backends.hf import TransformersBackend

        self.inner = TransformersBackend(model_path, device="cpu", dtype="float32")
        self.kwargs = kwargs
        self.pushed: list[dict[str, torch.Tensor]] = []
        self.max_context = self.inner.max_context
        FakeVLLMBackend.instances.append(self)

    def count_tokens(self, conversation: Any) -> int:
        return self.inner.count_tokens(conversation)

    def generate(self, conversations: Any, params: Any) -> Any:
        return self.inner.generate(conversations, params)

    def update_weights(self, weights: Any) -> None:
        named = {name: tensor.clone() for name, tensor in weights}
        self.pushed.append(named)
        self.inner.update_weights(named)


def test_vllm_generator_gets_weights_pushed_after_every_update(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arenagym.agents.backends.vllm as vllm_backend

    monkeypatch.setattr(vllm_backend, "VLLMBackend", FakeVLLMBackend)
    config = tiny_config("grpo", tiny_model_dir, tmp_path, "run.steps=2", 'model.generator="vllm"')
    config.model.vllm_kwargs = {"gpu_memory_utilization": 0.3}
    trainer = Trainer(config)
    trainer.train()
    fake = FakeVLLMBackend.instances[-1]
    assert fake.kwargs == {"gpu_memory_utilization": 0.3}
    assert len(fake.pushed) == 2
    policy = trainer.model.state_dict()
    assert set(fake.pushed[-1]) == set(policy)
    assert all(torch.equal(fake.pushed[-1][k], policy[k]) for k in policy)
    assert not torch.equal(fake.pushed[0]["model.norm.weight"], fake.pushed[1]["model.norm.weight"])


def test_on_policy_update_skips_the_old_logprob_pass_and_gives_the_same_update(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one update per rollout batch the old log-probs come from the update's own forward
    pass (detached): no separate scoring pass, and the same weights as with one."""
    overrides = ("optim.ppo_epochs=1", "optim.mini_batches=1", "algorithm.kl_coef=0.0")
    scored: list[int] = []
    real_score = Trainer._score

    def spy(self: Trainer, model: Any, samples: list) -> list:
        scored.append(len(samples))
        return real_score(self, model, samples)

    monkeypatch.setattr(Trainer, "_score", spy)
    shortcut = Trainer(tiny_config("grpo", tiny_model_dir, tmp_path / "a", *overrides))
    shortcut.train()
    assert scored == []  # no policy (and, without KL, no reference) scoring pass

    scoring = Trainer(tiny_config("grpo", tiny_model_dir, tmp_path / "b", *overrides))
    estimator = scoring.algorithm.estimator
    monkeypatch.setattr(type(estimator), "needs_logprobs", True, raising=False)
    scoring.train()
    assert scored  # the separate pass ran this time
    for (name, a), b in zip(
        shortcut.model.named_parameters(), scoring.model.parameters(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name

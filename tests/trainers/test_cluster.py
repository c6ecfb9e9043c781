"""Rollouts and training on a simulated Ray cluster (:mod:`arenagym.agents.cluster`).

One machine plays the cluster (:class:`ray.cluster_utils.Cluster`: a head without CPUs and two
worker nodes with two CPUs each), so every engine and env host runs on a worker node. Seeded
rollouts on the cluster must equal the local rollout engine's, token for token; a weight push must
reach every engine; a dead engine is dropped without losing an episode; and the trainer trains
with its rollouts there, its engines ending with the policy's weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")
from ray.cluster_utils import Cluster  # noqa: E402

from arenagym.agents.backends.hf import TransformersBackend  # noqa: E402
from arenagym.agents.backends.interface import SamplingParams  # noqa: E402
from arenagym.agents.cluster import (  # noqa: E402
    ClusterRollout,
    ClusterSetupError,
    EnginePool,
)
from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine  # noqa: E402
from arenagym.trainers.config import ConfigError, TaskConfig, load_config  # noqa: E402
from arenagym.trainers.trainer import Trainer  # noqa: E402

_TESTKIT = str(Path(__file__).resolve().parent)
HALF = {"num_cpus": 0.5}
EPISODES = [EpisodeSpec("Math-v0", {"difficulty": 1}, seed=s) for s in range(5)] + [
    EpisodeSpec("TrainerTest-Chars-v0", {"chars": "aeiou"}, seed=s) for s in range(3)
]
CONFIG = RolloutConfig(SamplingParams(max_tokens=6, seed=11), max_turns=3, max_wait_s=0.05)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # the env hosts import arenagym_trainers_testkit (TrainerTest-Chars-v0): its folder
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_TESTKIT, old_path) if p)
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            simulated.add_node(num_cpus=2)
        ray.init(address=simulated.address, log_to_driver=False)
        yield simulated
    finally:
        ray.shutdown()
        simulated.shutdown()
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path


def _tokens(trajectories: list[Any]) -> list[Any]:
    return [
        (t.stop_reason, t.reward, [(s.action, s.completion_token_ids) for s in t.steps])
        for t in trajectories
    ]


def _logprobs(completions: list[Any]) -> list[float]:
    return [logprob for completion in completions for logprob in completion.logprobs]


def _start(model: Path, engines: int = 2, env_workers: int = 2) -> ClusterRollout:
    return ClusterRollout.start(
        "hf",
        str(model),
        address=ray.get_runtime_context().gcs_address,
        engines=engines,
        engine_resources=HALF,
        backend_kwargs={"device": "cpu", "dtype": "float32"},
        env_workers=env_workers,
        env_resources=HALF,
        imports=["arenagym_trainers_testkit"],
    )


def test_cluster_rollout_equals_the_local_engine(cluster: Cluster, tiny_model_dir: Path) -> None:
    local = RolloutEngine(
        TransformersBackend(tiny_model_dir, device="cpu", dtype="float32"), CONFIG
    ).run(EPISODES)
    rollout = _start(tiny_model_dir)
    try:
        remote = rollout.run(EPISODES, CONFIG)
        hosts = rollout.env_hosts.stats() if rollout.env_hosts else []
        engines = rollout.engines.infos
    finally:
        rollout.shutdown()
    assert _tokens(remote) == _tokens(local)
    assert all(t.steps and t.error is None for t in remote)
    head = cluster.head_node.node_id
    # every env was built on a host, both hosts were used, and none runs on the (CPU-less) head
    assert sum(h["made"] for h in hosts) == len(EPISODES)
    assert all(h["made"] > 0 and h["live"] == 0 for h in hosts)
    assert {h["node_id"] for h in hosts} | {e["node_id"] for e in engines} <= {
        node.node_id for node in cluster.worker_nodes
    }
    assert head not in {e["node_id"] for e in engines}


def test_a_weight_push_reaches_every_engine(cluster: Cluster, tiny_model_dir: Path) -> None:
    pool = EnginePool.start(
        "hf", str(tiny_model_dir), engines=2, resources=HALF,
        backend_kwargs={"device": "cpu", "dtype": "float32"},
    )  # fmt: skip
    try:
        local = TransformersBackend(tiny_model_dir, device="cpu", dtype="float32")
        conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]
        greedy = SamplingParams(max_tokens=5, temperature=0.0)
        before = pool.generate(conversations, greedy)
        with torch.no_grad():
            for parameter in local.model.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.5)
        pool.update_weights(local.model.state_dict())
        after = pool.generate(conversations, greedy)
        expected = local.generate(conversations, greedy)
        versions = [
            info["weights_version"] for info in ray.get([e.info.remote() for e in pool.engines])
        ]
    finally:
        pool.shutdown()
    assert versions == [1, 1] and pool.weights_version == 1
    # rows 0-1 went to one engine, rows 2-3 to the other: both generate with the new weights
    assert [c.completion_token_ids for c in after] == [c.completion_token_ids for c in expected]
    assert _logprobs(after) == pytest.approx(_logprobs(expected), abs=1e-4)
    assert [c.completion_token_ids for c in after] != [c.completion_token_ids for c in before]


def test_a_dead_engine_is_dropped_and_loses_no_episode(
    cluster: Cluster, tiny_model_dir: Path
) -> None:
    rollout = _start(tiny_model_dir, env_workers=0)
    try:
        first = rollout.run(EPISODES, CONFIG)
        ray.kill(rollout.engines.engines[0], no_restart=True)
        second = rollout.run(EPISODES, CONFIG)
        live, dropped = len(rollout.engines.engines), list(rollout.engines.dropped)
    finally:
        rollout.shutdown()
    assert _tokens(second) == _tokens(first)
    assert all(t.error is None for t in second)
    assert live == 1 and len(dropped) == 1 and "Actor" in dropped[0]


def test_a_cluster_too_small_fails_at_once(cluster: Cluster, tiny_model_dir: Path) -> None:
    with pytest.raises(ClusterSetupError, match=r"6 GPU \(the cluster has 0\): add nodes"):
        EnginePool.start("hf", str(tiny_model_dir), engines=6, resources={"num_gpus": 1})
    with pytest.raises(ClusterSetupError, match=r"need 5 CPU \(the cluster has 4\)"):
        _start(tiny_model_dir, engines=6, env_workers=4)


def test_resources_are_checked_with_the_config() -> None:
    with pytest.raises(ConfigError, match=r"cluster.engine_resources: unknown key 'gpus'"):
        load_config("grpo", ['cluster.engine_resources={"gpus": 1}'])
    with pytest.raises(ConfigError, match=r"cluster.env_workers must be >= 0"):
        load_config("grpo", ["cluster.env_workers=-1"])


def test_the_trainer_trains_on_the_cluster(
    cluster: Cluster, tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=2",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=4",
            "rollout.max_tokens=6",
            "rollout.context_stages=[]",
            "optim.lr=0.01",
            f'cluster.address="{ray.get_runtime_context().gcs_address}"',
            "cluster.engines=2",
            'cluster.engine_resources={"num_cpus": 0.5}',
            "cluster.env_workers=2",
            'cluster.env_resources={"num_cpus": 0.5}',
        ],
    )
    config.tasks = [TaskConfig("TrainerTest-Chars-v0", {"chars": "aeiou"})]
    config.imports = ["arenagym_trainers_testkit"]  # the env hosts import it too
    trainer = Trainer(config)
    try:
        records = trainer.train()
        pool = trainer.generator.cluster.engines  # type: ignore[attr-defined]
        hosts = trainer.generator.cluster.env_hosts.stats()  # type: ignore[attr-defined]
        conversations = [[{"role": "user", "content": f"say {c}"}] for c in "aeiou"]
        greedy = SamplingParams(max_tokens=5, temperature=0.0)
        on_engines = pool.generate(conversations, greedy)
        policy = TransformersBackend(trainer.model, trainer.tokenizer).generate(
            conversations, greedy
        )
    finally:
        trainer.generator.close()  # type: ignore[attr-defined]
    assert [r["step"] for r in records] == [1, 2]
    assert all(sum(r["stop_reasons"].values()) == 8 for r in records), records
    assert sum(h["made"] for h in hosts) == 16  # every episode's env stepped on a host
    assert pool.weights_version == 2  # one push per update
    # the engines hold the trained policy: the same tokens and log-probabilities
    assert [c.completion_token_ids for c in on_engines] == [c.completion_token_ids for c in policy]
    assert _logprobs(on_engines) == pytest.approx(_logprobs(policy), abs=1e-4)


def test_train_ray_with_no_cluster_at_the_address_fails_clearly(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.cli import main

    status = main(
        ["train", "grpo", "--model", str(tiny_model_dir), "--output", str(tmp_path / "run"),
         "--device", "cpu", "--steps", "1", "--ray", "127.0.0.1:1"]
    )  # fmt: skip
    assert status == 2
    assert "--ray 127.0.0.1:1: nothing answers at that address" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()

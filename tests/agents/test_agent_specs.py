"""Tests for LLM agent specs (hf:, openai:, vllm:) in load_agent, and EpisodeStop in the runner."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import FakeBackend

from arenagym.agents import base
from arenagym.agents.base import (
    LLMSpec,
    clear_backend_cache,
    load_agent,
    parse_llm_spec,
    resolve_agent_factory,
)
from arenagym.agents.chat import ChatAgent
from arenagym.benchmarks.cli import main
from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import load_suite


def test_parse_llm_spec_sorts_keys() -> None:
    spec = parse_llm_spec(
        "hf:/m/tiny,temperature=0.5,max_tokens=8,stop=a|b,seed=3,max_context=128,device=cpu"
    )
    assert spec == LLMSpec(
        "hf",
        "/m/tiny",
        sampling={"temperature": 0.5, "max_tokens": 8, "stop": ("a", "b"), "seed": 3},
        agent={"max_context": 128},
        backend={"device": "cpu"},
    )
    openai = parse_llm_spec("openai:http://127.0.0.1:9/v1,model=7")
    assert openai.target == "http://127.0.0.1:9/v1" and openai.backend == {"model": "7"}
    assert parse_llm_spec("random") is None
    assert parse_llm_spec("arenagym.agents.baselines:MathSolverAgent") is None
    with pytest.raises(ValueError, match="key=value"):
        parse_llm_spec("hf:/m,temperature")
    with pytest.raises(ValueError, match="say what to load"):
        parse_llm_spec("hf:")


def test_specs_that_cannot_work_fail_early_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no model directory"):
        resolve_agent_factory(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="model=NAME"):
        resolve_agent_factory("openai:http://127.0.0.1:9/v1")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_spec_names_the_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"arenagym\[vllm\]"):
        load_agent(f"vllm:{tmp_path}")
    store = tmp_path / "runs.sqlite"
    status = main(["run", "--suite", "smoke", "--agent", f"vllm:{tmp_path}", "--store", str(store)])
    assert status == 2
    assert "arenagym[vllm]" in capsys.readouterr().err
    assert not store.exists()


def test_one_backend_per_spec_shared_by_every_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[LLMSpec] = []

    def fake_build(spec: LLMSpec) -> FakeBackend:
        built.append(spec)
        return FakeBackend()

    monkeypatch.setattr(base, "_build_backend", fake_build)
    clear_backend_cache()
    try:
        one = load_agent(f"hf:{tmp_path},temperature=0,max_tokens=8,device=cpu")
        two = load_agent(f"hf:{tmp_path},temperature=0.7,device=cpu", max_total_tokens=50)
        other = load_agent(f"hf:{tmp_path},device=meta")
    finally:
        clear_backend_cache()
    assert isinstance(one, ChatAgent) and one.backend is two.backend is not other.backend
    assert len(built) == 2 and built[0].backend == {"device": "cpu"}
    assert one.sampling.temperature == 0 and one.sampling.max_tokens == 8
    assert two.sampling.temperature == 0.7 and two.max_total_tokens == 50


def test_builtin_and_module_specs_still_resolve() -> None:
    assert type(load_agent("math-solver")).__name__ == "MathSolverAgent"
    assert load_agent("arenagym.agents.baselines:RandomTextAgent", seed=1).act("x") is not None


def test_runner_records_an_agents_episode_stop(tmp_path: Path) -> None:
    """A wrong answer leaves Math-v0 (max_turns=3) open; the agent's second act stops it."""
    manifest = tmp_path / "multi.toml"
    manifest.write_text(
        'name = "smoke-multi"\n[[tasks]]\nenv = "Math-v0"\n'
        "kwargs = { difficulty = 1, max_turns = 3 }\nepisodes = 1\nseeds = [0, 1]\n"
    )
    multi = load_suite(str(manifest))
    with ResultsStore(tmp_path / "runs.sqlite") as store:
        summary = run_suite(
            multi,
            "arenagym_agents_testkit:StopAgent",
            {"action": "\\boxed{-987654}"},
            store,
            progress=False,
        )
        rows = store.rows(suite="smoke-multi")
    assert summary.failed == 0
    assert {(row.stop_reason, row.turns) for row in rows} == {("context_overflow", 1)}
    assert rows[0].info["stop"] == {"message": "out of room", "prompt_tokens": 99}


def test_runner_chat_agent_out_of_context(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "runs.sqlite") as store:
        summary = run_suite(
            load_suite("smoke"),
            "arenagym_agents_testkit:fake_chat_agent",
            {"max_context": 40},
            store,
            progress=False,
        )
        rows = store.rows(suite="smoke")
    assert summary.stop_reasons == {"context_overflow": 4}
    assert rows[0].turns == 0 and rows[0].info["stop"]["max_context"] == 40

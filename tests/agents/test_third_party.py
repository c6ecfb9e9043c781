"""Third-party agents: ``module:Class``, the ``arenagym.agents`` entry-point group, TextArena."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import EchoAgent, TextArenaStyleSolver

from arenagym.agents.adapters import CallableAgent, wrap_agent
from arenagym.agents.specs import ENTRY_POINT_GROUP, load_agent
from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import load_suite
from arenagym.cli import main


def test_module_class_spec() -> None:
    agent = load_agent("arenagym_agents_testkit:EchoAgent", prefix="> ")
    assert isinstance(agent, EchoAgent)
    agent.reset("Echo.")
    assert agent.system_prompt == "Echo." and agent.act("hello world") == "> hello"


@pytest.fixture
def installed_plugin(tmp_path: Path) -> str:
    """A real installed distribution (a dist-info on sys.path) advertising one agent."""
    package = tmp_path / "arenagym_plugin_demo"
    package.mkdir()
    (package / "__init__.py").write_text(
        "class ShoutAgent:\n"
        "    def __init__(self, suffix='!'):\n"
        "        self.suffix = suffix\n"
        "    def reset(self, system_prompt):\n"
        "        self.system_prompt = system_prompt\n"
        "    def act(self, observation):\n"
        "        return observation.upper() + self.suffix\n"
    )
    dist_info = tmp_path / "arenagym_plugin_demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: arenagym-plugin-demo\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nshout-demo = arenagym_plugin_demo:ShoutAgent\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield "shout-demo"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("arenagym_plugin_demo", None)


def test_entry_point_agent(installed_plugin: str, tmp_path: Path) -> None:
    agent = load_agent(installed_plugin, suffix="?")
    agent.reset("Shout.")
    assert type(agent).__name__ == "ShoutAgent" and agent.act("hi") == "HI?"
    store = tmp_path / "runs.sqlite"
    args = ["run", "--suite", "smoke", "--agent", installed_plugin, "--no-progress"]
    assert main([*args, "--store", str(store)]) == 0
    with ResultsStore(store) as opened:
        rows = opened.rows(suite="smoke")
    assert len(rows) == 4 and {row.agent for row in rows} == {installed_plugin}


def test_textarena_callable_is_wrapped_and_plays(tmp_path: Path) -> None:
    agent = load_agent("arenagym_agents_testkit:TextArenaStyleSolver")
    assert isinstance(agent, CallableAgent) and isinstance(agent.function, TextArenaStyleSolver)
    agent.reset("Solve it.")
    assert agent.act("Compute 2 + 3.").endswith("\\boxed{5}.")
    with ResultsStore(tmp_path / "runs.sqlite") as store:
        summary = run_suite(
            load_suite("smoke"),
            "arenagym_agents_testkit:TextArenaStyleSolver",
            None,
            store,
            progress=False,
        )
    assert summary.failed == 0 and summary.stop_reasons == {"solved": 4}


def test_adapter_passes_the_system_prompt_once_and_awaits_async_callables() -> None:
    seen: list[str] = []
    agent = CallableAgent(lambda obs: seen.append(obs) or "ok", include_system_prompt=True)
    agent.reset("Rules.")
    agent.act("one")
    agent.act("two")
    assert seen == ["Rules.\n\none", "two"] and not hasattr(agent, "aact")

    class AsyncTextArenaAgent:
        async def __call__(self, observation: str) -> str:
            await asyncio.sleep(0)
            return observation[::-1]

    async_agent = wrap_agent(AsyncTextArenaAgent())
    async_agent.reset("")
    assert asyncio.run(async_agent.aact("abc")) == "cba"
    with pytest.raises(TypeError, match=r"await agent\.aact"):
        async_agent.act("abc")


def test_not_an_agent() -> None:
    echo = EchoAgent()
    assert wrap_agent(echo) is echo
    with pytest.raises(TypeError, match="callable observation -> str"):
        wrap_agent(42)
    with pytest.raises(TypeError, match="lacks reset"):
        load_agent("arenagym_agents_testkit:not_an_agent")

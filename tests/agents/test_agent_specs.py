"""Tests for LLM agent specs (hf:, openai:, vllm:) in load_agent, and EpisodeStop in the runner."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import FakeBackend

from arenagym.agents import specs
from arenagym.agents.chat import ChatAgent
from arenagym.agents.specs import (
    LLMSpec,
    clear_backend_cache,
    load_agent,
    parse_llm_spec,
    resolve_agent_factory,
)
from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import load_suite
from arenagym.cli import main


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

    monkeypatch.setattr(specs, "_build_backend", fake_build)
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


# --------------------------------------------------------------------------- keys and help

SAMPLING_KEYS = (
    "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "logprobs", "stop_token_ids",
    "top_logprobs",
)  # fmt: skip
HF_KEYS = ("tokenizer", "device", "dtype", "max_batch_size")
OPENAI_KEYS = (
    "model", "api_key", "api_key_env", "max_concurrency", "timeout_s", "max_retries",
    "backoff_s", "max_backoff_s", "return_token_ids", "tokenizer", "extra_body",
)  # fmt: skip
FORMS = (
    "math-solver", "random", "arenagym.agents", "package.module:Class", "hf:MODEL", "vllm:MODEL",
    "openai:URL,model=NAME", "smollm2-135m-instruct", "tiny",
)  # fmt: skip
EVERY_KEY = (*SAMPLING_KEYS, "max_context", "max_total_tokens", *HF_KEYS, *OPENAI_KEYS)


def test_spec_keys_follow_sampling_params_and_the_backend_constructors() -> None:
    from arenagym.agents.backends.interface import SamplingParams
    from arenagym.agents.specs import backend_keys, spec_keys

    assert tuple(SamplingParams.__dataclass_fields__) == SAMPLING_KEYS
    assert backend_keys("hf") == HF_KEYS
    assert sorted(backend_keys("openai") or ()) == sorted(OPENAI_KEYS)
    assert backend_keys("vllm") is None  # any vllm.LLM engine argument
    assert spec_keys("openai")["agent"] == ("max_context", "max_total_tokens")


@pytest.mark.parametrize(
    ("spec", "suggestion", "listed"),
    [
        ("hf:/m,temprature=0", "temperature", ("device", "dtype", "max_batch_size")),
        ("openai:http://h/v1,model=m,api_kye=sk-1234567", "api_key", ("api_key_env", "timeout_s")),
        ("openai:http://h/v1,model=m,max_contxt=99", "max_context", ("max_total_tokens",)),
        ("vllm:/m,temprature=0", "temperature", ("vllm.LLM engine argument",)),
    ],
)
def test_a_misspelt_key_is_an_error_listing_the_keys(
    spec: str, suggestion: str, listed: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="unknown key") as error:
        parse_llm_spec(spec)
    message = str(error.value)
    assert f"did you mean {suggestion!r}" in message
    assert all(key in message for key in (*SAMPLING_KEYS, "max_context", *listed))
    assert "sk-1234567" not in message


def test_values_are_typed_and_checked() -> None:
    spec = parse_llm_spec("openai:http://h/v1,model=007,api_key=12345,stop_token_ids=1|2,seed=4")
    assert spec.backend == {"model": "007", "api_key": "12345"}  # text, not numbers
    assert spec.sampling == {"stop_token_ids": (1, 2), "seed": 4}
    with pytest.raises(ValueError, match="bad sampling value"):
        parse_llm_spec("hf:/m,temperature=-1")
    # vllm passes engine arguments through, to be checked against vllm.LLM when it is built
    assert parse_llm_spec("vllm:/m,gpu_memory_utilization=0.5").backend == {
        "gpu_memory_utilization": 0.5
    }


def test_vllm_engine_arguments_are_checked_when_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(specs, "_vllm_engine_keys", lambda: frozenset({"gpu_memory_utilization"}))
    monkeypatch.setattr(LLMSpec, "check", lambda self: None)
    spec = parse_llm_spec(f"vllm:{tmp_path},gpu_memory_utilisation=0.5")
    with pytest.raises(ValueError, match="did you mean 'gpu_memory_utilization'"):
        specs._build_backend(spec)


def test_agent_kwargs_go_where_their_key_belongs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[LLMSpec] = []

    def fake_build(spec: LLMSpec) -> FakeBackend:
        built.append(spec)
        return FakeBackend()

    monkeypatch.setattr(specs, "_build_backend", fake_build)
    clear_backend_cache()
    try:
        agent = load_agent(
            "openai:http://h/v1,model=m,temperature=0",
            api_key="sk-from-kwargs",
            timeout_s=5,
            max_tokens=7,
            max_total_tokens=30,
            stop="\n\n",
        )
        with pytest.raises(ValueError, match=r"unknown key 'temprature'.*did you mean") as error:
            load_agent("openai:http://h/v1,model=m", temprature=1)
    finally:
        clear_backend_cache()
    assert built[0].backend == {"model": "m", "api_key": "sk-from-kwargs", "timeout_s": 5}
    assert agent.sampling.max_tokens == 7 and agent.max_total_tokens == 30
    assert agent.sampling.stop == ("\n\n",)
    assert "template" in str(error.value) and "api_key_env" in str(error.value)


def test_api_key_env_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARENAGYM_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match=r"ARENAGYM_NO_SUCH_KEY.*not set"):
        resolve_agent_factory("openai:http://h/v1,model=m,api_key_env=ARENAGYM_NO_SUCH_KEY")
    monkeypatch.setenv("ARENAGYM_NO_SUCH_KEY", "sk-set-now")
    resolve_agent_factory("openai:http://h/v1,model=m,api_key_env=ARENAGYM_NO_SUCH_KEY")


def test_secrets_are_redacted_in_specs_reprs_and_errors() -> None:
    from arenagym.agents.specs import redact_secrets, redact_spec, secret_values

    spec = "openai:http://u:pw-123456@h/v1,model=m,api_key=sk-a,b-c,temperature=0"
    assert redact_spec(spec) == "openai:http://u:***@h/v1,model=m,api_key=***,temperature=0"
    parsed = parse_llm_spec(spec)
    assert parsed.backend["api_key"] == "sk-a,b-c"  # a comma inside the key is kept
    assert "sk-a" not in repr(parsed) and "pw-123456" not in repr(parsed)
    assert secret_values(spec) == {"pw-123456", "sk-a,b-c"}
    assert redact_secrets({"k": [f"failed with {'sk-a,b-c'}"]}, {"sk-a,b-c"}) == {
        "k": ["failed with ***"]
    }
    with pytest.raises(ValueError) as error:
        parse_llm_spec("openai:http://h/v1,oops,model=m,api_key=sk-zzzzzzzz")
    assert "sk-zzzzzzzz" not in str(error.value)
    with pytest.raises(ValueError) as error:
        parse_llm_spec("openai:http://h/v1,api_key=sk-zzzzzzzz,temperature=hot")
    assert "sk-zzzzzzzz" not in str(error.value)


def test_run_help_lists_every_spec_form_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    missing = [item for item in (*FORMS, *EVERY_KEY) if item not in text]
    assert not missing, missing
    assert "vllm.LLM engine argument" in text and "OPENAI_API_KEY" in text
    assert "api_key=***" in text and "context_overflow" in text


def test_unknown_agent_error_lists_every_form_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    from arenagym.envs.core import loading

    plugin = EntryPoint(
        "my-plugin-agent", "arenagym.agents.baselines:RandomTextAgent", loading.AGENT_GROUP
    )

    def entry_points(group: str, name: str | None = None) -> list[EntryPoint]:
        return [p for p in [plugin] if p.group == group and name in (None, p.name)]

    monkeypatch.setattr(loading, "entry_points", entry_points)
    store = tmp_path / "r.sqlite"
    assert main(["run", "--suite", "smoke", "--agent", "radnom", "--store", str(store)]) == 2
    error = capsys.readouterr().err
    assert "unknown agent 'radnom' (did you mean 'random'?)" in error
    missing = [item for item in (*FORMS, "my-plugin-agent", *EVERY_KEY) if item not in error]
    assert not missing, missing
    assert type(load_agent("my-plugin-agent")).__name__ == "RandomTextAgent"
    assert main(["run", "--help"]) == 0
    assert "my-plugin-agent" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"did you mean the LLM spec 'openai:\.\.\.'"):
        resolve_agent_factory("openal:http://127.0.0.1:8000/v1,model=m")


def test_a_spec_kind_another_package_advertises_is_an_agent_spec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.metadata import EntryPoint

    from arenagym.envs.core import loading

    kind = EntryPoint("echo", "arenagym_agents_testkit:echo_kind", loading.AGENT_KIND_GROUP)

    def entry_points(group: str, name: str | None = None) -> list[EntryPoint]:
        return [e for e in [kind] if e.group == group and name in (None, e.name)]

    monkeypatch.setattr(loading, "entry_points", entry_points)
    agent = load_agent("echo:>> ")
    agent.reset("")
    assert agent.act("hello world") == ">> hello"
    with pytest.raises(ValueError, match="unknown agent 'ecko'"):
        load_agent("ecko")


def test_readme_llm_section_lists_every_form_and_key() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## LLM agents", 1)[1].split("\n## ", 1)[0]
    missing = [item for item in (*FORMS, *EVERY_KEY) if item not in section]
    assert not missing, missing
    for needed in ("OPENAI_API_KEY", "api_key_env", "arenagym serve", "--served-model-name"):
        assert needed in section

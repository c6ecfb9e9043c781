"""``arenagym serve``: ``n`` choices per request and OpenAI function calling (``tools``).

Function calling is checked end to end with the official ``openai`` client over real HTTP: the
request's tools reach the model through its own chat template (a Hermes-style one that renders
tools), the model's ``<tool_call>`` block comes back as ``tool_calls``, and the follow-up turn
(the assistant's call and the ``tool`` message with its result) is rendered by the template too.
The model's reply is scripted (a random tiny model never writes a tool call) by a backend that
records the prompt it is given and answers with a fixed text; everything else is the server's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
openai = pytest.importorskip("openai", reason="the openai extra is not installed")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from arenagym.agents.backends import SamplingParams, TransformersBackend  # noqa: E402
from arenagym.agents.backends.interface import Completion  # noqa: E402
from arenagym.agents.serve import build_app, parse_tool_calls  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# Hermes / Qwen2.5 style: tools listed in the system turn, calls and results as tagged blocks.
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nYou may call these tools:\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    'Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>\n{% endif %}'
    "{% for m in messages %}"
    "{% if m.role == 'assistant' and m.tool_calls %}<|im_start|>assistant\n{{ m.content or '' }}"
    "{% for call in m.tool_calls %}<tool_call>{{ call.function | tojson }}</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}<|im_start|>user\n<tool_response>{{ m.content }}"
    "</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CALL_TEXT = (
    'Checking.<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
)


class ScriptedToolBackend(TransformersBackend):
    """The tiny model with a tool-rendering chat template, answering every prompt with
    ``reply`` and recording the prompts (as text) it was given."""

    reply = CALL_TEXT

    def __init__(self, model_dir: Path) -> None:
        super().__init__(model_dir, device="cpu", dtype="float32")
        self.tokenizer.chat_template = TOOL_TEMPLATE
        self.prompts: list[str] = []

    def generate_ids(self, prompts: Any, params: Any) -> list[Completion]:
        completions = []
        for ids in prompts:
            self.prompts.append(self.tokenizer.decode(ids))
            reply_ids = self.tokenizer(self.reply, add_special_tokens=False)["input_ids"]
            completions.append(
                Completion(
                    text=self.reply,
                    prompt_token_ids=list(ids),
                    completion_token_ids=list(reply_ids),
                    logprobs=[0.0] * len(reply_ids),
                    finish_reason="stop",
                )
            )
        return completions


@pytest.fixture(scope="module")
def tool_server(tiny_model_dir: Path, serve_asgi_in_thread: Any) -> Any:
    backend = ScriptedToolBackend(tiny_model_dir)
    with (
        serve_asgi_in_thread(build_app(backend, "tool-model"), uvicorn) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="EMPTY", max_retries=0) as client,
    ):
        yield client, backend


def test_n_choices_are_the_seeded_samples_of_seed_plus_index(
    tiny_server_url: str, tiny_server_model_name: str, tiny_backend: TransformersBackend
) -> None:
    with openai.OpenAI(base_url=tiny_server_url, api_key="EMPTY", max_retries=0) as client:
        response = client.chat.completions.create(
            model=tiny_server_model_name,
            messages=MESSAGES,
            max_tokens=8,
            temperature=1.0,
            seed=5,
            n=3,
            extra_body={"return_token_ids": True},
        )
    assert [c.index for c in response.choices] == [0, 1, 2]
    local = tiny_backend.generate_each(
        [MESSAGES] * 3,
        [SamplingParams(max_tokens=8, temperature=1.0, seed=5 + i) for i in range(3)],
    )
    got = [c.model_extra["token_ids"] for c in response.choices]
    assert got == [c.completion_token_ids for c in local]
    assert len({tuple(t) for t in got}) > 1  # the choices are different samples
    assert response.usage.completion_tokens == sum(len(t) for t in got)
    assert response.usage.prompt_tokens == len(local[0].prompt_token_ids)


def test_tools_for_a_template_without_tool_support_are_refused(
    tiny_server_url: str, tiny_server_model_name: str
) -> None:
    with (
        openai.OpenAI(base_url=tiny_server_url, api_key="EMPTY", max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(
            model=tiny_server_model_name, messages=MESSAGES, max_tokens=2, tools=[WEATHER_TOOL]
        )
    assert refused.value.status_code == 400
    assert "does not render tools" in refused.value.message
    assert refused.value.body["param"] == "tools"


def test_a_tool_call_round_trip(tool_server: Any) -> None:
    client, backend = tool_server
    first = client.chat.completions.create(
        model="tool-model", messages=MESSAGES, max_tokens=32, tools=[WEATHER_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")
    # the tool's schema reached the model through the template
    assert '"name": "get_weather"' in backend.prompts[-1]
    assert "The current weather of a city" in backend.prompts[-1]

    backend.reply = "It is sunny in Paris."
    try:
        second = client.chat.completions.create(
            model="tool-model",
            messages=[
                *MESSAGES,
                choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
            ],
            max_tokens=32,
            tools=[WEATHER_TOOL],
        )
    finally:
        backend.reply = CALL_TEXT
    prompt = backend.prompts[-1]
    assert (
        '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"}</tool_call>' in prompt
    )
    assert '<tool_response>{"sky": "sunny"}</tool_response>' in prompt
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is sunny in Paris."
    assert not second.choices[0].message.tool_calls


def test_tool_choice_none_renders_no_tools_and_parses_no_calls(tool_server: Any) -> None:
    client, backend = tool_server
    response = client.chat.completions.create(
        model="tool-model",
        messages=MESSAGES,
        max_tokens=32,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert "<tools>" not in backend.prompts[-1]
    assert response.choices[0].message.content == CALL_TEXT
    assert not response.choices[0].message.tool_calls


@pytest.mark.parametrize(
    ("request_extra", "param", "words"),
    [
        ({"tool_choice": "required"}, "tool_choice", "only 'auto' and 'none'"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            "tool_choice",
            "only 'auto' and 'none'",
        ),
        ({"tools": [{"type": "function"}]}, "tools", "tools.0"),
    ],
)
def test_tool_requests_that_cannot_be_honoured_are_400s(
    tool_server: Any, request_extra: dict[str, Any], param: str, words: str
) -> None:
    client, _ = tool_server
    body: dict[str, Any] = {"tools": [WEATHER_TOOL], **request_extra}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="tool-model", messages=MESSAGES, max_tokens=2, extra_body=body
        )
    assert refused.value.body["param"] == param
    assert words in refused.value.message


def test_bad_tool_call_arguments_in_the_history_are_a_400(tool_server: Any) -> None:
    client, _ = tool_server
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{city: Paris"},
                }
            ],
        },
    ]
    with pytest.raises(openai.BadRequestError, match="arguments is not JSON"):
        client.chat.completions.create(
            model="tool-model", messages=history, max_tokens=2, tools=[WEATHER_TOOL]
        )


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parsing_never_loses_text(text: str) -> None:
    content, calls = parse_tool_calls(text)
    if not calls:
        assert content == text
    for call in calls:
        assert call["type"] == "function" and call["function"]["name"]
        json.loads(call["function"]["arguments"])


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3),
    st.text(max_size=20),
)
def test_well_formed_calls_are_recovered(name: str, arguments: dict[str, Any], before: str) -> None:
    block = json.dumps({"name": name, "arguments": arguments})
    content, calls = parse_tool_calls(f"{before}<tool_call>{block}</tool_call>")
    assert [c["function"]["name"] for c in calls] == [name]
    assert json.loads(calls[0]["function"]["arguments"]) == arguments
    assert content == (before.strip() or None)

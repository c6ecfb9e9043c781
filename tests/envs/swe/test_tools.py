"""The OpenHands-compatible tools: parsing both action formats, and every tool's semantics."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.swe.runtime import (
    CommandResult,
    Limits,
    Runtime,
    SandboxError,
    make_runtime,
)
from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason
from arenagym.envs.swe.tools import (
    FORMAT_HELP,
    MAX_INTEGER,
    MAX_JSON_DEPTH,
    TOOL_NAMES,
    ToolCall,
    ToolCallError,
    ToolResult,
    ToolRunner,
    parse_tool_call,
    tools_prompt,
    truncate_middle,
)

# --------------------------------------------------------------------------------- parsing


def test_text_format_with_reasoning_and_multiline_values() -> None:
    reply = (
        "The bug is in add; I'll fix it.\n"
        "<function=str_replace_editor>\n"
        "<parameter=command>str_replace</parameter>\n"
        "<parameter=path>/workspace/calc/__init__.py</parameter>\n"
        "<parameter=old_str>\n    return a - b\n</parameter>\n"
        "<parameter=new_str>\n    return a + b\n\n</parameter>\n"
        "</function>"
    )
    call = parse_tool_call(reply)
    assert call == ToolCall(
        "str_replace_editor",
        {
            "command": "str_replace",
            "path": "/workspace/calc/__init__.py",
            "old_str": "    return a - b",  # one newline dropped each side, indentation kept
            "new_str": "    return a + b\n",
        },
    )


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "execute_bash", "arguments": {"command": "ls -a", "timeout": 5}}',
        '{"name": "execute_bash", "arguments": "{\\"command\\": \\"ls -a\\", \\"timeout\\": \\"5\\"}"}',
        '{"function": {"name": "execute_bash", "arguments": {"command": "ls -a", "timeout": 5}}}',
        '{"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "execute_bash", '
        '"arguments": "{\\"command\\": \\"ls -a\\", \\"timeout\\": 5}"}}]}',
        '```json\n{"name": "execute_bash", "parameters": {"command": "ls -a", "timeout": 5.0}}\n```',
        "<function=execute_bash><parameter=command>ls -a</parameter>"
        "<parameter=timeout>5</parameter></function>",
        "<function=execute_bash>\n<parameter=command>ls -a</parameter>\n"
        "<parameter=timeout>5</parameter>\n<parameter=security_risk>LOW</parameter>\n</function>",
    ],
)
def test_every_accepted_format_gives_the_same_call(reply: str) -> None:
    assert parse_tool_call(reply) == ToolCall("execute_bash", {"command": "ls -a", "timeout": 5.0})


def test_types_are_coerced_from_text() -> None:
    call = parse_tool_call(
        "<function=str_replace_editor><parameter=command>view</parameter>"
        "<parameter=path>a.py</parameter><parameter=view_range>[2, -1]</parameter></function>"
    )
    assert call.arguments["view_range"] == [2, -1]
    call = parse_tool_call(
        '{"name": "str_replace_editor", "arguments": {"command": "insert", "path": "a.py", '
        '"insert_line": "3", "new_str": "x"}}'
    )
    assert call.arguments["insert_line"] == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("just chatting", "holds no tool call"),
        ("", "holds no tool call"),
        ("<function=execute_bash><parameter=command>ls</parameter>", "not closed by </function>"),
        ("<function=rm_rf><parameter=x>1</parameter></function>", "unknown tool 'rm_rf'"),
        ("<function=execute_bash></function>", "needs the parameter 'command'"),
        (
            "<function=execute_bash><parameter=cmd>ls</parameter></function>",
            "has no parameter 'cmd'",
        ),
        (
            "<function=str_replace_editor><parameter=command>delete</parameter>"
            "<parameter=path>/a</parameter></function>",
            "command must be one of view, create",
        ),
        (
            "<function=execute_bash><parameter=command>ls</parameter>"
            "<parameter=timeout>soon</parameter></function>",
            "timeout must be a number",
        ),
        (
            "<function=execute_bash><parameter=command>ls</parameter>"
            "<parameter=timeout>-1</parameter></function>",
            "positive number",
        ),
        (
            "<function=execute_bash><parameter=command>ls</parameter>"
            "<parameter=is_input>true</parameter></function>",
            "is_input=true is not supported",
        ),
        (
            "<function=execute_bash><parameter=command>a</parameter>"
            "<parameter=command>b</parameter></function>",
            "given twice",
        ),
        (
            "<function=str_replace_editor><parameter=command>view</parameter>"
            "<parameter=path>/a</parameter><parameter=view_range>[1]</parameter></function>",
            "two integers",
        ),
        ('{"name": "execute_bash", "arguments": "{oops"}', "not JSON"),
        ('{"name": "execute_bash", "arguments": [1]}', "must be an object"),
        ('{"arguments": {}}', 'no "name"'),
        ('{"tool_calls": []}', "non-empty list"),
        ('{"name": "execute_bash", "arguments": {"command": 7}}', "must be a string"),
        ('{"name": "finish", "arguments": {"message": "x", "extra": 1}}', "no parameter 'extra'"),
    ],
)
def test_invalid_calls_say_what_was_wrong(reply: str, message: str) -> None:
    with pytest.raises(ToolCallError, match=message.replace("[", r"\[")):
        parse_tool_call(reply)


def _call(name: str, **arguments: object) -> str:
    return json.dumps({"name": name, "arguments": arguments})


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (_call("execute_bash", command="echo a\u0000b"), r"command contains a NUL byte \(\\x00\)"),
        (_call("str_replace_editor", command="view", path="/workspace/a\u0000"), "path contains"),
        (_call("execute_bash", command="echo \ud800"), "lone surrogate"),
        (_call("str_replace_editor", command="create", path="a", file_text="\udfff"), "file_text"),
        (_call("execute_bash", command="x" * 130_000), "130000 bytes, over the limit of 120000"),
        (
            _call("str_replace_editor", command="create", path="/workspace/" + "a" * 300,
                  file_text="x"),
            "300 bytes long; a file name has at most 255 bytes",
        ),
        (
            _call("str_replace_editor", command="view", path="/workspace/" + "é/" * 1500),
            "over the limit of 4095",
        ),
    ],
)  # fmt: skip
def test_values_no_shell_or_file_system_takes_are_invalid_calls(reply: str, message: str) -> None:
    with pytest.raises(ToolCallError, match=message):
        parse_tool_call(reply)


def test_nul_bytes_in_file_contents_are_fine() -> None:
    call = parse_tool_call(_call("str_replace_editor", command="create", path="a", file_text="\0"))
    assert call.arguments["file_text"] == "\0"


def test_only_the_first_of_several_calls_runs_with_a_note() -> None:
    reply = (
        "<function=think><parameter=thought>a</parameter></function>"
        "<function=think><parameter=thought>b</parameter></function>"
    )
    call = parse_tool_call(reply)
    assert call.arguments == {"thought": "a"} and "first of the 2" in (call.note or "")
    listed = parse_tool_call(json.dumps([{"name": "finish"}, {"name": "think"}]))
    assert listed.name == "finish" and listed.note


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.text(alphabet='<>/=fun ctionparmeters{}[]":,execute_bash\n', max_size=200),
        st.builds(lambda body: "<function=" + body, st.text(max_size=100)),
        st.builds(
            json.dumps,
            st.recursive(
                st.none() | st.text(max_size=5) | st.integers(),
                lambda c: (
                    st.lists(c, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            ["name", "arguments", "function", "tool_calls", "command", "parameters"]
                        ),
                        c,
                        max_size=3,
                    )
                ),
                max_leaves=8,
            ),
        ),
    )
)
def test_garbage_never_raises_anything_but_a_tool_call_error(reply: str) -> None:
    try:
        call = parse_tool_call(reply)
    except ToolCallError as error:
        assert str(error)
    else:
        assert call.name in TOOL_NAMES


# Replies whose JSON or numbers Python itself cannot take (a recursion limit, an integer of too
# many digits, an int too large for a float): each is the agent's invalid call.
OVERSIZED = {
    "timeout-overflows-a-float": (
        '{"name":"execute_bash","arguments":{"command":"ls","timeout":1' + "0" * 400 + "}}",
        "an integer of 401 digits",
    ),
    "arguments-nested-5000-deep": (
        json.dumps({"name": "execute_bash", "arguments": '{"a":' * 5000 + "1" + "}" * 5000}),
        f'"arguments" is a string that nests arrays and objects more than {MAX_JSON_DEPTH} levels',
    ),
    "integer-over-python-digit-limit": (
        '{"name":"think","arguments":{"thought":"x"},"pad":1' + "0" * 5000 + "}",
        "an integer of 5001 digits",
    ),
    "insert-line-of-5000-digits": (
        _call("str_replace_editor", command="insert", path="/workspace/a", new_str="x",
              insert_line="9" * 5000),
        f"insert_line must be an integer from {-MAX_INTEGER} to {MAX_INTEGER}",
    ),
    "view-range-of-100000-brackets": (
        _call("str_replace_editor", command="view", path="/workspace/a", view_range="[" * 100_000),
        "view_range must be a list of two integers like [1, 20]; the text given nests",
    ),
    "reply-nested-900-deep": (
        '{"name":"think","arguments":{"thought":"x","deep":' + "[" * 900 + "]" * 900 + "}}",
        "the reply starts like a JSON function call but nests arrays and objects",
    ),
    "timeout-infinite": (
        '{"name":"execute_bash","arguments":{"command":"ls","timeout":"1e999"}}',
        "timeout must be a positive number of seconds",
    ),
    "timeout-nan": (
        '{"name":"execute_bash","arguments":{"command":"ls","timeout":NaN}}',
        "timeout must be a positive number of seconds",
    ),
    "insert-line-float-too-large": (
        '{"name":"str_replace_editor","arguments":{"command":"insert","path":"a","new_str":"x",'
        '"insert_line":1e300}}',
        "insert_line must be an integer from",
    ),
    "view-range-infinite": (
        '{"name":"str_replace_editor","arguments":{"command":"view","path":"a",'
        '"view_range":[1, Infinity]}}',
        "each view_range item must be an integer, got inf",
    ),
    "text-format-timeout-of-400-digits": (
        "<function=execute_bash><parameter=command>ls</parameter><parameter=timeout>1"
        + "0" * 400 + "</parameter></function>",
        "timeout must be a positive number of seconds",
    ),
    "text-format-line-of-5000-digits": (
        "<function=str_replace_editor><parameter=command>insert</parameter><parameter=path>a"
        "</parameter><parameter=new_str>x</parameter><parameter=insert_line>" + "9" * 5000
        + "</parameter></function>",
        "insert_line must be an integer from",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(OVERSIZED))
def test_json_and_numbers_python_cannot_take_are_invalid_calls(case: str) -> None:
    reply, message = OVERSIZED[case]
    with pytest.raises(ToolCallError) as raised:
        parse_tool_call(reply)
    assert message in str(raised.value)
    assert len(str(raised.value)) < 400  # the message names the problem, not the whole value


def test_large_line_numbers_within_range_and_leading_zeros_still_parse() -> None:
    call = parse_tool_call(
        _call("str_replace_editor", command="view", path="a", view_range=f"[1, {MAX_INTEGER}]")
    )
    assert call.arguments["view_range"] == [1, MAX_INTEGER]
    call = parse_tool_call(
        _call("str_replace_editor", command="insert", path="a", new_str="x",
              insert_line="0" * 50 + "7")
    )  # fmt: skip
    assert call.arguments["insert_line"] == 7


def _nested(depth: int, leaf: str) -> str:
    return (
        "".join('{"a":' if i % 2 else "[" for i in range(depth))
        + leaf
        + "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    )


_NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(10**80), max_value=10**80).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda digits: "9" * digits),
    st.integers(min_value=1, max_value=6000).map(lambda digits: "-1" + "0" * digits),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e999", "-1e999", "1e-999", "NaN", "Infinity", "-Infinity", "1.5", "0"]),
)
_JSON_TEXT = st.one_of(
    _NUMBER_TEXT,
    st.builds(_nested, st.integers(min_value=0, max_value=3000), _NUMBER_TEXT),
    st.integers(min_value=1, max_value=120_000).map(lambda depth: "[" * depth),
    st.integers(min_value=1, max_value=30_000).map(lambda depth: '{"a":' * depth),
    st.builds(lambda n, item: "[" + ",".join([item] * n) + "]", st.integers(0, 3), _NUMBER_TEXT),
)
#: Calls with a hole (@) for a value, as JSON, and as the text format (a parameter's value).
_JSON_TEMPLATES = (
    '{"name":"execute_bash","arguments":{"command":"ls","timeout":@}}',
    '{"name":"str_replace_editor","arguments":{"command":"view","path":"a","view_range":@}}',
    '{"name":"str_replace_editor","arguments":{"command":"insert","path":"a","new_str":"x",'
    '"insert_line":@}}',
    '{"name":"execute_bash","arguments":{"command":"ls","is_input":@}}',
    '{"name":"think","arguments":@}',
    '{"name":"think","arguments":{"thought":"x"},"pad":@}',
    '[{"name":"finish"},@]',
    "@",
)
_TEXT_TEMPLATES = (
    "<function=execute_bash><parameter=command>ls</parameter><parameter=timeout>@</parameter>"
    "</function>",
    "<function=str_replace_editor><parameter=command>view</parameter><parameter=path>a"
    "</parameter><parameter=view_range>@</parameter></function>",
    "<function=str_replace_editor><parameter=command>insert</parameter><parameter=path>a"
    "</parameter><parameter=new_str>x</parameter><parameter=insert_line>@</parameter></function>",
)


@settings(max_examples=200, deadline=None)
@given(
    template=st.sampled_from(_JSON_TEMPLATES + _TEXT_TEMPLATES),
    value=_JSON_TEXT,
    as_string=st.booleans(),
)
def test_nested_and_huge_json_never_raises_anything_but_a_tool_call_error(
    template: str, value: str, as_string: bool
) -> None:
    if as_string and template.startswith(("{", "[")):
        value = json.dumps(value)  # e.g. "arguments" or "view_range" as a JSON string
    try:
        call = parse_tool_call(template.replace("@", value))
    except ToolCallError as error:
        assert str(error) and len(str(error)) < 1000
    else:
        assert call.name in TOOL_NAMES


LONG_TEXT_REPLIES = {
    "unclosed-functions": "<function=a>" * 8000,
    "unclosed-parameters": "<function=execute_bash>" + "<parameter=command>" * 8000 + "</function>",
    "spaces-in-a-tag": "<function=" + " " * 250_000 + "x y",
    "spaces-in-a-parameter-tag": "<function=think><parameter=" + " " * 250_000 + "x</function>",
    "function-without-equals": "<function" * 29_000,
    "unclosed-fence": "```" + " \n" * 130_000,
    "many-calls": "<function=think><parameter=thought>x</parameter></function>" * 4400,
    "nested-parameter-tags": "<function=think><parameter=thought>" + "<parameter=a>" * 20_000
    + "</parameter></function>",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LONG_TEXT_REPLIES))
def test_long_replies_parse_in_linear_time(case: str) -> None:
    reply = LONG_TEXT_REPLIES[case]
    assert len(reply) <= 262_144  # SWEEnv's max_action_length
    started = time.perf_counter()
    with contextlib.suppress(ToolCallError):
        parse_tool_call(reply)
    assert time.perf_counter() - started < 2.0


def test_unclosed_tags_still_say_what_is_wrong() -> None:
    with pytest.raises(ToolCallError, match="not closed by </function>"):
        parse_tool_call(LONG_TEXT_REPLIES["unclosed-functions"])
    with pytest.raises(ToolCallError, match="not closed by </parameter>"):
        parse_tool_call(LONG_TEXT_REPLIES["unclosed-parameters"])
    call = parse_tool_call(LONG_TEXT_REPLIES["many-calls"])
    assert call.arguments == {"thought": "x"} and "first of the 4400" in (call.note or "")


def test_prompt_documents_every_tool_and_both_formats() -> None:
    prompt = tools_prompt()
    for name in (
        *TOOL_NAMES,
        "view_range",
        "insert_line",
        "undo_edit",
        "<function=",
        '"arguments"',
    ):
        assert name in prompt
    assert FORMAT_HELP in prompt
    example = FORMAT_HELP.split("before the closing tag):\n")[1]
    assert parse_tool_call(example.split("\nTools:")[0]).arguments["new_str"] == "    return a + b"


def test_truncate_middle_keeps_head_and_tail() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    clipped = truncate_middle(text, 200)
    assert clipped.startswith("line 0\nline 1\n") and clipped.endswith("line 999\n")
    assert "characters omitted" in clipped and len(clipped) < 260
    assert truncate_middle("short", 200) == "short"


# ------------------------------------------------------------------------------ execution
FILE = "/workspace/pkg/mod.py"
TEXT = "def f():\n    return 1\n\n\ndef g():\n    return 1\n"


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[ToolRunner]:
    (tmp_path / "pkg" / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text(TEXT)
    (tmp_path / "pkg" / "sub" / "deep" / "hidden_by_depth.py").write_text("")
    (tmp_path / "pkg" / "sub" / "leaf.py").write_text("")
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime = make_runtime("local", allow_local=True)
    runtime.start(tmp_path)
    yield ToolRunner(runtime, max_observation_chars=400)
    runtime.stop()


def editor(runner: ToolRunner, **arguments: object) -> str:
    call = parse_tool_call(json.dumps({"name": "str_replace_editor", "arguments": arguments}))
    return runner.run(call).observation


def bash(runner: ToolRunner, command: str, **extra: object) -> str:
    call = parse_tool_call(
        json.dumps({"name": "execute_bash", "arguments": {"command": command, **extra}})
    )
    return runner.run(call).observation


def test_view_file_like_cat_n_and_ranges(runner: ToolRunner) -> None:
    assert editor(runner, command="view", path=FILE) == (
        f"Here's the result of running `cat -n` on {FILE}:\n"
        "     1\tdef f():\n     2\t    return 1\n     3\t\n     4\t\n"
        "     5\tdef g():\n     6\t    return 1\n"
    )
    assert editor(runner, command="view", path="pkg/mod.py", view_range=[5, -1]).endswith(
        "     5\tdef g():\n     6\t    return 1\n"
    )
    assert "     2\t    return 1\n" in editor(runner, command="view", path=FILE, view_range=[2, 2])
    assert "first element `0`" in editor(runner, command="view", path=FILE, view_range=[0, 2])
    assert "larger or equal" in editor(runner, command="view", path=FILE, view_range=[3, 2])
    assert "number of lines in the file: `6`" in editor(
        runner, command="view", path=FILE, view_range=[1, 9]
    )


def test_view_directory_two_levels_without_hidden(runner: ToolRunner) -> None:
    listing = editor(runner, command="view", path="/workspace")
    lines = listing.splitlines()
    assert lines[0].startswith("Here's the files and directories up to 2 levels deep in /workspace")
    assert lines[1:] == [
        "/workspace",
        "/workspace/blob.bin",
        "/workspace/pkg",
        "/workspace/pkg/mod.py",
        "/workspace/pkg/sub",
    ]
    assert "not allowed" in editor(runner, command="view", path="/workspace", view_range=[1, 2])


def test_create_and_its_refusals(runner: ToolRunner) -> None:
    assert editor(
        runner, command="create", path="/workspace/new/dir/x.py", file_text="x = 1\n"
    ) == ("File created successfully at: /workspace/new/dir/x.py")
    assert runner.runtime.read_file("new/dir/x.py") == b"x = 1\n"
    assert "File already exists at: /workspace/pkg/mod.py" in editor(
        runner, command="create", path=FILE, file_text=""
    )
    assert "is a directory" in editor(runner, command="create", path="/workspace/pkg", file_text="")
    assert "`file_text` is required" in editor(runner, command="create", path="/workspace/y.py")
    assert "Last edit to /workspace/new/dir/x.py undone" in editor(
        runner, command="undo_edit", path="/workspace/new/dir/x.py"
    )
    with pytest.raises(FileNotFoundError):
        runner.runtime.read_file("new/dir/x.py")


def test_str_replace_demands_a_unique_exact_match(runner: ToolRunner) -> None:
    none = editor(runner, command="str_replace", path=FILE, old_str="return 2", new_str="x")
    assert none == (
        f"ERROR:\nNo replacement was performed, old_str `return 2` did not appear verbatim in {FILE}."
    )
    many = editor(runner, command="str_replace", path=FILE, old_str="    return 1", new_str="x")
    assert "Multiple occurrences of old_str `    return 1` in lines [2, 6]" in many
    assert "must be different" in editor(
        runner, command="str_replace", path=FILE, old_str="a", new_str="a"
    )
    done = editor(
        runner,
        command="str_replace",
        path=FILE,
        old_str="g():\n    return 1",
        new_str="g():\n    return 2",
    )
    assert done.startswith(f"The file {FILE} has been edited.")
    assert "     5\tdef g():\n     6\t    return 2" in done
    assert (
        runner.runtime.read_file(FILE)
        == TEXT.replace("return 1\n", "return 2\n", 2)
        .replace("return 2\n", "return 1\n", 1)
        .encode()
    )
    # deleting with an omitted new_str, then undoing both edits in order
    editor(runner, command="str_replace", path=FILE, old_str="def f():\n    return 1\n")
    assert runner.runtime.read_file(FILE).decode().startswith("\n\ndef g():\n    return 2")
    editor(runner, command="undo_edit", path=FILE)
    editor(runner, command="undo_edit", path=FILE)
    assert runner.runtime.read_file(FILE) == TEXT.encode()
    assert "No edit history found for /workspace/pkg/mod.py." in editor(
        runner, command="undo_edit", path=FILE
    )


def test_insert_at_top_end_and_out_of_range(runner: ToolRunner) -> None:
    editor(runner, command="insert", path=FILE, insert_line=0, new_str="import os")
    editor(runner, command="insert", path=FILE, insert_line=7, new_str="# end\n# really")
    assert runner.runtime.read_file(FILE).decode() == "import os\n" + TEXT + "# end\n# really\n"
    assert "[0, 9]" in editor(runner, command="insert", path=FILE, insert_line=10, new_str="x")
    assert "`insert_line` is required" in editor(runner, command="insert", path=FILE, new_str="x")


def test_editor_errors_are_observations(runner: ToolRunner) -> None:
    assert "does not exist" in editor(runner, command="view", path="/workspace/nope.py")
    assert "not UTF-8" in editor(runner, command="view", path="/workspace/blob.bin")
    assert "`old_str` is required" in editor(runner, command="str_replace", path=FILE)


def test_bash_exit_codes_timeouts_and_clipping(runner: ToolRunner) -> None:
    assert bash(runner, "echo hi; exit 3") == "hi\n[The command completed with exit code 3.]"
    assert bash(runner, "true") == "[The command completed with exit code 0.]"
    assert "timed out after 1 seconds" in bash(runner, "sleep 20", timeout=1)
    long = bash(runner, "seq 1 5000")
    assert long.startswith("1\n2\n3\n") and "characters omitted" in long
    assert long.endswith("4999\n5000\n[The command completed with exit code 0.]")
    assert "the command is empty" in bash(runner, "   ")


def test_a_command_killed_for_the_disk_budget_says_so(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime = make_runtime("local", allow_local=True, limits=Limits(max_workspace_mb=1))
    with runtime:
        runtime.start(tmp_path)
        observation = bash(ToolRunner(runtime), "head -c 3000000 /dev/zero > big.bin")
    assert observation.endswith("[The command was killed (disk budget).]"), observation
    assert "disk budget of 1 MB" in observation and "delete files" in observation


def test_think_and_finish(runner: ToolRunner) -> None:
    thought = runner.run(parse_tool_call('{"name": "think", "arguments": {"thought": "hm"}}'))
    assert thought.observation == "Your thought has been logged." and not thought.finished
    done = runner.run(parse_tool_call("<function=finish></function>"))
    assert done.finished


@pytest.mark.skipif(
    bubblewrap_unavailable_reason() is not None, reason=str(bubblewrap_unavailable_reason())
)
def test_editor_obeys_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    with make_runtime("bubblewrap") as runtime:
        runtime.start(tmp_path)
        tools = ToolRunner(runtime)
        assert "x = 1" in editor(tools, command="view", path="/workspace/a.py")
        assert "does not exist" in editor(tools, command="view", path=str(Path.home() / ".bashrc"))
        assert "does not exist" in editor(tools, command="view", path=str(Path(__file__)))
        assert "outside /workspace" in editor(
            tools, command="create", path="/usr/evil.py", file_text="x"
        )
        editor(tools, command="str_replace", path="a.py", old_str="x = 1", new_str="x = 2")
        assert runtime.read_file("a.py") == b"x = 2\n"
        # traversal resolves inside the sandbox: its generated passwd, not the host's
        passwd = editor(tools, command="view", path="/workspace/../../etc/passwd")
        assert "agent:x:1000" in passwd
        # a FIFO would block the reader and /dev/zero never ends: refused, not read
        assert tools.runtime.run("mkfifo pipe && ln -s /dev/zero zeros").exit_code == 0
        for path in ("/workspace/pipe", "/workspace/zeros", "/dev/zero"):
            assert "cannot open" in editor(tools, command="view", path=path)
        assert "cannot open" in editor(tools, command="str_replace", path="pipe", old_str="a")
    assert (tmp_path / "a.py").read_text() == "x = 1\n"  # the caller's folder is untouched


def run_editor(runner: ToolRunner, **arguments: object) -> ToolResult:
    return runner.run(parse_tool_call(_call("str_replace_editor", **arguments)))


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("create", {"file_text": "x"}),
        ("str_replace", {"old_str": "a", "new_str": "b"}),
        ("insert", {"insert_line": 0, "new_str": "b"}),
        ("undo_edit", {}),
    ],
)
@pytest.mark.parametrize("path", ["/tmp/scratch.py", "/proc/x", "/workspace/../etc/motd"])
def test_edits_outside_the_workspace_are_refused_and_say_why(
    runner: ToolRunner, command: str, arguments: dict[str, object], path: str
) -> None:
    result = run_editor(runner, command=command, path=path, **arguments)
    assert result.invalid and not result.finished
    assert "outside /workspace: only files under /workspace are kept" in result.observation
    assert "Put the file under /workspace instead" in result.observation
    assert run_editor(runner, command="view", path="/workspace/pkg/mod.py").invalid is False


@pytest.mark.parametrize(
    ("setup", "path", "problem"),
    [
        ("", "/workspace/pkg/mod.py/x.py", "/workspace/pkg/mod.py is a file, not a folder"),
        ("ln -s missing.py dangling", "/workspace/dangling",
         "/workspace/dangling is a symbolic link to missing.py, which does not exist"),
        ("ln -s /nonexistent/x away", "/workspace/away", "outside /workspace"),
        ("ln -s .. up", "/workspace/up/escaped.py", "/workspace/up is a symbolic link to .., outside"),
        ("ln -s pkg/mod.py alias", "/workspace/alias/x", "is a file, not a folder"),
    ],
)  # fmt: skip
def test_create_where_no_file_can_be_is_an_invalid_call(
    runner: ToolRunner, setup: str, path: str, problem: str
) -> None:
    if setup:
        assert runner.runtime.run(setup).exit_code == 0
    result = run_editor(runner, command="create", path=path, file_text="x = 1\n")
    assert result.invalid and result.observation.startswith(f"Cannot create {path}: ")
    assert problem in result.observation
    linked = run_editor(runner, command="create", path="/workspace/pkg/sub/new.py", file_text="")
    assert not linked.invalid and "created successfully" in linked.observation


def test_create_through_a_link_inside_the_workspace_works(runner: ToolRunner) -> None:
    assert runner.runtime.run("ln -s pkg/sub inner").exit_code == 0
    result = run_editor(runner, command="create", path="/workspace/inner/n.py", file_text="n = 1\n")
    assert result.observation == "File created successfully at: /workspace/inner/n.py"
    assert runner.runtime.read_file("pkg/sub/n.py") == b"n = 1\n"


class _RefusingRuntime:
    """A runtime whose file transfers fail the way a sandbox reports a path it cannot take;
    ``alive`` says whether it still answers commands."""

    def __init__(self, inner: Runtime, *, alive: bool) -> None:
        self.inner, self.alive = inner, alive

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def run(self, command: str, **kwargs: object) -> CommandResult:
        if not self.alive:
            raise SandboxError("the sandbox died")
        return self.inner.run(command, **kwargs)  # type: ignore[arg-type]

    def read_file(self, path: str) -> bytes:
        raise SandboxError(f"reading {path} failed: head: Input/output error")

    def write_file(self, path: str, data: bytes) -> None:
        raise OSError(36, "File name too long")


def test_a_path_the_sandbox_refuses_is_an_invalid_call_but_a_dead_sandbox_raises(
    runner: ToolRunner,
) -> None:
    refusing = ToolRunner(_RefusingRuntime(runner.runtime, alive=True))  # type: ignore[arg-type]
    viewed = refusing.run(parse_tool_call(_call("str_replace_editor", command="view", path=FILE)))
    assert viewed.invalid and "cannot be read: reading" in viewed.observation
    written = refusing.run(
        parse_tool_call(_call("str_replace_editor", command="create", path="/workspace/n.py",
                              file_text="x"))
    )  # fmt: skip
    assert written.invalid and "cannot be written: File name too long" in written.observation
    dead = ToolRunner(_RefusingRuntime(runner.runtime, alive=False))  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="the sandbox died"):
        dead.run(parse_tool_call(_call("str_replace_editor", command="view", path=FILE)))

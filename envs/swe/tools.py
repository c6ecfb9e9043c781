"""OpenHands-compatible tools (the SWE action space): parsing and execution against a Runtime.

Four tools with OpenHands' names, parameters and messages: ``execute_bash`` (``command``,
``timeout``), ``str_replace_editor`` (``command`` = ``view`` | ``create`` | ``str_replace`` |
``insert`` | ``undo_edit``, with ``path``, ``file_text``, ``old_str``, ``new_str``,
``insert_line``, ``view_range``), ``think`` (``thought``) and ``finish`` (``message``).

One action is one tool call, written either as OpenAI-style function-call JSON::

    {"name": "execute_bash", "arguments": {"command": "ls"}}

(``arguments`` may also be a JSON string; ``{"function": {...}}`` and
``{"tool_calls": [{"function": {...}}]}`` wrappers are accepted), or in OpenHands' text format
for models without native function calling::

    <function=execute_bash>
    <parameter=command>ls</parameter>
    </function>

Values are stripped, except ``old_str``, ``new_str`` and ``file_text``, which lose only one
newline after the opening and one before the closing tag, so their indentation survives. Text
around the call (the model's reasoning) is ignored; only the first call of a reply is run. Every
file operation goes through the runtime, so it obeys the sandbox. Long observations keep their
head and tail around a marker.

What no shell or file system can take is refused when the call is parsed, as an invalid action:
a NUL byte or a lone surrogate in a value, a command over :data:`MAX_COMMAND_BYTES`, a file name
over :data:`MAX_NAME_BYTES` or a path over :data:`MAX_PATH_BYTES`. So is JSON nested deeper than
:data:`MAX_JSON_DEPTH` or holding an integer of more than :data:`MAX_JSON_INTEGER_DIGITS` digits,
and an integer parameter beyond :data:`MAX_INTEGER` or a ``timeout`` that is not a finite
positive number. Parsing takes time linear in the reply's length, whatever the reply holds.

The editor writes only under ``/workspace`` (only it is kept for sure between calls, and
graded), never through a symbolic link that leaves it or points nowhere, nor under a regular
file; such a write is an invalid action whose observation says why (:attr:`ToolResult.invalid`).

Example:
    >>> call = parse_tool_call('Look first.\\n<function=str_replace_editor>\\n'
    ...     '<parameter=command>view</parameter>\\n<parameter=path>/workspace</parameter>\\n'
    ...     '</function>')
    >>> call.name, call.arguments
    ('str_replace_editor', {'command': 'view', 'path': '/workspace'})
    >>> parse_tool_call('{"name": "execute_bash", "arguments": "{\\\\"command\\\\": \\\\"ls\\\\"}"}')
    ToolCall(name='execute_bash', arguments={'command': 'ls'}, note=None)
    >>> parse_tool_call("I will just chat")
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.tools.ToolCallError: the reply holds no tool call...
    >>> truncate_middle("a" * 10 + "b" * 10, 12)
    'aaa\\n[... 14 characters omitted ...]\\nbbb'
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from arenagym.envs.swe.runtime.interface import (
    WORKSPACE,
    Runtime,
    SandboxError,
    UnreadableFileError,
)

TOOL_NAMES: tuple[str, ...] = ("execute_bash", "str_replace_editor", "think", "finish")
EDITOR_COMMANDS: tuple[str, ...] = ("view", "create", "str_replace", "insert", "undo_edit")
#: Parameters other agent frameworks add that the tools accept and ignore.
_IGNORED_PARAMETERS = frozenset({"security_risk", "task_completed", "summary", "impl_source"})
#: Lines of context shown around an edit (OpenHands' SNIPPET_LINES).
SNIPPET_LINES = 4
#: Longest file view before clipping (OpenHands' MAX_RESPONSE_LEN_CHAR).
MAX_FILE_VIEW_CHARS = 16_000
#: Longest ``execute_bash`` command, in UTF-8 bytes: every runtime hands the command to bash as
#: one argument, and Linux refuses an argument over 128 KiB.
MAX_COMMAND_BYTES = 120_000
#: Longest file name (one path component) and whole path, in UTF-8 bytes (Linux's NAME_MAX and
#: PATH_MAX less its NUL).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095
#: Editor commands that write the file they name.
WRITING_COMMANDS: tuple[str, ...] = ("create", "str_replace", "insert", "undo_edit")
#: The deepest nesting of JSON arrays and objects a reply may hold (a tool call needs four).
MAX_JSON_DEPTH = 64
#: The most digits of an integer written in a reply's JSON.
MAX_JSON_INTEGER_DIGITS = 64
#: The largest magnitude of an integer parameter (a line number): no file has more lines.
MAX_INTEGER = 2**31 - 1

_STRING = {"type": "string"}
TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "execute_bash",
            "description": (
                "Execute a bash command in the sandbox. Every command starts in a fresh shell in "
                f"{WORKSPACE} (cd and exported variables do not carry over to the next command; "
                "chain them with &&). There is no network. A command that runs past its timeout "
                "is killed with all its processes; long outputs are shortened in the middle."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {**_STRING, "description": "The bash command to run."},
                    "timeout": {
                        "type": "number",
                        "description": "Optional: seconds before the command is killed.",
                    },
                },
                "required": ["command"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "str_replace_editor",
            "description": (
                "View, create and edit files. `view` shows a file with line numbers (like "
                "`cat -n`; `view_range` [start, end] picks lines, end -1 = to the end) or lists a "
                "directory 2 levels deep without hidden items. `create` writes a new file "
                "(it refuses existing ones). `str_replace` replaces `old_str`, which must occur "
                "exactly once, verbatim (whitespace included), by `new_str`. `insert` puts "
                "`new_str` after line `insert_line` (0 = at the top). `undo_edit` reverts the "
                "last edit made to `path` with this tool. Paths are absolute (relative paths are "
                f"taken from {WORKSPACE})."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": list(EDITOR_COMMANDS)},
                    "path": {**_STRING, "description": f"Absolute path, e.g. {WORKSPACE}/file.py"},
                    "file_text": {**_STRING, "description": "`create`: the file's content."},
                    "old_str": {**_STRING, "description": "`str_replace`: the text to replace."},
                    "new_str": {
                        **_STRING,
                        "description": "`str_replace`: the replacement; `insert`: the new text.",
                    },
                    "insert_line": {
                        "type": "integer",
                        "description": "`insert`: the line after which new_str goes.",
                    },
                    "view_range": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "`view`: [start, end] line numbers (end -1 = last line).",
                    },
                },
                "required": ["command", "path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "think",
            "description": "Write down a thought (nothing in the workspace changes).",
            "parameters": {
                "type": "object",
                "properties": {"thought": {**_STRING, "description": "The thought."}},
                "required": ["thought"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": (
                "End the episode when the task is done: the workspace's changes are graded by "
                "the repository's tests."
            ),
            "parameters": {
                "type": "object",
                "properties": {"message": {**_STRING, "description": "A short final summary."}},
                "required": [],
            },
        },
    },
]
_SPECS_BY_NAME = {spec["function"]["name"]: spec["function"] for spec in TOOL_SPECS}

FORMAT_HELP = f"""\
Call exactly one tool per reply, either as function-call JSON:
{{"name": "execute_bash", "arguments": {{"command": "ls {WORKSPACE}"}}}}
or in this text format (one tag per parameter; old_str/new_str/file_text keep their\nwhitespace except one newline after the opening and before the closing tag):
<function=str_replace_editor>
<parameter=command>str_replace</parameter>
<parameter=path>{WORKSPACE}/module.py</parameter>
<parameter=old_str>    return a - b</parameter>
<parameter=new_str>    return a + b</parameter>
</function>
Tools: execute_bash(command, timeout?), str_replace_editor(command, path, file_text?, old_str?, \
new_str?, insert_line?, view_range?), think(thought), finish(message?)."""


def tools_prompt() -> str:
    """The tool documentation for a system prompt: every tool, its parameters, both formats."""
    lines = ["You have these tools:", ""]
    for spec in TOOL_SPECS:
        function = spec["function"]
        required = set(function["parameters"].get("required", []))
        lines.append(f"---- {function['name']}: {function['description']}")
        for name, schema in function["parameters"]["properties"].items():
            kind = schema.get("type", "string")
            if "enum" in schema:
                kind += " (" + " | ".join(schema["enum"]) + ")"
            need = "required" if name in required else "optional"
            lines.append(f"  {name} ({kind}, {need}) {schema.get('description', '')}".rstrip())
        lines.append("")
    lines.append(FORMAT_HELP)
    return "\n".join(lines)


class ToolCallError(ValueError):
    """An action that is not a well-formed call of a known tool; the message says what to fix."""


@dataclass(frozen=True)
class ToolCall:
    """One parsed tool call. ``note`` tells the agent about something ignored (extra calls)."""

    name: str
    arguments: dict[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """What running one call produced: the observation, and whether the agent called finish.

    ``invalid`` marks a call the tool refused to carry out because it can never work (a write
    outside ``/workspace``, through a dangling link, under a regular file): an env counts it
    as an invalid action; ``observation`` then says why and what to do instead.
    """

    observation: str
    finished: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    invalid: bool = False


# ------------------------------------------------------------------------------- parsing
# Tags are found with possessive quantifiers and names that cannot hold "<", so every attempt to
# match one reads only up to the next "<": a scan of the whole reply is linear in its length.
_FUNCTION_OPEN = re.compile(r"<function\s*+=", re.IGNORECASE)
_FUNCTION_TAG = re.compile(r"<function\s*+=\s*+([^<>\s]*+)\s*+>")
_FUNCTION_END = re.compile(r"</function\s*+>")
_PARAMETER_TAG = re.compile(r"<parameter\s*+=\s*+([^<>\s]*+)\s*+>")
_PARAMETER_END = re.compile(r"</parameter\s*+>")


#: Text-format parameters whose whitespace is content (everything else is stripped).
_VERBATIM_PARAMETERS = frozenset({"old_str", "new_str", "file_text"})


def _text_value(key: str, raw: str) -> str:
    if key not in _VERBATIM_PARAMETERS:
        return raw.strip()
    return raw.removeprefix("\n").removesuffix("\n")


def _tagged_blocks(
    text: str, opening: re.Pattern[str], closing: re.Pattern[str]
) -> Iterator[tuple[re.Match[str], int, int]]:
    """Each block of ``text`` that an ``opening`` tag starts and the first ``closing`` tag after
    it ends, in order and without overlaps, as ``(the opening tag's match, where the body ends,
    where the block ends)``. Once an opening tag has no closing tag after it, no later one has,
    so the scan ends there: every character is read a bounded number of times."""
    position = 0
    while True:
        start = opening.search(text, position)
        if start is None:
            return
        end = closing.search(text, start.end())
        if end is None:
            return
        yield start, end.start(), end.end()
        position = end.end()


def _parse_text_call(text: str) -> ToolCall:
    calls = _tagged_blocks(text, _FUNCTION_TAG, _FUNCTION_END)
    first = next(calls, None)
    if first is None:
        raise ToolCallError(
            "a <function=...> tag is not closed by </function>, or is not written "
            "<function=TOOL_NAME>; write the whole call"
        )
    opening, body_end, _ = first
    name = opening.group(1).strip().strip("\"'")
    body = text[opening.end() : body_end]
    arguments: dict[str, Any] = {}
    unclosed = False
    position = 0
    for tag, value_end, block_end in _tagged_blocks(body, _PARAMETER_TAG, _PARAMETER_END):
        unclosed = unclosed or "<parameter" in body[position : tag.start()]
        key = tag.group(1).strip().strip("\"'")
        if key in arguments:
            raise ToolCallError(f"the parameter {key!r:.60} is given twice")
        arguments[key] = _text_value(key, body[tag.end() : value_end])
        position = block_end
    if unclosed or "<parameter" in body[position:]:
        raise ToolCallError("a <parameter=...> tag is not closed by </parameter>")
    count = 1 + sum(1 for _ in calls)
    note = None
    if count > 1:
        note = f"only the first of the {count} tool calls in the reply was run"
    return ToolCall(name, arguments, note)


class _LongInteger(ValueError):
    """An integer in a reply's JSON with more than :data:`MAX_JSON_INTEGER_DIGITS` digits."""

    def __init__(self, digits: int) -> None:
        super().__init__(f"an integer of {digits} digits")
        self.digits = digits


def _json_integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_INTEGER_DIGITS:
        raise _LongInteger(digits)
    return int(text)


def _nested_deeper_than(data: Any, limit: int) -> bool:
    """Whether JSON ``data`` nests arrays and objects more than ``limit`` levels (iteratively:
    no recursion, whatever the depth)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _load_json(text: str, what: str) -> Any:
    """``json.loads`` for text an agent wrote. Whatever is wrong with it raises
    :class:`ToolCallError` with a message that starts with ``what``: not JSON, arrays and objects
    nested more than :data:`MAX_JSON_DEPTH` levels (however deep: Python's recursion limit is
    never the answer), or an integer of more than :data:`MAX_JSON_INTEGER_DIGITS` digits."""
    too_deep = (
        f"{what} nests arrays and objects more than {MAX_JSON_DEPTH} levels deep (a tool call "
        "needs four)"
    )
    try:
        data = json.loads(text, parse_int=_json_integer)
    except _LongInteger as error:
        raise ToolCallError(
            f"{what} holds an integer of {error.digits} digits; integers in a tool call have at "
            f"most {MAX_JSON_INTEGER_DIGITS}"
        ) from None
    except RecursionError:
        raise ToolCallError(too_deep) from None
    except ValueError as error:  # json.JSONDecodeError
        raise ToolCallError(f"{what} is not JSON ({error})") from None
    if isinstance(data, dict | list) and _nested_deeper_than(data, MAX_JSON_DEPTH):
        raise ToolCallError(too_deep)
    return data


def _unwrap_json_call(data: Any) -> tuple[dict[str, Any], str | None]:
    note = None
    if isinstance(data, list):
        if not data:
            raise ToolCallError("the JSON list of tool calls is empty")
        if len(data) > 1:
            note = f"only the first of the {len(data)} tool calls in the reply was run"
        data = data[0]
    if isinstance(data, dict) and "tool_calls" in data:
        calls = data["tool_calls"]
        if not isinstance(calls, list) or not calls:
            raise ToolCallError('"tool_calls" must be a non-empty list of calls')
        if len(calls) > 1:
            note = f"only the first of the {len(calls)} tool calls in the reply was run"
        data = calls[0]
    if isinstance(data, dict) and isinstance(data.get("function"), dict):
        data = data["function"]
    if not isinstance(data, dict):
        raise ToolCallError(f"a JSON tool call is an object, not {type(data).__name__}")
    return data, note


def _parse_json_call(data: Any) -> ToolCall:
    call, note = _unwrap_json_call(data)
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallError('the JSON tool call has no "name" string')
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = (
            _load_json(arguments, '"arguments" is a string that') if arguments.strip() else {}
        )
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolCallError(f'"arguments" must be an object, not {type(arguments).__name__}')
    return ToolCall(name, dict(arguments), note)


def _unfenced(text: str) -> str:
    """The body of a reply that is one fenced block (```` ``` ```` or ```` ```json ````, then a
    line break, then the body, then ```` ``` ````), stripped; any other text as it is."""
    if len(text) < 6 or not text.startswith("```") or not text.endswith("```"):
        return text
    inner = text[3:-3].removeprefix("json")
    head, newline, body = inner.partition("\n")
    if not newline or head.strip():
        return text
    return body.strip()


def _json_candidate(text: str) -> Any:
    """The JSON of a reply that is a JSON call (or a fenced block of one); None when the reply
    does not start like JSON. A reply that does but is no usable JSON raises ToolCallError."""
    stripped = _unfenced(text.strip())
    if not stripped or stripped[0] not in "[{":
        return None
    return _load_json(stripped, "the reply starts like a JSON function call but")


def parse_tool_call(text: str) -> ToolCall:
    """Parse one reply into a validated :class:`ToolCall` (raises :class:`ToolCallError`).

    The text format wins when the reply contains ``<function=``; otherwise the whole reply (or a
    fenced ```json block that is the whole reply) must be a JSON call.
    """
    if not isinstance(text, str):
        raise ToolCallError(f"an action is text, not {type(text).__name__}")
    if _FUNCTION_OPEN.search(text):
        call = _parse_text_call(text)
    else:
        data = _json_candidate(text)
        if data is None:
            raise ToolCallError(
                "the reply holds no tool call (neither <function=...>...</function> nor a JSON "
                "function call)"
            )
        call = _parse_json_call(data)
    return validate_call(call)


_INTEGER_TEXT = re.compile(r"\s*+-?(\d++)\s*+")


def _coerce_int(value: Any, name: str) -> int:
    """An integer parameter (an int, an integral float or decimal digits) within
    ±:data:`MAX_INTEGER`; anything else raises :class:`ToolCallError` saying why."""

    def out_of_range() -> ToolCallError:
        return ToolCallError(
            f"{name} must be an integer from {-MAX_INTEGER} to {MAX_INTEGER}, got {value!r:.60}"
        )

    if isinstance(value, bool):
        raise ToolCallError(f"{name} must be an integer, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ToolCallError(f"{name} must be an integer, got {value!r:.60}")
        if abs(value) > MAX_INTEGER:
            raise out_of_range()
        return int(value)
    if isinstance(value, str):
        digits = _INTEGER_TEXT.fullmatch(value)
        if digits is None:
            raise ToolCallError(f"{name} must be an integer, got {value!r:.60}")
        if len(digits.group(1).lstrip("0")) > len(str(MAX_INTEGER)):  # before a slow int()
            raise out_of_range()
        value = int(value)
    if not isinstance(value, int):
        raise ToolCallError(f"{name} must be an integer, got {value!r:.60}")
    if abs(value) > MAX_INTEGER:
        raise out_of_range()
    return value


def _coerce_seconds(value: Any, name: str) -> float:
    """A finite, positive number of seconds (a number or its text); else :class:`ToolCallError`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ToolCallError(f"{name} must be a number, got {value!r:.60}")
    try:
        number = float(value)
    except ValueError:
        raise ToolCallError(f"{name} must be a number, got {value!r:.60}") from None
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not (math.isfinite(number) and number > 0):
        raise ToolCallError(f"{name} must be a positive number of seconds, got {value!r:.60}")
    return number


def _coerce_view_range(value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = _load_json(value, "the text given")
        except ToolCallError as error:
            raise ToolCallError(
                f"view_range must be a list of two integers like [1, 20]; {error}"
            ) from None
    if not isinstance(value, list) or len(value) != 2:
        raise ToolCallError(
            f"view_range must be a list of two integers like [1, 20], got {value!r:.60}"
        )
    return [_coerce_int(item, "each view_range item") for item in value]


def validate_call(call: ToolCall) -> ToolCall:
    """Check the tool name, required and unknown parameters, and coerce parameter types."""
    spec = _SPECS_BY_NAME.get(call.name)
    if spec is None:
        raise ToolCallError(
            f"unknown tool {call.name!r:.60}; the tools are {', '.join(TOOL_NAMES)}"
        )
    properties = spec["parameters"]["properties"]
    arguments = {k: v for k, v in call.arguments.items() if k not in _IGNORED_PARAMETERS}
    is_input = (
        str(arguments.pop("is_input", "false")).lower() if call.name == "execute_bash" else ""
    )
    if is_input in ("true", "1"):
        raise ToolCallError(
            "is_input=true is not supported: every command runs to completion in a fresh shell"
        )
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolCallError(
            f"{call.name} has no parameter {unknown[0]!r:.60}; its parameters are "
            f"{', '.join(properties)}"
        )
    for name in spec["parameters"].get("required", []):
        if name not in arguments:
            raise ToolCallError(f"{call.name} needs the parameter {name!r}")
    clean: dict[str, Any] = {}
    for name, value in arguments.items():
        kind = properties[name].get("type")
        if name == "view_range":
            clean[name] = _coerce_view_range(value)
        elif kind == "integer":
            clean[name] = _coerce_int(value, name)
        elif kind == "number":
            clean[name] = _coerce_seconds(value, name)
        elif not isinstance(value, str):
            raise ToolCallError(f"{name} must be a string, not {type(value).__name__}")
        else:
            clean[name] = value
    for name, value in clean.items():
        if isinstance(value, str):
            _check_text(name, value)
    if call.name == "execute_bash":
        size = len(clean["command"].encode("utf-8"))
        if size > MAX_COMMAND_BYTES:
            raise ToolCallError(
                f"the command is {size} bytes, over the limit of {MAX_COMMAND_BYTES}; write a "
                "long script to a file with str_replace_editor create and run that file"
            )
    if "path" in clean:
        _check_path(clean["path"])
    if call.name == "str_replace_editor" and clean["command"] not in EDITOR_COMMANDS:
        raise ToolCallError(
            f"str_replace_editor's command must be one of {', '.join(EDITOR_COMMANDS)}, "
            f"got {clean['command']!r:.60}"
        )
    return ToolCall(call.name, clean, call.note)


def _check_text(name: str, value: str) -> None:
    """Refuse what no shell or file can hold: a NUL byte in a command or path (C strings end
    there) and lone surrogates anywhere (not Unicode text, so not encodable as UTF-8)."""
    if "\x00" in value and name in ("command", "path"):
        raise ToolCallError(
            f"{name} contains a NUL byte (\\x00), which no shell command or file name can hold"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ToolCallError(
            f"{name} holds {value[error.start]!r}, a lone surrogate that is not Unicode text; "
            "send valid UTF-8 text"
        ) from None


def _check_path(path: str) -> None:
    """Refuse a path the file system cannot take: a name over :data:`MAX_NAME_BYTES` or a path
    over :data:`MAX_PATH_BYTES` (both in UTF-8 bytes)."""
    size = len(_absolute(path).encode("utf-8"))
    if size > MAX_PATH_BYTES:
        raise ToolCallError(f"the path is {size} bytes long, over the limit of {MAX_PATH_BYTES}")
    for part in PurePosixPath(path).parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise ToolCallError(
                f"the file name {part[:40]!r}... is {len(part.encode('utf-8'))} bytes long; a "
                f"file name has at most {MAX_NAME_BYTES} bytes"
            )


# ---------------------------------------------------------------------------- rendering
def truncate_middle(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail around a marker."""
    if len(text) <= limit:
        return text
    keep = max(0, limit // 2 - 3)
    omitted = len(text) - 2 * keep
    return f"{text[:keep]}\n[... {omitted} characters omitted ...]\n{text[len(text) - keep :]}"


def numbered(text: str, first_line: int = 1) -> str:
    """Lines numbered like ``cat -n`` (six columns, a tab)."""
    return "\n".join(
        f"{number:6}\t{line}" for number, line in enumerate(text.split("\n"), first_line)
    )


def _absolute(path: str) -> str:
    pure = PurePosixPath(path)
    if not pure.is_absolute():
        pure = PurePosixPath(WORKSPACE) / pure
    parts: list[str] = []
    for part in pure.parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


class ToolRunner:
    """Runs validated tool calls in one runtime, keeping per-file undo history.

    Arguments:
        runtime: a started :class:`~arenagym.envs.swe.runtime.interface.Runtime`.
        max_observation_chars: longer outputs keep their head and tail (OpenHands: 30000).
        default_timeout_s / max_timeout_s: ``execute_bash``'s timeout when none is given, and
            the most an agent may ask for.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        max_observation_chars: int = 30_000,
        default_timeout_s: float = 60.0,
        max_timeout_s: float = 600.0,
    ) -> None:
        self.runtime = runtime
        self.max_observation_chars = max_observation_chars
        self.default_timeout_s = default_timeout_s
        self.max_timeout_s = max_timeout_s
        self.history: dict[str, list[bytes | None]] = {}

    def run(self, call: ToolCall) -> ToolResult:
        """Run one call. Mistakes in the call's use (a missing file, a non-unique ``old_str``)
        become observations; a failing sandbox raises the runtime's error."""
        if call.name == "execute_bash":
            result = self._bash(call.arguments)
        elif call.name == "str_replace_editor":
            result = self._editor(call.arguments)
        elif call.name == "think":
            result = ToolResult("Your thought has been logged.")
        else:
            result = ToolResult(call.arguments.get("message", "") or "Finished.", finished=True)
        if call.note:
            result = ToolResult(
                f"{result.observation}\n[Note: {call.note}.]",
                result.finished,
                result.info,
                result.invalid,
            )
        return result

    # ---------------------------------------------------------------------- execute_bash
    def _bash(self, arguments: dict[str, Any]) -> ToolResult:
        command = arguments["command"]
        if not command.strip():
            return ToolResult("ERROR: the command is empty.", info={"tool_error": True})
        timeout = min(arguments.get("timeout", self.default_timeout_s), self.max_timeout_s)
        result = self.runtime.run(command, timeout_s=timeout)
        output = truncate_middle(result.output.rstrip("\n"), self.max_observation_chars)
        if result.truncated:
            output += "\n[... output cut: it went past the output limit ...]"
        if result.timed_out:
            status = f"[The command timed out after {timeout:g} seconds and was killed.]"
        elif result.exit_code is None:
            reason = result.killed_reason or "a resource limit"
            if reason == "disk":
                reason = "disk budget"
            status = f"[The command was killed ({reason}).]"
        else:
            status = f"[The command completed with exit code {result.exit_code}.]"
        info = {"exit_code": result.exit_code, "timed_out": result.timed_out}
        return ToolResult(f"{output}\n{status}" if output else status, info=info)

    # ----------------------------------------------------------------- str_replace_editor
    def _editor(self, arguments: dict[str, Any]) -> ToolResult:
        command = arguments["command"]
        path = _absolute(arguments["path"])
        needed = {
            "create": ("file_text",),
            "str_replace": ("old_str",),
            "insert": ("insert_line", "new_str"),
        }.get(command, ())
        for name in needed:
            if name not in arguments:
                return _error(f"Parameter `{name}` is required for command: {command}.")
        if command in WRITING_COMMANDS and not _in_workspace(path):
            return _invalid(
                f"{path} is outside {WORKSPACE}: only files under {WORKSPACE} are kept between "
                "tool calls and graded (the sandbox may reset every other folder, /tmp included, "
                f"after each call). Put the file under {WORKSPACE} instead, e.g. "
                f"{WORKSPACE}/{PurePosixPath(path).name or 'scratch.py'}."
            )
        try:
            if command == "view":
                return self._view(path, arguments.get("view_range"))
            if command == "create":
                return self._create(path, arguments["file_text"])
            if command == "str_replace":
                return self._str_replace(path, arguments["old_str"], arguments.get("new_str", ""))
            if command == "insert":
                return self._insert(path, arguments["insert_line"], arguments["new_str"])
            return self._undo(path)
        except FileNotFoundError:
            return _error(f"The path {path} does not exist. Please provide a valid path.")
        except IsADirectoryError:
            return _error(f"The path {path} is a directory; `{command}` works on files.")
        except PermissionError as error:
            return _error(f"The path {path} cannot be written: {error}")
        except UnicodeDecodeError:
            return _error(f"The file {path} is not UTF-8 text; use execute_bash to inspect it.")
        except UnreadableFileError as error:
            return _error(f"The editor cannot open {path}: {error}; use execute_bash instead.")
        except (OSError, SandboxError) as error:
            # The sandbox refused the path (a name the file system cannot take, a folder that
            # is a file...). Only if it still answers is that the call's fault: a dead
            # sandbox raises here, and the env reports an infrastructure fault.
            self.runtime.run("true", timeout_s=30)
            verb = "read" if command == "view" else "written"
            return _invalid(f"The path {path} cannot be {verb}: {_reason(error)}")

    def _read_text(self, path: str) -> str:
        return self.runtime.read_file(path).decode("utf-8")

    def _write(self, path: str, text: str, previous: bytes | None) -> None:
        self.runtime.write_file(path, text.encode("utf-8"))
        self.history.setdefault(path, []).append(previous)

    def _view(self, path: str, view_range: list[int] | None) -> ToolResult:
        try:
            text = self._read_text(path)
        except IsADirectoryError:
            if view_range is not None:
                return _error(
                    "The `view_range` parameter is not allowed when `path` is a directory."
                )
            return self._list_directory(path)
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        first = 1
        if view_range is not None:
            start, end = view_range
            count = len(lines)
            if not 1 <= start <= max(count, 1):
                return _error(
                    f"Invalid `view_range` parameter: {view_range}. Its first element `{start}` "
                    f"should be within the range of lines of the file: [1, {count}]."
                )
            if end != -1 and end < start:
                return _error(
                    f"Invalid `view_range` parameter: {view_range}. Its second element `{end}` "
                    f"should be larger or equal than its first `{start}`."
                )
            if end > count:
                return _error(
                    f"Invalid `view_range` parameter: {view_range}. Its second element `{end}` "
                    f"should be smaller than the number of lines in the file: `{count}`."
                )
            lines = lines[start - 1 :] if end == -1 else lines[start - 1 : end]
            first = start
        body = numbered("\n".join(lines), first)
        if len(body) > MAX_FILE_VIEW_CHARS:
            body = body[:MAX_FILE_VIEW_CHARS] + (
                "\n<response clipped><NOTE>To save on context only part of this file has been "
                "shown. Search it with `grep -n` and view a `view_range` instead.</NOTE>"
            )
        return ToolResult(f"Here's the result of running `cat -n` on {path}:\n{body}\n")

    def _list_directory(self, path: str) -> ToolResult:
        relative = _command_path(path)
        shown_root = WORKSPACE if relative.startswith(".") else ""
        result = self.runtime.run(
            f"find {shlex.quote(relative)} -maxdepth 2 -not -path '*/.*' | LC_ALL=C sort",
            timeout_s=30,
        )
        if result.exit_code != 0:
            return _error(f"Could not list {path}: {result.output.strip()[-500:]}")
        entries = []
        for line in result.output.splitlines():
            if shown_root and line.startswith("."):
                line = shown_root + line[1:]
            entries.append(line)
        listing = truncate_middle("\n".join(entries), self.max_observation_chars)
        return ToolResult(
            f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden "
            f"items:\n{listing}\n"
        )

    def _create(self, path: str, file_text: str) -> ToolResult:
        problem, kind = self._probe(path)
        if problem is not None:
            return _invalid(f"Cannot create {path}: {problem}.")
        if kind == "directory":
            return _error(f"The path {path} is a directory. Cannot create a file there.")
        if kind is not None:
            return _error(
                f"File already exists at: {path}. Cannot overwrite files using command `create`."
            )
        self._write(path, file_text, None)
        return ToolResult(f"File created successfully at: {path}")

    def _probe(self, path: str) -> tuple[str | None, str | None]:
        """(why a file cannot be created at ``path``, or None; what is there now: None,
        ``"file"``, ``"directory"`` or ``"other"``), looked up inside the sandbox."""
        marker = "@@arenagym-probe@@"
        result = self.runtime.run(
            f"exec python -I -S -c {shlex.quote(_PROBE_SOURCE)} "
            f"{shlex.quote(_command_path(path))} {marker}",
            timeout_s=30,
        )
        for line in reversed(result.output.splitlines()):
            if line.startswith(marker):
                try:
                    answer = json.loads(line[len(marker) :])
                    return answer["problem"], answer["kind"]
                except (ValueError, KeyError, TypeError):
                    break
        try:  # no answer (an image without python): look the path up as before
            self.runtime.read_file(path)
        except FileNotFoundError:
            return None, None
        except IsADirectoryError:
            return None, "directory"
        return None, "file"

    def _str_replace(self, path: str, old: str, new: str) -> ToolResult:
        if old == "":
            return _error("`old_str` is empty; give the exact text to replace.")
        if old == new:
            return _error(
                "No replacement was performed. `new_str` and `old_str` must be different."
            )
        raw = self.runtime.read_file(path)
        text = raw.decode("utf-8")
        count = text.count(old)
        if count == 0:
            return _error(
                f"No replacement was performed, old_str `{truncate_middle(old, 2000)}` did not "
                f"appear verbatim in {path}."
            )
        if count > 1:
            starts = [m.start() for m in re.finditer(re.escape(old), text)]
            lines = [text.count("\n", 0, start) + 1 for start in starts]
            return _error(
                f"No replacement was performed. Multiple occurrences of old_str "
                f"`{truncate_middle(old, 2000)}` in lines {lines}. Please ensure it is unique."
            )
        position = text.index(old)
        updated = text[:position] + new + text[position + len(old) :]
        self._write(path, updated, raw)
        edit_line = text.count("\n", 0, position)
        snippet = self._snippet(updated, edit_line, new.count("\n"))
        return ToolResult(
            f"The file {path} has been edited. Here's the result of running `cat -n` on a "
            f"snippet of {path}:\n{snippet}\nReview the changes and make sure they are as "
            "expected. Edit the file again if necessary."
        )

    def _insert(self, path: str, insert_line: int, new: str) -> ToolResult:
        raw = self.runtime.read_file(path)
        text = raw.decode("utf-8")
        lines = text.split("\n")
        trailing_newline = text.endswith("\n")
        if trailing_newline:
            lines.pop()
        if not 0 <= insert_line <= len(lines):
            return _error(
                f"Invalid `insert_line` parameter: {insert_line}. It should be within the range "
                f"of lines of the file: [0, {len(lines)}]"
            )
        new_lines = new.split("\n")
        updated_lines = lines[:insert_line] + new_lines + lines[insert_line:]
        updated = "\n".join(updated_lines) + ("\n" if trailing_newline or not lines else "")
        self._write(path, updated, raw)
        snippet = self._snippet(updated, insert_line, len(new_lines) - 1)
        return ToolResult(
            f"The file {path} has been edited. Here's the result of running `cat -n` on a "
            f"snippet of the edited file:\n{snippet}\nReview the changes and make sure they are "
            "as expected (correct indentation, no duplicate lines, etc). Edit the file again if "
            "necessary."
        )

    def _undo(self, path: str) -> ToolResult:
        versions = self.history.get(path)
        if not versions:
            return _error(f"No edit history found for {path}.")
        previous = versions.pop()
        if previous is None:  # the file was created by this tool: remove it again
            result = self.runtime.run(f"rm -f -- {shlex.quote(_command_path(path))}", timeout_s=30)
            if result.exit_code != 0:
                return _error(f"Could not remove {path}: {result.output.strip()[-300:]}")
            return ToolResult(f"Last edit to {path} undone successfully: the file was removed.")
        self.runtime.write_file(path, previous)
        text = previous.decode("utf-8", "replace")
        return ToolResult(
            f"Last edit to {path} undone successfully. Here's the result of running `cat -n` on "
            f"{path}:\n{truncate_middle(numbered(text.removesuffix(chr(10))), MAX_FILE_VIEW_CHARS)}\n"
        )

    @staticmethod
    def _snippet(text: str, line_index: int, added_lines: int) -> str:
        lines = text.split("\n")
        start = max(0, line_index - SNIPPET_LINES)
        end = min(len(lines), line_index + added_lines + SNIPPET_LINES + 1)
        return numbered("\n".join(lines[start:end]), start + 1)


def _in_workspace(path: str) -> bool:
    """Whether an absolute, normalised sandbox path is ``/workspace`` or under it."""
    return path == WORKSPACE or path.startswith(WORKSPACE + "/")


def _reason(error: BaseException) -> str:
    """The part of an OS or sandbox error that tells the agent what is wrong with its path."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return text[-1][-300:] if text else type(error).__name__


#: Runs in the sandbox, in the workspace (``python -I -S``): argv = a workspace path (relative,
#: as :func:`_command_path` writes it) and a marker. Walks the path one name at a time and prints
#: the marker and JSON ``{"problem": why a file cannot be created there or null, "kind": what is
#: there now}``: a regular file on the way, or a symbolic link that leaves the workspace or points
#: at nothing, is a problem.
_PROBE_SOURCE = r"""
import json, os, sys
relative, marker = sys.argv[1], sys.argv[2]
root = os.path.realpath(".")
names = [name for name in relative.split("/") if name not in ("", ".")]
def answer(problem=None, kind=None):
    sys.stdout.write("\n" + marker + json.dumps({"problem": problem, "kind": kind}) + "\n")
    sys.exit(0)
def shown(count):
    return "/".join(["/workspace"] + names[:count])
current = root
for count, name in enumerate(names, 1):
    here = os.path.join(current, name)
    if os.path.islink(here):
        link, target = os.readlink(here), os.path.realpath(here)
        if target != root and not target.startswith(root + os.sep):
            answer("%s is a symbolic link to %s, outside /workspace (only files under /workspace "
                   "are kept and graded)" % (shown(count), link))
        if not os.path.lexists(target):
            answer("%s is a symbolic link to %s, which does not exist; create that file instead, "
                   "or remove the link" % (shown(count), link))
        here = target
    if not os.path.lexists(here):
        answer()
    if count < len(names) and not os.path.isdir(here):
        answer("%s is a file, not a folder, so nothing can be created under it" % shown(count))
    current = here
if os.path.isdir(current):
    answer(None, "directory")
answer(None, "file" if os.path.isfile(current) else "other")
"""


def _command_path(path: str) -> str:
    """A path usable inside commands (workspace paths relative, as the local runtime maps them)."""
    if path == WORKSPACE or path.startswith(WORKSPACE + "/"):
        return "." + path[len(WORKSPACE) :]
    return path


def _error(message: str) -> ToolResult:
    return ToolResult(f"ERROR:\n{message}", info={"tool_error": True})


def _invalid(message: str) -> ToolResult:
    """A call that can never work: an env counts it as an invalid action."""
    return ToolResult(message, info={"tool_error": True}, invalid=True)

"""One way to load things named in configs: ``"package.module:attr"``, a built-in name, or an
entry point an installed package advertises.

Agents, opponents, judges, reward models, suite and trainer imports, the env registry and the
command line all name Python objects the same way, and all resolve them here, so that every such
name fails with the same kind of message (which spec, what was tried, close names) and a new way
of naming things is added once. It lives in ``envs/core`` because it is the lowest layer: envs
load their plug-ins (a TextArena opponent, a preference judge) without importing ``agents``.

Agents are the one family of plug-ins an env may need from a higher layer (an LLM opponent,
``"hf:MODEL"``): an installed package maps each agent-spec *kind* (the part before the first
``:`` of ``"hf:MODEL"``) to a factory in the entry-point group :data:`AGENT_KIND_GROUP`, and
named agents to classes in :data:`AGENT_GROUP`. arenagym declares its own in ``setup.cfg``; a
third-party package adds its own kinds and agents the same way.

Example:
    >>> load_object("collections:OrderedDict.fromkeys")(["a"])
    OrderedDict({'a': None})
    >>> resolve("missing", what="agent", builtins={"random": "random:Random"})
    Traceback (most recent call last):
    ...
    arenagym.envs.core.loading.LoadError: unknown agent 'missing': name one of 'random', or give 'package.module:attr'
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

__all__ = [
    "AGENT_GROUP",
    "AGENT_KIND_GROUP",
    "LoadError",
    "entry_point_names",
    "import_modules",
    "load_object",
    "resolve",
    "resolve_agent_factory",
]

#: Entry-point group of agents by name (``random-legal = pkg.module:Class``).
AGENT_GROUP = "arenagym.agents"
#: Entry-point group of agent-spec kinds: ``hf = pkg.module:factory`` makes ``"hf:MODEL,..."`` an
#: agent spec; the factory takes the whole spec and returns a callable that builds the agent
#: from keyword arguments.
AGENT_KIND_GROUP = "arenagym.agent_kinds"


class LoadError(ValueError):
    """A name that does not resolve; the message says which name, what was tried and why."""


def load_object(target: str, *, what: str = "object") -> Any:
    """The object that ``target`` (``"package.module:attr"``, ``attr`` may be dotted) names.

    Raises :class:`LoadError` naming ``what`` (e.g. ``"agent"``, ``"judge"``) when the form is
    wrong, the module does not import (with the import's own error) or has no such attribute.

    >>> load_object("os.path:join")("a", "b")
    'a/b'
    >>> load_object("os.path:nope", what="judge")
    Traceback (most recent call last):
    ...
    arenagym.envs.core.loading.LoadError: judge 'os.path:nope': module 'os.path' has no 'nope'
    """
    module_name, separator, attribute = str(target).partition(":")
    if not separator or not module_name or not attribute:
        raise LoadError(f"{what} {target!r}: expected 'package.module:attr'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise LoadError(
            f"{what} {target!r}: cannot import module {module_name!r} ({error})"
        ) from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LoadError(f"{what} {target!r}: module {module_name!r} has no {attribute!r}") from None
    return found


def import_modules(names: Iterable[str], *, what: str = "import") -> None:
    """Import each module of ``names`` (e.g. a config's ``imports``: modules that register envs).

    >>> import_modules(["json"])
    >>> import_modules(["no_such_module_here"], what="suite import")
    Traceback (most recent call last):
    ...
    arenagym.envs.core.loading.LoadError: suite import 'no_such_module_here': cannot import it (No module named 'no_such_module_here')
    """
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise LoadError(f"{what} {name!r}: cannot import it ({error})") from None


def entry_point_names(group: str) -> list[str]:
    """The names installed packages advertise in the entry-point ``group``, sorted."""
    return sorted({entry_point.name for entry_point in entry_points(group=group)})


def _entry_point(group: str, name: str) -> Any | None:
    for entry_point in entry_points(group=group, name=name):
        try:
            return entry_point.load()
        except (ImportError, AttributeError) as error:
            raise LoadError(
                f"entry point {name!r} of {group!r} ({entry_point.value}) does not load: {error}"
            ) from None
    return None


def resolve(
    spec: str,
    *,
    what: str,
    builtins: Mapping[str, str] | None = None,
    group: str | None = None,
) -> Any:
    """The object ``spec`` names: a key of ``builtins`` (whose value is a ``"module:attr"``), a
    ``"package.module:attr"``, or the name of an entry point in ``group``, tried in that order.

    Raises :class:`LoadError` naming ``what`` and the closest known name when nothing matches.

    >>> resolve("dumps", what="encoder", builtins={"dumps": "json:dumps"})({"a": 1})
    '{"a": 1}'
    """
    builtins = builtins or {}
    target = builtins.get(spec)
    if target is not None:
        return load_object(target, what=what)
    if ":" in spec:
        return load_object(spec, what=what)
    if group:
        found = _entry_point(group, spec)
        if found is not None:
            return found
    names = [*builtins, *(entry_point_names(group) if group else [])]
    close = difflib.get_close_matches(spec, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(map(repr, names))
    raise LoadError(
        f"unknown {what} {spec!r}{hint}: name one of {known}, or give 'package.module:attr'"
        if names
        else f"unknown {what} {spec!r}: give 'package.module:attr'"
    )


def resolve_agent_factory(
    spec: str, *, what: str = "agent", builtins: Mapping[str, str] | None = None
) -> Callable[..., Any]:
    """The callable that builds the agent ``spec`` names, for code below ``agents`` (an env's
    opponent). An agent-spec kind (``"hf:MODEL,..."``: a name in :data:`AGENT_KIND_GROUP`) goes
    to that kind's factory; anything else to :func:`resolve` with :data:`AGENT_GROUP`.

    >>> factory = resolve_agent_factory("random:Random")
    >>> factory(0).random() == factory(0).random()
    True
    """
    kind, separator, _ = spec.partition(":")
    if separator and kind and "." not in kind:
        kind_factory = _entry_point(AGENT_KIND_GROUP, kind)
        if kind_factory is not None:
            return kind_factory(spec)
    factory = resolve(spec, what=what, builtins=builtins, group=AGENT_GROUP)
    if not callable(factory):
        raise LoadError(f"{what} {spec!r} is not a class or factory")
    return factory

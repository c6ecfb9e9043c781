"""SWE sandbox runtimes: one interface (:class:`~.base.Runtime`), several isolation backends.

``bubblewrap`` (the default: namespaces, no daemon, tens of milliseconds per command),
``docker`` (one container per episode from a task image; the ``docker`` extra and a reachable
daemon) and ``local`` (no isolation at all: trusted code only, an explicit opt-in).

Example::

    >>> from arenagym.envs.swe.runtime import available_runtimes, make_runtime
    >>> sorted(available_runtimes())
    ['bubblewrap', 'docker', 'local']
    >>> make_runtime("local")
    Traceback (most recent call last):
    ...
    ValueError: the local runtime runs agent-written code on this machine with no isolation ...
"""

from __future__ import annotations

from typing import Any

from .interface import (
    WORKSPACE,
    CommandResult,
    Limits,
    Runtime,
    SandboxError,
    UnreadableFileError,
    WorkspaceFullError,
)

RUNTIME_NAMES = ("bubblewrap", "docker", "local")

__all__ = [
    "RUNTIME_NAMES",
    "WORKSPACE",
    "CommandResult",
    "Limits",
    "Runtime",
    "SandboxError",
    "UnreadableFileError",
    "WorkspaceFullError",
    "available_runtimes",
    "make_runtime",
]


def make_runtime(
    name: str = "bubblewrap",
    *,
    limits: Limits | None = None,
    allow_local: bool = False,
    **options: Any,
) -> Runtime:
    """A new, not yet started runtime by name; ``options`` go to its constructor (e.g.
    ``workspace_mode="copy"`` for bubblewrap, ``image=...`` or ``docker_host=...`` for docker).

    ``"local"`` runs commands directly on the host and is refused unless ``allow_local=True``.
    """
    if name == "bubblewrap":
        from .bubblewrap import BubblewrapRuntime

        return BubblewrapRuntime(limits, **options)
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime(limits, **options)
    if name == "local":
        if not allow_local:
            raise ValueError(
                "the local runtime runs agent-written code on this machine with no isolation "
                "(it can read your files, use the network and delete data); pass "
                "allow_local=True only for code you trust, or use 'bubblewrap' or 'docker'"
            )
        from .local import LocalRuntime

        return LocalRuntime(limits, **options)
    raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIME_NAMES)}")


def available_runtimes() -> dict[str, str | None]:
    """Each runtime's name -> None when it is usable here, else the reason it is not."""
    from .bubblewrap import bubblewrap_unavailable_reason
    from .docker import docker_unavailable_reason

    return {
        "bubblewrap": bubblewrap_unavailable_reason(),
        "docker": docker_unavailable_reason(),
        "local": None,
    }

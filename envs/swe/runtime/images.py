"""Local Docker images for the SWE Docker runtime (no registry is involved).

``scripts/build-swe-image`` makes the base image :data:`~.docker.DEFAULT_IMAGE` offline from
Debian packages (debootstrap + ``docker import``). :func:`ensure_task_image` layers a task's
set-up commands on top: it runs them once in a container from the base (as root, no network,
the task's files copied in at ``/workspace`` when given) and commits the result under a tag
derived from the base image's id and the commands, so the same task set-up is built once and
then reused.

Example::

    >>> task_image_tag("sha256:0123", ["pip install --no-index ./vendor/*.whl"])
    'arenagym/swe-task:8d9dd0454313a0da'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .docker import CONTAINER_LABEL, DEFAULT_IMAGE, _tar_of, docker_client
from .interface import SandboxError

TASK_REPOSITORY = "arenagym/swe-task"


def task_image_tag(base_image_id: str, setup_commands: Sequence[str]) -> str:
    """The tag of the image that ``setup_commands`` make from the base with id ``base_image_id``
    (a content hash: the same inputs always name the same image)."""
    digest = hashlib.sha256(json.dumps([base_image_id, list(setup_commands)]).encode())
    return f"{TASK_REPOSITORY}:{digest.hexdigest()[:16]}"


def ensure_task_image(
    setup_commands: Sequence[str],
    *,
    base: str = DEFAULT_IMAGE,
    workspace: Path | None = None,
    docker_host: str | None = None,
    timeout_s: float = 1800,
) -> str:
    """The tag of an image with ``setup_commands`` applied to ``base``, building it if missing.
    With no commands, ``base`` itself. Raises :class:`SandboxError` naming the failing
    command with its output."""
    if not setup_commands:
        return base
    client: Any = docker_client(docker_host)
    try:
        base_id = client.images.get(base).id
        tag = task_image_tag(base_id, setup_commands)
        from docker.errors import ImageNotFound

        try:
            client.images.get(tag)
            return tag
        except ImageNotFound:
            pass
        container = client.containers.create(
            base, command=["sleep", "infinity"], user="0:0", network_mode="none", init=True,
            labels={CONTAINER_LABEL: "build"}, working_dir="/workspace",
        )
        try:
            container.start()
            if workspace is not None:
                container.put_archive("/workspace", _tar_of(Path(workspace)))
            for command in setup_commands:
                result = container.exec_run(
                    ["timeout", "-s", "KILL", str(int(timeout_s)), "bash", "-c", command],
                    workdir="/workspace",
                )
                if result.exit_code != 0:
                    output = result.output.decode(errors="replace")[-2000:]
                    raise SandboxError(
                        f"set-up command {command!r} failed on {base} "
                        f"(exit {result.exit_code}):\n{output}"
                    )
            if workspace is not None:  # the episode copies its own workspace in
                container.exec_run(["sh", "-c", "rm -rf /workspace/* /workspace/.[!.]*"])
            container.commit(
                repository=TASK_REPOSITORY, tag=tag.split(":", 1)[1],
                changes=['CMD ["sleep", "infinity"]', "WORKDIR /workspace"],
            )
        finally:
            container.remove(force=True, v=True)
        return tag
    finally:
        client.close()

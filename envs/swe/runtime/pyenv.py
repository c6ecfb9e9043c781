"""Per-repository Python environments for the SWE sandboxes, built once and cached by content.

A repository's tests need more than the sandbox's system Python (Debian's ``python3`` with
``pytest``): its own dependencies and its test tools, at the versions it was released with.
Skywork-SWE gives every task a runtime image of its own; this is the same idea done offline and
light: a virtual environment on the host, built from the package registry once, and mounted
read-only into every sandbox of that repository at :data:`SANDBOX_ENV` (bubblewrap ``--ro-bind``,
a read-only bind mount for Docker), with its ``bin`` first on ``PATH``. The sandbox keeps no
network: everything is installed before, on the host.

An :class:`EnvSpec` says what goes in: exact requirements (``name==version``, the closure),
the workspace folders to put on ``sys.path`` (``src`` for a src layout), and the repository's
own distribution name and version (a ``.dist-info`` so that ``importlib.metadata`` finds it, as
after ``pip install -e``). Its :meth:`~EnvSpec.digest` (a SHA-256 of the spec and of the
interpreter's version) names the cache entry, so a second :func:`build_env` of the same spec
takes no time and two repositories with the same needs share one environment. Builds happen
in a temporary folder renamed into place, under a lock: a crash leaves no half-built entry, and
concurrent builders of one spec build it once.

The environment is relocatable: its interpreter is a link to the system's, ``pyvenv.cfg`` holds
no host path, and console scripts start with a shell line that finds the ``python`` beside them,
so the same folder works on the host (the local runtime) and at :data:`SANDBOX_ENV`.

Example (a spec file and its digest; building needs the registry):
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "env.json"
    >>> _ = path.write_text(json.dumps({"requirements": ["iniconfig==2.0.0"], "paths": ["src"]}))
    >>> spec = load_env_spec(path)
    >>> spec.requirements, spec.paths
    (('iniconfig==2.0.0',), ('src',))
    >>> len(spec.digest("3.11.2"))
    64
    >>> _ = path.write_text(json.dumps({"requirements": ["iniconfig"]}))
    >>> load_env_spec(path)
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.runtime.pyenv.EnvSpecError: ...env.json: field 'requirements': item 0 ...
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from arenagym.envs.core.locking import file_lock

from .interface import SandboxError

#: Where the environment is mounted inside the sandbox (read-only).
SANDBOX_ENV = "/opt/arenagym/env"
#: The interpreter environments are built for: the one the sandboxes run.
DEFAULT_PYTHON = "/usr/bin/python3"
#: The cache folder: ``$ARENAGYM_SWE_ENV_CACHE``, else ``~/.cache/arenagym/swe-envs``.
CACHE_VARIABLE = "ARENAGYM_SWE_ENV_CACHE"
#: Bumped when the layout of a built environment changes (old entries are then rebuilt).
ENV_FORMAT = 1
#: The file, inside a built environment, that marks it complete and describes it.
MANIFEST = "arenagym-env.json"
#: Seconds one ``pip install`` may take.
PIP_TIMEOUT_S = 900.0

_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[A-Za-z0-9._,-]+\])?==(\S+)$")
_SHEBANG_RELOCATABLE = (
    b'#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"\n\' \'\'\'\n'
)


class EnvSpecError(ValueError):
    """An environment spec file that does not follow the format; names the file and field."""

    def __init__(self, path: str | os.PathLike[str], field_name: str | None, problem: str):
        self.path = str(path)
        self.field = field_name
        where = f"{self.path}: field {field_name!r}" if field_name else self.path
        super().__init__(f"{where}: {problem}")


class EnvBuildError(RuntimeError):
    """An environment that could not be built; the message ends with pip's last lines."""


@dataclass(frozen=True)
class EnvSpec:
    """What one repository's environment holds (see the module doc).

    ``requirements`` are exact pins (``name==version``, optionally ``name[extra]==version``),
    installed without resolving again, so a spec builds the same environment every time.
    ``paths`` are workspace-relative folders put on ``sys.path`` (through a ``.pth`` file);
    ``distribution``/``version`` add a ``.dist-info`` for the repository itself, with
    ``entry_points`` (an ``entry_points.txt``) when it declares plugins.
    """

    requirements: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    distribution: str = ""
    version: str = ""
    entry_points: str = ""
    python: str = DEFAULT_PYTHON

    def __post_init__(self) -> None:
        for requirement in self.requirements:
            if not _PIN.match(requirement):
                raise ValueError(f"requirement {requirement!r} is not an exact pin NAME==VERSION")
        for path in self.paths:
            posix = PurePosixPath(path)
            if posix.is_absolute() or ".." in posix.parts or "\n" in path or not path.strip():
                raise ValueError(f"path {path!r} must be a folder inside the workspace")

    def digest(self, python_version: str | None = None) -> str:
        """The SHA-256 (hex) of the spec and the interpreter's version: the cache key."""
        version = python_version or interpreter_version(self.python)
        payload = {"format": ENV_FORMAT, "python_version": version, **self.to_json()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object (lists for the tuples)."""
        row = asdict(self)
        row["requirements"] = sorted(self.requirements, key=str.lower)
        row["paths"] = list(self.paths)
        return row


@dataclass(frozen=True)
class BuiltEnv:
    """A built environment: its folder on the host, its digest, whether it came from the cache,
    and the seconds :func:`build_env` took."""

    path: Path
    digest: str
    reused: bool
    seconds: float
    installed: tuple[str, ...] = field(default=())


def parse_env_spec(row: Any, *, path: str | os.PathLike[str] = "<spec>") -> EnvSpec:
    """Validate a decoded JSON object and build its :class:`EnvSpec` (errors name ``path`` and
    the field)."""
    if not isinstance(row, dict):
        raise EnvSpecError(path, None, f"expected a JSON object, got {type(row).__name__}")
    values: dict[str, Any] = {}
    for name in ("requirements", "paths"):
        items = row.get(name, [])
        if not isinstance(items, list):
            raise EnvSpecError(
                path, name, f"expected a list of strings, got {type(items).__name__}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise EnvSpecError(path, name, f"item {index} is not a string: {item!r:.80}")
            if name == "requirements" and not _PIN.match(item):
                raise EnvSpecError(
                    path, name, f"item {index} ({item!r:.80}) is not an exact pin NAME==VERSION"
                )
            if name == "paths":
                posix = PurePosixPath(item)
                if not item.strip() or posix.is_absolute() or ".." in posix.parts:
                    raise EnvSpecError(
                        path, name, f"item {index} ({item!r:.80}) is not a folder in the workspace"
                    )
        values[name] = tuple(items)
    for name in ("distribution", "version", "entry_points", "python"):
        if name in row:
            if not isinstance(row[name], str):
                raise EnvSpecError(path, name, f"expected a string, got {type(row[name]).__name__}")
            values[name] = row[name]
    python = values.get("python", DEFAULT_PYTHON)
    if not python.startswith("/usr/"):
        raise EnvSpecError(path, "python", f"{python!r} is not an interpreter under /usr")
    if bool(values.get("distribution")) != bool(values.get("version")):
        raise EnvSpecError(path, "version", "distribution and version go together")
    return EnvSpec(**values)


def load_env_spec(path: str | os.PathLike[str]) -> EnvSpec:
    """Read an environment spec: a JSON file holding the spec, or a repository's provenance
    file (:mod:`arenagym.envs.swe.sdist`) holding it under ``"environment"``."""
    source = Path(path)
    try:
        row = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"environment spec {source} does not exist") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise EnvSpecError(source, None, f"not a JSON file ({error})") from None
    if isinstance(row, dict) and "environment" in row:
        return parse_env_spec(row["environment"], path=f"{source}#environment")
    return parse_env_spec(row, path=source)


def default_cache_dir() -> Path:
    """``$ARENAGYM_SWE_ENV_CACHE``, else ``~/.cache/arenagym/swe-envs``."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "arenagym" / "swe-envs"


@functools.cache
def interpreter_version(python: str = DEFAULT_PYTHON) -> str:
    """``python``'s full version and machine (``3.11.2-x86_64``): part of every digest."""
    script = (
        "import platform, sys; print('%d.%d.%d-%s' % (*sys.version_info[:3], platform.machine()))"
    )
    try:
        completed = subprocess.run(
            [python, "-I", "-c", script], capture_output=True, text=True, timeout=60
        )
    except OSError as error:
        raise EnvBuildError(f"the interpreter {python} cannot run: {error}") from None
    if completed.returncode != 0:
        raise EnvBuildError(f"the interpreter {python} failed: {completed.stderr.strip()[-300:]}")
    return completed.stdout.strip()


def env_path(spec: EnvSpec, cache_dir: Path | None = None) -> Path:
    """Where ``spec``'s environment lives (built or not) in the cache."""
    return (cache_dir or default_cache_dir()) / spec.digest()[:32]


def is_built(spec: EnvSpec, cache_dir: Path | None = None) -> bool:
    """Whether ``spec``'s environment is in the cache, complete."""
    return (env_path(spec, cache_dir) / MANIFEST).is_file()


def build_env(spec: EnvSpec, cache_dir: Path | None = None) -> BuiltEnv:
    """The environment of ``spec``, from the cache when it is there (about no time), else built
    from the registry (``pip install --no-deps`` of the pins into a new virtual environment).

    Raises :class:`EnvBuildError` with pip's last lines when a package cannot be installed.
    """
    started = time.monotonic()
    cache = cache_dir or default_cache_dir()
    digest = spec.digest()
    target = cache / digest[:32]
    if (target / MANIFEST).is_file():
        return BuiltEnv(target, digest, True, time.monotonic() - started)
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / f".{digest[:32]}.lock"):
        if (target / MANIFEST).is_file():  # another process built it while we waited
            return BuiltEnv(target, digest, True, time.monotonic() - started)
        scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache))
        try:
            venv = scratch / "env"
            installed = _populate(spec, venv)
            manifest = {
                "format": ENV_FORMAT,
                "digest": digest,
                "python_version": interpreter_version(spec.python),
                "spec": spec.to_json(),
                "installed": list(installed),
                "build_seconds": round(time.monotonic() - started, 3),
            }
            (venv / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            if target.exists():  # an incomplete leftover (no manifest) of an older crash
                shutil.rmtree(target, ignore_errors=True)
            venv.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return BuiltEnv(target, digest, False, time.monotonic() - started, installed)


def lock_requirements(
    requirements: Sequence[str], python: str = DEFAULT_PYTHON, *, cache_dir: Path | None = None
) -> tuple[str, ...]:
    """Resolve loose requirements (``pytest>=8``, ``hypothesis; python_version < "3.12"``)
    into the exact pins of their whole closure for ``python``, as :class:`EnvSpec` wants them.

    The registry is asked once per distinct input (the answer is cached beside the
    environments), so a second import of the same repository resolves in no time.
    """
    wanted = sorted(dict.fromkeys(r.strip() for r in requirements if r.strip()))
    if not wanted:
        return ()
    cache = cache_dir or default_cache_dir()
    key = hashlib.sha256(
        json.dumps([ENV_FORMAT, interpreter_version(python), wanted]).encode()
    ).hexdigest()[:32]
    saved = cache / "locks" / f"{key}.json"
    with contextlib.suppress(OSError, ValueError):
        pins = json.loads(saved.read_text())
        if isinstance(pins, list) and all(isinstance(p, str) and _PIN.match(p) for p in pins):
            return tuple(pins)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=cache) as scratch:
        venv = Path(scratch) / "env"
        _make_venv(python, venv)
        report = Path(scratch) / "report.json"
        requirements_file = Path(scratch) / "requirements.txt"
        requirements_file.write_text("".join(line + "\n" for line in wanted))
        _pip(
            venv,
            [
                "install",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "-r",
                str(requirements_file),
            ],
        )
        data = json.loads(report.read_text())
    pins = sorted(
        (
            f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in data.get("install", [])
        ),
        key=str.lower,
    )
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(pins))
    return tuple(pins)


def sandbox_path_variable(base: str) -> str:
    """``PATH`` inside a sandbox with an environment: its ``bin`` first, then ``base``."""
    return f"{SANDBOX_ENV}/bin:{base}"


def checked_env(python_env: Path | None) -> Path | None:
    """``python_env`` resolved (None stays None), or :class:`SandboxError` when it is not a
    built environment: what a runtime checks before mounting it."""
    if python_env is None:
        return None
    environment = Path(python_env).resolve()
    if not (environment / MANIFEST).is_file() or not (environment / "bin" / "python").exists():
        raise SandboxError(
            f"python_env {environment} is not a built environment (no {MANIFEST} or bin/python); "
            "build it with arenagym.envs.swe.runtime.pyenv.build_env"
        )
    return environment


# -- building ---------------------------------------------------------------------------------


def _make_venv(python: str, venv: Path) -> None:
    try:
        completed = subprocess.run(
            [python, "-m", "venv", "--without-pip", str(venv)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EnvBuildError(f"cannot create a virtual environment with {python}: {error}") from None
    if completed.returncode != 0:
        raise EnvBuildError(
            f"cannot create a virtual environment with {python}: {completed.stderr.strip()[-500:]}"
        )


def _pip(venv: Path, arguments: list[str]) -> str:
    """Run this interpreter's pip against ``venv``'s interpreter (``pip --python``): the
    environment needs no pip of its own. Raises :class:`EnvBuildError` with pip's last lines."""
    argv = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
        "--no-input",
        "--disable-pip-version-check",
        *arguments,
    ]
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise EnvBuildError(f"pip ran past {PIP_TIMEOUT_S:.0f} s") from None
    if completed.returncode != 0:
        lines = [
            line
            for line in (completed.stdout + completed.stderr).splitlines()
            if line.strip() and "is ignored: it is neither a file nor a directory" not in line
        ]
        raise EnvBuildError("pip failed: " + "\n".join(lines[-15:]))
    return completed.stdout


def _site_packages(venv: Path) -> Path:
    [site] = sorted((venv / "lib").glob("python3*/site-packages"))
    return site


def _populate(spec: EnvSpec, venv: Path) -> tuple[str, ...]:
    """Make ``venv``: the pins, the ``.pth`` of the workspace folders, the repository's
    ``.dist-info``, relocatable scripts. The installed distributions (``name==version``)."""
    _make_venv(spec.python, venv)
    if spec.requirements:
        requirements = venv.parent / "requirements.txt"
        requirements.write_text("".join(line + "\n" for line in spec.requirements))
        _pip(venv, ["install", "--no-deps", "-r", str(requirements)])
    site = _site_packages(venv)
    if spec.paths:
        lines = "".join(f"{PurePosixPath('/workspace') / p}\n" for p in spec.paths)
        (site / "arenagym-workspace.pth").write_text(lines)
    if spec.distribution:
        _write_dist_info(site, spec)
    _make_relocatable(venv)
    return tuple(sorted(_installed(site), key=str.lower))


def _write_dist_info(site: Path, spec: EnvSpec) -> None:
    """A ``.dist-info`` for the repository (as an editable install leaves): its code stays in
    the workspace, its metadata is here."""
    name = re.sub(r"[-_.]+", "_", spec.distribution)
    folder = site / f"{name}-{spec.version}.dist-info"
    clashes = [
        p.name for p in site.glob("*.dist-info") if p.name.lower().startswith(f"{name.lower()}-")
    ]
    if clashes:
        raise EnvBuildError(
            f"the requirements install {clashes[0]}, the repository's own distribution "
            f"{spec.distribution}: drop it from the requirements (the workspace's code is tested)"
        )
    folder.mkdir()
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {spec.distribution}\nVersion: {spec.version}\n"
    )
    (folder / "INSTALLER").write_text("arenagym\n")
    (folder / "RECORD").write_text("")
    if spec.entry_points.strip():
        (folder / "entry_points.txt").write_text(spec.entry_points)


def _installed(site: Path) -> Iterator[str]:
    for metadata in site.glob("*.dist-info/METADATA"):
        name = version = None
        with metadata.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Version:"):
                    version = line.split(":", 1)[1].strip()
        if name and version:
            yield f"{name}=={version}"


def _make_relocatable(venv: Path) -> None:
    """Drop the host path from ``pyvenv.cfg`` and give scripts a shebang that finds the
    ``python`` beside them, wherever the folder is mounted."""
    config = venv / "pyvenv.cfg"
    kept = [line for line in config.read_text().splitlines() if not line.startswith("command")]
    config.write_text("\n".join(kept) + "\n")
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        first, _, rest = data.partition(b"\n")
        if first.startswith(b"#!") and b"python" in first and str(venv).encode() in first:
            script.write_bytes(_SHEBANG_RELOCATABLE + rest)
        elif str(venv).encode() in data:  # activate scripts: they would name the host path
            script.unlink()

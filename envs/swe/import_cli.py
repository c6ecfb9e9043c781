"""``arenagym swe import-sdist``: real repositories from the package registry, given the parsed
arguments (the parser, help and error format are :mod:`arenagym.cli`'s)::

    arenagym swe import-sdist more-itertools==10.5.0 toolz==1.0.0 -o repos
    arenagym swe import-sdist -r envs/swe/data/real-libraries.txt -o build/swe-real --check

Each pin becomes ``OUT/NAME-VERSION/`` (a one-commit git repository) and
``OUT/NAME-VERSION.json`` (its provenance and locked environment spec), and its environment is
built (cached by content hash; ``--no-env`` skips it). ``--check`` also runs the whole test
suite once in the bubblewrap sandbox with that environment and records the outcome.

Every pin is handled on its own: one line per pin on stderr, ``imported`` or ``error: PIN:
WHY``, and the others go on. Exit status 2 when a pin or pin file is malformed (bad input), 1
when a package could not be imported or its suite failed in the sandbox, else 0.
"""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape

from arenagym.envs.swe.cli import UsageError
from arenagym.envs.swe.pins import Pin, PinError, parse_pin, read_pin_file
from arenagym.envs.swe.sdist import ImportResult, SdistImportError, import_sdist, run_suite

__all__ = ["ImportFailedError", "import_sdist_command"]


class ImportFailedError(Exception):
    """Some packages could not be imported (each was reported): exit status 1."""


def _pins(args: argparse.Namespace) -> tuple[list[Pin], list[str]]:
    """The pins of the arguments and pin files, and the errors of the malformed ones."""
    pins: list[Pin] = []
    errors: list[str] = []
    for path in args.pins or ():
        try:
            pins.extend(read_pin_file(path))
        except PinError as error:
            raise UsageError(str(error)) from None
    for text in args.packages:
        try:
            pins.append(parse_pin(text))
        except PinError as error:
            errors.append(str(error))
    if not pins and not errors:
        raise UsageError("no package given: name NAME==VERSION pins or a pin file with -r")
    return list(dict.fromkeys(pins)), errors


def _line(result: ImportResult, check: dict[str, object] | None) -> str:
    env = result.env
    built = (
        "no environment"
        if env is None
        else f"env {env.digest[:8]} {'from cache' if env.reused else 'built'} in {env.seconds:.1f} s"
    )
    where = "kept" if result.reused else "imported"
    text = f"{where} {result.pin} -> {result.repo} (commit {str(result.base_commit)[:10]}, {built})"
    if check is not None:
        text += f"; sandbox tests: {check['summary']}"
    return text


def import_sdist_command(args: argparse.Namespace) -> int:
    """``arenagym swe import-sdist PIN... -o OUT``: the exit status (see the module doc)."""
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout}")
    if args.check and args.no_env:
        raise UsageError("--check runs the tests with the environment; drop --no-env")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"output {args.output} exists and is not a directory")
    if args.check:
        from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason

        reason = bubblewrap_unavailable_reason()
        if reason is not None:
            raise UsageError(f"--check needs the bubblewrap sandbox, which is not usable: {reason}")
    pins, malformed = _pins(args)
    console = Console(stderr=True, highlight=False)
    for message in malformed:
        console.print(f"error: {escape(message)}", soft_wrap=True)
    failed: list[str] = []
    for pin in pins:
        try:
            result = import_sdist(
                pin,
                args.output,
                build=not args.no_env,
                extra=tuple(args.with_requirements or ()),
                cache_dir=args.env_cache,
            )
        except (SdistImportError, OSError) as error:  # one failure never stops the others
            failed.append(str(pin))
            console.print(f"error: {escape(str(pin))}: {escape(str(error))}", soft_wrap=True)
            continue
        check = None
        if args.check and result.env is not None and result.repo is not None:
            check = run_suite(result.repo, result.env.path, timeout_s=args.timeout or 600)
            _record_check(result, check)
            if check["exit_code"] != 0:
                failed.append(str(pin))
        console.print(escape(_line(result, check)), soft_wrap=True)
    console.print(
        f"{len(pins) - len(failed)} of {len(pins)} package(s) imported into {args.output}"
        + (f"; {len(malformed)} malformed pin(s)" if malformed else "")
    )
    problems = [f"{len(failed)} package(s) failed: {', '.join(failed)}"] if failed else []
    if malformed:
        problems.insert(0, f"{len(malformed)} malformed pin(s): {'; '.join(malformed)}")
        raise UsageError("; ".join(problems))
    if failed:
        raise ImportFailedError(problems[0])
    return 0


def _record_check(result: ImportResult, check: dict[str, object]) -> None:
    """Add the sandbox run's outcome to the repository's provenance file."""
    if result.provenance is None:
        return
    row = json.loads(result.provenance.read_text())
    row["sandbox_check"] = {key: check[key] for key in ("exit_code", "summary", "seconds")}
    temporary = result.provenance.with_name(result.provenance.name + ".tmp")
    temporary.write_text(json.dumps(row, indent=2) + "\n")
    temporary.replace(result.provenance)

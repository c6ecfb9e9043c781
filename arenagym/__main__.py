"""``python -m arenagym ...``: the ``arenagym`` command, for when its script is not on PATH."""

from arenagym.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

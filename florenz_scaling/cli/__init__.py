"""The ``florenz-scaling`` command.

Each sub-command lives in its own module here with ``add_parser(subparsers)`` and ``run(args) -> int``.
Modules import heavy libraries (torch, scipy, matplotlib) inside ``run`` so the command starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from florenz_scaling.files import StorageError, storage_error
from florenz_scaling.spec import SpecError

# Sub-command name -> module under florenz_scaling.cli; listed in pipeline order.
COMMANDS = (
    "components",
    "pretrained",
    "plan",
    "launch",
    "status",
    "cancel",
    "train",
    "collect",
    "fit",
    "plot",
    "report",
    "run",
    "propose",
    "replay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="florenz-scaling",
        description="Plan, launch, collect, fit and plot scaling-law sweeps of Florenz VLMs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"florenz_scaling.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"florenz_scaling.cli.{name}":
                raise
            continue  # a stage not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpecError as e:
        print(f"error: invalid spec: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        e = storage_error(e, e.filename or "?")
        if not isinstance(e, StorageError):
            raise
        print(f"error: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``runbook`` command. Sandbox commands and AWS commands register themselves as subcommands."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

# Each module has register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = ("runbook.commands_sandbox", "runbook.commands_aws")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Run operations runbooks as Step Functions state machines, in the sandbox or on AWS.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def console() -> None:
    """The console script. Only here, never in main() (tests call it in-process): `runbook … | head` ends
    quietly, as other command-line tools do."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    console()

"""The ``portal`` command line: ``portal COMMAND ...`` (see ``portal --help``).

Each command's handler lives in the module of its area; ``parser`` wires them up.
"""

from __future__ import annotations

from collections.abc import Sequence

from portal.cli.common import USER_ROLES
from portal.cli.parser import build_parser
from portal.cli.reminders import start_worker_thread

__all__ = ["USER_ROLES", "build_parser", "main", "start_worker_thread"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))

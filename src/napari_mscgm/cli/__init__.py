"""The ``napari-mscgm`` command.

Each subcommand lives in a module of this package that defines
``register(subparsers)`` (and an ``ORDER`` number for ``--help``); the
registered function receives the parsed arguments and returns an exit code.

Exit codes: 0 success; 2 bad usage or bad input (one line on stderr, no
traceback, no output file left); 1 an unexpected failure; 130/143 when
interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
from collections.abc import Sequence

from ..errors import MSCGMError

__all__ = ["build_parser", "main"]

PROG = "napari-mscgm"


class _Parser(argparse.ArgumentParser):
    """Argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog=PROG,
        description=(
            "Restore fluorescence microscopy images (super-resolution + denoising) with MSCGM: "
            "a wavelet-domain Brownian-bridge diffusion plus GAN detail generators."
        ),
        epilog=f"Run '{PROG} COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, required=True
    )
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{__name__}.{info.name}"))
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(subparsers)
    return parser


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(143)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-mscgm`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        return int(args.func(args) or 0)
    except MSCGMError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
import threading
from collections.abc import Sequence

from ..errors import MSCGMError

__all__ = ["Terminated", "build_parser", "main"]

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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT.

    A BaseException, so that ``except Exception`` in library code does not swallow
    it and the ``finally`` clauses that remove temporary outputs still run.
    """


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (the contract: one line on stderr)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-mscgm`` command; returns the exit code.

    Expected errors (:class:`~napari_mscgm.errors.MSCGMError`) print one line and
    return 2, SIGINT returns 130 and SIGTERM 143, each after the command has removed
    its temporary files; anything else propagates with its traceback (exit code 1).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # Signal handlers can only be installed from the main thread (e.g. not in a worker).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except MSCGMError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return 143
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Command-line options that several commands share, written once."""

from __future__ import annotations

import argparse

__all__ = ["add_device_option", "add_sampling_options"]


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """``--steps``, ``--seed`` and ``--eta`` of the bridge's sampler."""
    parser.add_argument(
        "--steps", type=int, default=None, help="reverse diffusion steps (default: the model's)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed, same result (default 0)"
    )
    parser.add_argument(
        "--eta",
        type=float,
        default=None,
        help="sampling noise, 1 stochastic … 0 deterministic (default: the model's)",
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``."""
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")

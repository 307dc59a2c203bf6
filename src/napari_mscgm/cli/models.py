"""``napari-mscgm models``: list the bundled models."""

from __future__ import annotations

import argparse
import json

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the bundled models",
        description="List the bundled models with task, scale, pixel sizes and NA.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model_io.bundled import list_models, model_path
    from ..model_io.weights import read_model_config

    rows = []
    for name in list_models():
        config = read_model_config(model_path(name))
        physics = config.physics
        rows.append(
            {
                "name": name,
                "task": config.task,
                "scale": config.scale,
                "input_pixel_size_um": physics.input_pixel_size_um,
                "target_pixel_size_um": physics.target_pixel_size_um,
                "input_na": physics.input_na,
                "target_na": physics.target_na,
                "wavelength_um": physics.emission_wavelength_um,
                "default_steps": config.bbdp.default_steps,
                "description": config.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no bundled models are installed")
        return 0
    header = f"{'name':<14} {'task':<17} {'scale':>5} {'input px':>9} {'target px':>9} {'NA in→out':>11} {'steps':>5}"
    print(header)
    print("-" * len(header))
    for r in rows:
        na = f"{r['input_na'] or '?'}→{r['target_na'] or '?'}"
        print(
            f"{r['name']:<14} {r['task']:<17} {r['scale']:>5} "
            f"{_um(r['input_pixel_size_um']):>9} {_um(r['target_pixel_size_um']):>9} {na:>11} "
            f"{r['default_steps']:>5}"
        )
    return 0


def _um(value: float | None) -> str:
    return "?" if value is None else f"{value:g} µm"

"""``napari-mscgm models``: list the bundled and the user's models."""

from __future__ import annotations

import argparse
import json

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the bundled and the user's models",
        description=(
            "List the bundled models and the user's (the .safetensors files of the user "
            "model folder, printed below the table; NAPARI_MSCGM_MODELS overrides it) with "
            "task, scale, pixel sizes and NA. A user model's name is its file stem; files "
            "that cannot be used there are reported on stderr, one line each."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..model_io.catalog import catalog, user_models_dir
    from ..model_io.weights import read_model_config

    entries, problems = catalog()
    for problem in problems:
        print(f"napari-mscgm: warning: {problem}", file=sys.stderr)
    rows = []
    for name, entry in entries.items():
        config = read_model_config(entry.path)
        physics = config.physics
        rows.append(
            {
                "name": name,
                "source": entry.source,
                "path": str(entry.path),
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
        print("no models are installed")
    else:
        _table(rows)
    print(f"user models: {user_models_dir()}")
    return 0


def _table(rows: list[dict]) -> None:
    width = max(14, *(len(r["name"]) for r in rows))
    header = (
        f"{'name':<{width}} {'source':<7} {'task':<17} {'scale':>5} {'input px':>9} "
        f"{'target px':>9} {'NA in→out':>11} {'steps':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        na = f"{r['input_na'] or '?'}→{r['target_na'] or '?'}"
        print(
            f"{r['name']:<{width}} {r['source']:<7} {r['task']:<17} {r['scale']:>5} "
            f"{_um(r['input_pixel_size_um']):>9} {_um(r['target_pixel_size_um']):>9} {na:>11} "
            f"{r['default_steps']:>5}"
        )


def _um(value: float | None) -> str:
    return "?" if value is None else f"{value:g} µm"

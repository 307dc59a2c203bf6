"""``napari-mscgm restore``: restore image files with a model, writing OME-TIFF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore (super-resolve + denoise) image files",
        description=(
            "Restore one or more images with an MSCGM model. Inputs are TIFF/OME-TIFF or any "
            "format the installed bioio readers open. The result is float32 in input intensity "
            "units, with the physical pixel size divided by the model's scale and the run "
            "metadata embedded."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file(s)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output file for one input; output directory for several "
        "(results are named <stem>_mscgm.ome.tif)",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="bundled model name (see 'napari-mscgm models') or a .safetensors file "
        "(default: the first bundled model)",
    )
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
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="restorations to average; above 1 also writes <output>_std (the uncertainty map)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def _output_paths(inputs: list[Path], output: Path) -> list[Path]:
    from ..errors import InputError, OutputError

    if len(inputs) == 1 and not output.is_dir():
        return [output]
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: with several inputs, OUTPUT must be a directory")
    if not output.exists():
        if not output.parent.exists():
            raise OutputError(f"{output.parent}: output directory does not exist")
        output.mkdir()
    from ..io import _stem

    names = [output / f"{_stem(p)}_mscgm.ome.tif" for p in inputs]
    if len(set(names)) != len(names):
        raise InputError("several inputs have the same file name stem; restore them separately")
    return names


def _std_path(path: Path) -> Path:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + "_std" + suffix)
    return path.with_name(path.stem + "_std" + path.suffix)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import InputError, OutputError
    from ..io import read_image, write_ome_tiff
    from ..model import list_models, load_model
    from ..pipeline import MeanStd, restore

    inputs = [Path(p) for p in args.inputs]
    for path in inputs:
        if not path.exists():
            raise InputError(f"{path}: no such file")
    outputs = _output_paths(inputs, Path(args.output))
    for src, dst in zip(inputs, outputs, strict=True):
        if dst.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(f"{dst}: output must end in .ome.tif or .tif")
        if dst.resolve() in {p.resolve() for p in inputs}:
            raise InputError(f"{dst}: output would overwrite an input; choose another name")
        for target in (dst, _std_path(dst)) if args.samples > 1 else (dst,):
            if target.exists() and not args.overwrite:
                raise OutputError(f"{target}: already exists (use --overwrite to replace it)")
        if not dst.parent.exists():
            raise OutputError(f"{dst.parent}: output directory does not exist")
        del src

    name = args.model
    if name is None:
        bundled = list_models()
        if not bundled:
            raise InputError("no bundled models are installed; pass --model PATH.safetensors")
        name = bundled[0]
    model = load_model(name, device=args.device)

    for src, dst in zip(inputs, outputs, strict=True):
        image = read_image(src)
        z_um, y_um, x_um = image.pixel_size_um
        expected = model.config.physics.input_pixel_size_um
        if expected and x_um and abs(x_um - expected) / expected > 0.1:
            print(
                f"napari-mscgm: warning: {src.name} has {x_um:g} µm pixels but model "
                f"'{model.config.name}' expects {expected:g} µm; results may be unreliable",
                file=sys.stderr,
            )
        with tqdm(total=0, desc=src.name, unit="plane", disable=None, leave=False) as bar:

            def progress(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result, metadata = restore(
                image.data,
                model,
                steps=args.steps,
                seed=args.seed,
                eta=args.eta,
                samples=args.samples,
                axes="TCZYX",
                progress=progress,
                return_metadata=True,
            )
        metadata["input"] = str(src)
        metadata["input_name"] = image.name
        scale = model.scale
        sizes = (
            z_um,
            None if y_um is None else y_um / scale,
            None if x_um is None else x_um / scale,
        )
        if isinstance(result, MeanStd):
            write_ome_tiff(
                _std_path(dst),
                result.std,
                pixel_size_um=sizes,
                metadata={**metadata, "content": "std"},
                channel_names=image.channel_names,
            )
            result = result.mean
        write_ome_tiff(
            dst, result, pixel_size_um=sizes, metadata=metadata, channel_names=image.channel_names
        )
        print(f"{src} -> {dst}")
    return 0

"""``napari-mscgm restore``: restore image files with a model, streaming to OME-TIFF or OME-Zarr.

Inputs are opened lazily and the result is written chunk by chunk, so stacks
larger than memory work; ``--scheduler`` runs the same tiles on a
dask.distributed cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 10
#: How long to wait for a dask scheduler given by --scheduler.
CONNECT_TIMEOUT = "20s"


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
        help="output file for one input (.ome.tif/.tif: tiled OME-TIFF; .zarr: OME-Zarr); "
        "output directory for several (results are named <stem>_mscgm.ome.tif)",
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
    parser.add_argument(
        "--tile",
        type=int,
        default=256,
        metavar="N",
        help="tile edge in input pixels (default 256; 0 restores whole planes)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=32,
        metavar="N",
        help="overlap of neighbouring tiles in input pixels, blended without seams (default 32)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        metavar="N",
        help="tiles per forward pass (default 4; halved automatically on GPU out of memory)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16 runs the networks under autocast on CUDA: faster, less GPU memory "
        "(ignored on other devices; default float32)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a dask.distributed cluster (e.g. tcp://host:8786); workers write the "
        "output directly, so it must be on a filesystem they share",
    )
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


def _connect(address: str):
    from ..errors import InputError

    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler needs the 'distributed' package") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to the dask scheduler at {address} ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import InputError, OutputError
    from ..io import read_image
    from ..model import list_models, load_model
    from ..pipeline import _restore, std_path

    inputs = [Path(p) for p in args.inputs]
    for path in inputs:
        if not path.exists():
            raise InputError(f"{path}: no such file")
    if args.tile < 0 or 0 < args.tile < 16:
        raise InputError(f"--tile must be 0 (whole planes) or at least 16, got {args.tile}")
    if args.overlap < 0:
        raise InputError(f"--overlap must be >= 0, got {args.overlap}")
    if args.tile and 2 * args.overlap > args.tile:
        raise InputError(f"--overlap {args.overlap} must be at most half of --tile {args.tile}")
    outputs = _output_paths(inputs, Path(args.output))
    for dst in outputs:
        if not dst.name.lower().endswith((".tif", ".tiff", ".zarr")):
            raise InputError(f"{dst}: output must end in .ome.tif, .tif or .zarr")
        if dst.resolve() in {p.resolve() for p in inputs}:
            raise InputError(f"{dst}: output would overwrite an input; choose another name")
        for target in (dst, std_path(dst)) if args.samples > 1 else (dst,):
            if target.exists() and not args.overwrite:
                raise OutputError(f"{target}: already exists (use --overwrite to replace it)")
        if not dst.parent.exists():
            raise OutputError(f"{dst.parent}: output directory does not exist")

    name = args.model
    if name is None:
        bundled = list_models()
        if not bundled:
            raise InputError("no bundled models are installed; pass --model PATH.safetensors")
        name = bundled[0]
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        # With a cluster the workers pick their device; the client keeps a CPU copy to ship.
        model = load_model(name, device="cpu" if client is not None else args.device)
        for src, dst in zip(inputs, outputs, strict=True):
            image = read_image(src)
            x_um = image.pixel_size_um[2]
            expected = model.config.physics.input_pixel_size_um
            if expected and x_um and abs(x_um - expected) / expected > 0.1:
                print(
                    f"napari-mscgm: warning: {src.name} has {x_um:g} µm pixels but model "
                    f"'{model.config.name}' expects {expected:g} µm; results may be unreliable",
                    file=sys.stderr,
                )
            with tqdm(total=0, desc=src.name, unit="batch", disable=None, leave=False) as bar:

                def progress(done: int, total: int, bar: tqdm = bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                _restore(
                    image.data,
                    model,
                    steps=args.steps,
                    seed=args.seed,
                    eta=args.eta,
                    samples=args.samples,
                    axes="TCZYX",
                    tile_size=args.tile or None,
                    overlap=args.overlap,
                    device=args.device if client is not None else None,
                    batch_size=args.batch_size,
                    precision=args.precision,
                    progress=progress,
                    return_metadata=False,
                    out=dst,
                    client=client,
                    pixel_size_um=image.pixel_size_um,
                    extra_metadata={"input": str(src), "input_name": image.name},
                    channel_names=image.channel_names,
                )
            print(f"{src} -> {dst}")
    finally:
        if client is not None:
            client.close()
    return 0

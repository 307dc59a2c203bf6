"""``napari-mscgm export-bmz``: a model as a bioimage.io package."""

from __future__ import annotations

import argparse

ORDER = 25


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-bmz",
        help="export a model as a bioimage.io package (.zip)",
        description=(
            "Write a model as a bioimage.io model package (spec 0.5): pytorch_state_dict "
            "weights that run napari-mscgm's restoration (percentile normalisation, the "
            "model's default steps, seed 0), axis scales in µm from the model's physics, a "
            "README with its card, a cover, test tensors and citations; napari-mscgm's own "
            "safetensors weights ride along, so load_model opens the package too. Needs "
            "napari-mscgm[bioimageio]."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="bundled or user model name, or a path")
    parser.add_argument("-o", "--output", required=True, help="the package to write (.zip)")
    parser.add_argument("--image", default=None,
                        help="a 2D image for the test tensors (default: the cell sample)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=None, help="bridge steps (model default)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..model_io.bioimageio import export_bioimageio

    image = None
    if args.image is not None:
        from ..io import read_image

        data = read_image(args.image).data
        if int(np.prod(data.shape[:-2])) != 1:
            from ..errors import InputError

            raise InputError(f"{args.image}: the test image must be one 2D plane")
        image = np.asarray(data).reshape(data.shape[-2:])
    path = export_bioimageio(args.model, args.output, image=image, steps=args.steps,
                             overwrite=args.overwrite)  # fmt: skip
    print(f"wrote {path}")
    return 0

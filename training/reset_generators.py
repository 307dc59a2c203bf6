"""Keep a model's trained bridge U-Net and give it fresh (untrained) detail generators.

    python training/reset_generators.py OLD.safetensors NEW.safetensors
    python training/reset_generators.py OLD.safetensors NEW.safetensors \
        --scale 2 --base-channels 48 --channel-mults 1 2 2 --res-blocks 2

Used when the generator architecture changes but the bridge stays valid: the new
generators are then trained with ``napari-mscgm train --init NEW.safetensors`` and
a recipe whose ``bridge.iterations`` is 0 (training/*-generators*.json).

Without ``--scale`` every generator is replaced; with it, only the generators of
those scales (1 is the finest), and the others keep their trained weights. The
architecture options apply to the replaced generators; unset ones keep the old
value.
"""

import argparse

from napari_mscgm import MSCGM, load_model, save_model
from napari_mscgm.core.networks import count_parameters

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("output")
parser.add_argument("--scale", type=int, nargs="+", help="scales to replace (default: all)")
parser.add_argument("--base-channels", type=int)
parser.add_argument("--channel-mults", type=int, nargs="+")
parser.add_argument("--res-blocks", type=int)
args = parser.parse_args()

trained = load_model(args.source, device="cpu")
networks = trained.config.networks
scales = args.scale or list(range(1, trained.levels + 1))
if not all(1 <= k <= trained.levels for k in scales):
    parser.error(f"--scale must be between 1 and {trained.levels}")
changes = {
    key: value
    for key, value in {
        "base_channels": args.base_channels,
        "channel_mults": tuple(args.channel_mults) if args.channel_mults else None,
        "num_res_blocks": args.res_blocks,
    }.items()
    if value is not None
}
generators = tuple(
    g.model_copy(update=changes) if k in scales else g
    for k, g in enumerate(networks.generators, start=1)
)
config = trained.config.model_validate(
    {
        **trained.config.model_dump(),
        "networks": {**networks.model_dump(), "generators": [g.model_dump() for g in generators]},
    }
)
fresh = MSCGM(config)
fresh.unet.load_state_dict(trained.unet.state_dict())
for k, (old, new) in enumerate(zip(trained.generators, fresh.generators, strict=True), start=1):
    if k not in scales:
        new.load_state_dict(old.state_dict())
print(
    "generator parameters by scale:",
    {k: count_parameters(g) for k, g in enumerate(fresh.generators, start=1)},
)
print(save_model(fresh, args.output))

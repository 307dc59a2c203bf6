"""Keep a model's trained bridge U-Net and give it fresh (untrained) detail generators.

    python training/reset_generators.py OLD.safetensors NEW.safetensors

Used when the generator architecture changes but the bridge stays valid: the new
generators are then trained alone with ``napari-mscgm train --init NEW.safetensors``
and a recipe whose ``bridge.iterations`` is 0 (training/*-generators.json).
"""

import argparse

from napari_mscgm import load_model
from napari_mscgm.model import MSCGM, save_model

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("output")
args = parser.parse_args()

trained = load_model(args.source, device="cpu")
fresh = MSCGM(trained.config)
fresh.unet.load_state_dict(trained.unet.state_dict())
print(save_model(fresh, args.output))

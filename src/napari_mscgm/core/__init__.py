"""The method's maths: wavelets, coordinate-keyed noise, the Brownian bridge, the
networks, MSCGM itself (decode and losses), the CARE-like baseline, the percentile
normaliser and widefield optics.

Nothing here reads files, knows about tiles or imports a GUI. Import the modules
themselves (``from napari_mscgm.core.mscgm import MSCGM``): this package imports
nothing, so that numpy-only parts (optics, normalize) never pull in torch.
"""

"""Evaluation against ground truth: CARE-style metrics, the baselines, the comparison run.

- :mod:`.metrics`: PSNR / SSIM after the CARE normalisation and affine fit.
- :mod:`.baselines`: nearest, bicubic and Richardson–Lucy, what a user would pick instead.
- :mod:`.run`: every method on every pair, and the result files.
"""

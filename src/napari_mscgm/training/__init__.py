"""Training MSCGM (and the CARE-like baseline) on paired data.

- :mod:`.datasets`: pairs in memory, served as augmented crops.
- :mod:`.checkpoint`: resumable safetensors checkpoints (never a pickle).
- :mod:`.loop`: the loop every algorithm shares: stages, learning-rate schedule,
  EMA, validation, logs, checkpoints, and :func:`~.loop.train`.
- :mod:`.trainers`: one trainer per algorithm (:mod:`.trainers.mscgm`, :mod:`.trainers.care`).
"""

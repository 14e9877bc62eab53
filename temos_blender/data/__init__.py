"""Training data pipeline: mocap sources → SMPL-22 motions, descriptions, splits and TEMOS features (numpy + torch).

Modules, in pipeline order: :mod:`.bvh` (exact BVH reader), :mod:`.bandai`, :mod:`.cmu`, :mod:`.deepmimic` (one per
source: joint maps and reference poses), :mod:`.smpl_transfer` (source skeleton → SMPL through
``retarget.transfer``), :mod:`.processing` (checks, grounding, resampling, canonicalisation), :mod:`.descriptions`
(label → English), :mod:`.build` (the cached data set; ``python -m temos_blender.data``), :mod:`.dataset` (torch
access), :mod:`.report` (tables and plots for ``docs/DATA.md``).
"""

"""The seam between the rooms: one generated motion, as plain numpy arrays.

``core`` produces takes; ``retarget`` and ``blender`` read them without importing torch.
Conventions are those of :mod:`temos_blender.skeleton`: SMPL space, Y-up, facing +Z, metres, wxyz quaternions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .skeleton import NUM_JOINTS, SMPL_JOINTS


@dataclass(frozen=True)
class Take:
    """One sampled motion for one prompt."""

    prompt: str
    """The text the motion was generated from."""
    seed: int
    """Seed of this take's latent sample; the same prompt, seed, diversity and model reproduce it exactly."""
    fps: float
    """Frame rate of the arrays below (the model's, not the scene's)."""
    rotations: np.ndarray
    """(T, 22, 4) float32 local joint rotations, wxyz, each relative to its parent (root: to the world)."""
    root_translation: np.ndarray
    """(T, 3) float32 pelvis position in metres, SMPL space; starts at x = z = 0."""
    diversity: float = 1.0
    """Sampling factor used (0 = the mean motion)."""
    model_id: str = ""
    """Identifier of the model that made it."""
    joint_names: tuple[str, ...] = field(default=SMPL_JOINTS)
    """Names of the 22 joints, in array order."""

    def __post_init__(self):
        t = self.rotations.shape[0]
        if self.rotations.shape != (t, NUM_JOINTS, 4):
            raise ValueError(f"rotations must be (T, {NUM_JOINTS}, 4); got {self.rotations.shape}")
        if self.root_translation.shape != (t, 3):
            raise ValueError(f"root_translation must be ({t}, 3); got {self.root_translation.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

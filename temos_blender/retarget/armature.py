"""A rig described without bpy: bones, rest pose, object transform, and Blender's pose-space forward kinematics.

Blender's conventions, reproduced exactly:

- Each bone has a rest matrix ``M_b`` (4×4, *armature* space, Blender's ``bone.matrix_local``): its rotation is the
  bone's rest orientation, its translation the head. The bone's **Y axis points head → tail**; the roll turns the
  X and Z axes about Y (:func:`bone_rest_rotation` is Blender's ``vec_roll_to_mat3``).
- A pose bone's *basis* is ``T(location) · R(rotation_quaternion)`` (no scale here): it is relative to the rest
  pose, in the bone's own rest frame. That is what ``pose_bone.rotation_quaternion`` / ``.location`` mean.
- Pose matrices (``pose_bone.matrix``, armature space) compose as::

      local rest   L_b = M_p⁻¹ · M_b                  (M_b for a bone without parent)
      pose         P_b = P_p · L_b · basis_b          (P_p = identity without parent)

  with three refinements Blender also makes: a bone that does not inherit rotation (``use_inherit_rotation`` off)
  takes its orientation from the rest pose, ``M_b``'s rotation, and only its head from the parent; a bone without
  ``use_local_location`` moves along its parent's posed axes instead of its own rest axes; a connected bone
  (``use_connect``) ignores its location.
- World matrices are ``matrix_world · P_b``; ``matrix_world`` may carry rotation and scale (an FBX import often has
  a 90° rotation and 0.01 scale), so keep positions in armature space and convert only at the end.

Constraints are not evaluated, with one exception: a bone that copies another bone's transforms (a Copy Transforms
constraint at full influence, world space to world space, as Rigify's ORG bones have) takes that bone's pose
matrix (:attr:`Armature.copy_transforms`). Every other constraint is treated as neutral, which holds for the rig
settings the bone-map presets choose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import RigError
from ..rotations import quat_to_matrix

__all__ = ["Armature", "RigError", "armature_from_head_tail_roll", "bone_rest_rotation", "forward_kinematics"]


def bone_rest_rotation(head: np.ndarray, tail: np.ndarray, roll_rad: np.ndarray | float) -> np.ndarray:
    """Blender's rest orientation of a bone from head, tail and roll: (..., 3), (..., 3), (...) → (..., 3, 3).

    Columns are the bone's X, Y, Z axes in armature space. Y = normalize(tail − head); with roll 0, X and Z come
    from the smallest rotation taking armature +Y onto the bone (Blender's ``vec_roll_to_mat3_normalized``, including
    its special case for bones pointing along −Y); the roll then turns them about Y.
    """
    d = np.asarray(tail, dtype=np.float64) - np.asarray(head, dtype=np.float64)
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    if np.any(length < 1e-12):
        raise RigError("A bone has zero length (head == tail); Blender deletes such bones, give it a tail")
    n = d / length
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    theta = 1.0 + y
    theta_alt = x * x + z * z
    theta_safe, theta_critical = 1.0e-5, 1.0e-9
    regular = (theta > theta_safe) | (theta_alt > theta_critical)
    theta = np.where(theta <= theta_safe, theta_alt * 0.5 + theta_alt * theta_alt * 0.125, theta)
    theta = np.where(regular, theta, 1.0)
    # Columns of the minimal rotation +Y → n (Blender stores matrices column-major: bMatrix[col][row]).
    col_x = np.stack([1 - x * x / theta, -x, -x * z / theta], axis=-1)
    col_y = n
    col_z = np.stack([-x * z / theta, -z, 1 - z * z / theta], axis=-1)
    b = np.stack([col_x, col_y, col_z], axis=-1)
    # Pointing exactly along −Y: Blender uses a 180° turn about Z.
    flipped = np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    b = np.where(regular[..., None, None], b, flipped)
    # Roll: rotate about the bone axis n, applied after (r_mat = R(n, roll) · bMatrix).
    roll = np.asarray(roll_rad, dtype=np.float64)
    c, s = np.cos(roll)[..., None, None], np.sin(roll)[..., None, None]
    k = np.zeros(n.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 0] = -z, y, z
    k[..., 1, 2], k[..., 2, 0], k[..., 2, 1] = -x, -y, x
    r = np.eye(3) + s * k + (1 - c) * (k @ k)
    return r @ b


def _rigid(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    out = np.zeros(rot.shape[:-2] + (4, 4))
    out[..., :3, :3] = rot
    out[..., :3, 3] = trans
    out[..., 3, 3] = 1.0
    return out


def _rigid_inverse(m: np.ndarray) -> np.ndarray:
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    return _rigid(rt, -np.einsum("...ij,...j->...i", rt, m[..., :3, 3]))


@dataclass(frozen=True)
class Armature:
    """One armature object's rest data, as plain arrays (what :mod:`temos_blender.blender.rig_io` reads)."""

    name: str
    """The armature object's name (for messages)."""
    bone_names: tuple[str, ...]
    """Bone names; every per-bone array below is in this order."""
    parents: tuple[int, ...]
    """Index of each bone's parent, −1 for none. Any order; :attr:`evaluation_order` sorts it."""
    heads: np.ndarray
    """(B, 3) rest head positions, armature space, armature units (``bone.head_local``)."""
    tails: np.ndarray
    """(B, 3) rest tail positions, armature space (``bone.tail_local``)."""
    rest_rotations: np.ndarray
    """(B, 3, 3) rest orientations, armature space (``bone.matrix_local`` rotation): Y points head → tail."""
    world_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))
    """(4, 4) the object's ``matrix_world``, rotation and scale included."""
    inherit_rotation: tuple[bool, ...] | None = None
    """``bone.use_inherit_rotation`` per bone (None: all True)."""
    local_location: tuple[bool, ...] | None = None
    """``bone.use_local_location`` per bone (None: all True)."""
    connected: tuple[bool, ...] | None = None
    """``bone.use_connect`` per bone (None: all False); a connected bone ignores its location."""
    copy_transforms: tuple[int, ...] | None = None
    """Per bone, the index of a bone whose pose it copies (full Copy Transforms, world → world), or −1."""

    def __post_init__(self):
        n = len(self.bone_names)
        set_ = object.__setattr__
        set_(self, "bone_names", tuple(self.bone_names))
        set_(self, "parents", tuple(int(p) for p in self.parents))
        for key, shape in (
            ("heads", (n, 3)),
            ("tails", (n, 3)),
            ("rest_rotations", (n, 3, 3)),
            ("world_matrix", (4, 4)),
        ):
            value = np.array(getattr(self, key), dtype=np.float64)
            if value.shape != shape:
                raise RigError(f"Armature '{self.name}': {key} must have shape {shape}; got {value.shape}")
            value.flags.writeable = False
            set_(self, key, value)
        if len(self.parents) != n:
            raise RigError(f"Armature '{self.name}': {n} bone names but {len(self.parents)} parents")
        if len(set(self.bone_names)) != n:
            raise RigError(f"Armature '{self.name}': bone names must be unique")
        for key, default in (("inherit_rotation", True), ("local_location", True), ("connected", False)):
            value = getattr(self, key)
            set_(self, key, tuple(bool(v) for v in value) if value is not None else (default,) * n)
            if len(getattr(self, key)) != n:
                raise RigError(f"Armature '{self.name}': {key} needs one value per bone")
        copies = self.copy_transforms
        set_(self, "copy_transforms", tuple(int(c) for c in copies) if copies is not None else (-1,) * n)
        for i, p in enumerate(self.parents):
            if not -1 <= p < n or p == i:
                raise RigError(f"Armature '{self.name}': bone '{self.bone_names[i]}' has an invalid parent index {p}")
        self.evaluation_order  # noqa: B018  (fails now on a cycle, not later)

    # ------------------------------------------------------------------------------------------ lookups
    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    @cached_property
    def index(self) -> dict[str, int]:
        """Bone name → index."""
        return {name: i for i, name in enumerate(self.bone_names)}

    def bone_index(self, name: str) -> int:
        """Index of bone ``name``; a clear error if the armature lacks it."""
        try:
            return self.index[name]
        except KeyError:
            raise RigError(
                f"Bone '{name}' is not on armature '{self.name}'.", "Choose a bone-map preset or map it by hand."
            ) from None

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """Indices of each bone's children."""
        out: list[list[int]] = [[] for _ in self.bone_names]
        for i, p in enumerate(self.parents):
            if p >= 0:
                out[p].append(i)
        return tuple(tuple(c) for c in out)

    def ancestors(self, bone: int) -> list[int]:
        """Parent, grandparent, … of ``bone`` (nearest first)."""
        out, p = [], self.parents[bone]
        while p >= 0:
            out.append(p)
            p = self.parents[p]
        return out

    def is_ancestor(self, ancestor: int, bone: int) -> bool:
        return ancestor in self.ancestors(bone)

    @cached_property
    def evaluation_order(self) -> tuple[int, ...]:
        """Bone indices such that every bone comes after its parent and after the bone it copies."""
        deps = [[d for d in (self.parents[i], self.copy_transforms[i]) if d >= 0] for i in range(self.num_bones)]
        dependents: list[list[int]] = [[] for _ in self.bone_names]
        for i, ds in enumerate(deps):
            for d in ds:
                dependents[d].append(i)
        waiting = [len(ds) for ds in deps]
        ready = [i for i in range(self.num_bones) if waiting[i] == 0]
        order = []
        while ready:
            i = ready.pop()
            order.append(i)
            for j in dependents[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)
        if len(order) != self.num_bones:
            stuck = [self.bone_names[i] for i in range(self.num_bones) if waiting[i] > 0][:5]
            raise RigError(f"Armature '{self.name}': parent/copy-transforms cycle involving {stuck}")
        return tuple(order)

    def dependencies(self, bones: Iterable[int]) -> list[int]:
        """``bones`` plus everything their poses depend on (parents, copied bones, recursively), in evaluation order."""
        need: set[int] = set()
        stack = list(bones)
        while stack:
            b = stack.pop()
            if b in need:
                continue
            need.add(b)
            stack += [d for d in (self.parents[b], self.copy_transforms[b]) if d >= 0]
        return [b for b in self.evaluation_order if b in need]

    # ------------------------------------------------------------------------------------------ rest pose
    @cached_property
    def rest_matrices(self) -> np.ndarray:
        """(B, 4, 4) rest matrices ``M_b`` in armature space (``bone.matrix_local``)."""
        return _rigid(self.rest_rotations, self.heads)

    @cached_property
    def local_rest_matrices(self) -> np.ndarray:
        """(B, 4, 4) each bone's rest matrix relative to its parent's, ``M_p⁻¹ M_b`` (``M_b`` without parent)."""
        m = self.rest_matrices
        out = m.copy()
        for i, p in enumerate(self.parents):
            if p >= 0:
                out[i] = _rigid_inverse(m[p]) @ m[i]
        return out

    @property
    def world_rotation(self) -> np.ndarray:
        """(3, 3) the rotation part of ``world_matrix`` (scale divided out, assuming no shear)."""
        m = self.world_matrix[:3, :3]
        u, _, vt = np.linalg.svd(m)
        r = u @ vt
        if np.linalg.det(r) < 0:
            raise RigError(f"Armature '{self.name}' is mirrored by a negative object scale.", "Apply the scale first.")
        return r

    @property
    def world_scale(self) -> float:
        """Mean scale of the object's matrix (armature units → world units)."""
        return float(np.cbrt(abs(np.linalg.det(self.world_matrix[:3, :3]))))


def armature_from_head_tail_roll(
    name: str,
    bone_names: Sequence[str],
    parents: Sequence[str | None],
    heads: np.ndarray,
    tails: np.ndarray,
    rolls_rad: np.ndarray | Sequence[float] | None = None,
    world_matrix: np.ndarray | None = None,
    connected: Sequence[bool] | None = None,
) -> Armature:
    """Build an :class:`Armature` the way one builds edit bones: names, parent names, heads, tails, rolls."""
    index = {n: i for i, n in enumerate(bone_names)}
    missing = [p for p in parents if p is not None and p not in index]
    if missing:
        raise RigError(f"Armature '{name}': parents {missing} are not among its bones")
    heads = np.asarray(heads, dtype=np.float64)
    tails = np.asarray(tails, dtype=np.float64)
    rolls = np.zeros(len(bone_names)) if rolls_rad is None else np.asarray(rolls_rad, dtype=np.float64)
    return Armature(
        name=name,
        bone_names=tuple(bone_names),
        parents=tuple(index[p] if p is not None else -1 for p in parents),
        heads=heads,
        tails=tails,
        rest_rotations=bone_rest_rotation(heads, tails, rolls),
        world_matrix=np.eye(4) if world_matrix is None else world_matrix,
        connected=None if connected is None else tuple(connected),
    )


def forward_kinematics(
    armature: Armature,
    rotations: np.ndarray | None = None,
    locations: np.ndarray | None = None,
    bones: Iterable[int] | None = None,
    rotation_matrices: np.ndarray | None = None,
) -> np.ndarray:
    """Pose matrices (``pose_bone.matrix``, armature space) from per-bone basis rotations and locations.

    rotations: (..., B, 4) wxyz ``rotation_quaternion`` per bone (None: identity), or rotation_matrices
    (..., B, 3, 3) instead. locations: (..., B, 3) ``location`` per bone (None: zero).
    bones: compute only these bones and what they depend on (others come back as NaN); None computes all.
    Returns (..., B, 4, 4).
    """
    if rotation_matrices is None and rotations is not None:
        rotation_matrices = quat_to_matrix(np.asarray(rotations, dtype=np.float64))
    lead: tuple[int, ...] = ()
    for arr, tail_shape in ((rotation_matrices, (3, 3)), (locations, (3,))):
        if arr is not None:
            if arr.shape[-1 - len(tail_shape) :] != (armature.num_bones, *tail_shape):
                raise ValueError(
                    f"expected (..., {armature.num_bones}, {', '.join(map(str, tail_shape))}); got {arr.shape}"
                )
            lead = arr.shape[: -1 - len(tail_shape)]
    order = armature.evaluation_order if bones is None else armature.dependencies(bones)
    local_rest = armature.local_rest_matrices
    rest = armature.rest_matrices
    out = np.full(lead + (armature.num_bones, 4, 4), np.nan)
    identity = np.broadcast_to(np.eye(4), lead + (4, 4))
    for b in order:
        target = armature.copy_transforms[b]
        if target >= 0:
            out[..., b, :, :] = out[..., target, :, :]
            continue
        p = armature.parents[b]
        parent_pose = out[..., p, :, :] if p >= 0 else identity
        base = parent_pose @ local_rest[b]  # (..., 4, 4)
        rot_base = (
            base[..., :3, :3]
            if armature.inherit_rotation[b]
            else np.broadcast_to(rest[b, :3, :3], base[..., :3, :3].shape)
        )
        if armature.local_location[b]:
            loc_axes = base[..., :3, :3]
        else:
            loc_axes = parent_pose[..., :3, :3]
        rot = rot_base if rotation_matrices is None else rot_base @ rotation_matrices[..., b, :, :]
        head = base[..., :3, 3]
        if locations is not None and not armature.connected[b]:
            head = head + np.einsum("...ij,...j->...i", loc_axes, locations[..., b, :])
        out[..., b, :3, :3] = rot
        out[..., b, :3, 3] = head
        out[..., b, 3, :] = (0.0, 0.0, 0.0, 1.0)
    return out


def location_axes(armature: Armature, bone: int, parent_pose: np.ndarray) -> np.ndarray:
    """(..., 3, 3) the axes along which ``pose_bone.location`` of ``bone`` moves it, given its parent's pose matrix
    (..., 4, 4) (identity for a bone without parent). ``head += axes @ location``."""
    if armature.local_location[bone]:
        return (parent_pose @ armature.local_rest_matrices[bone])[..., :3, :3]
    return parent_pose[..., :3, :3]


def world_matrices(armature: Armature, pose_matrices: np.ndarray) -> np.ndarray:
    """(..., B, 4, 4) armature-space pose matrices → world (``matrix_world @ pose_bone.matrix``)."""
    return armature.world_matrix @ pose_matrices


def to_world_positions(armature: Armature, p: np.ndarray) -> np.ndarray:
    """(..., 3) armature-space points → world space."""
    return np.asarray(p) @ armature.world_matrix[:3, :3].T + armature.world_matrix[:3, 3]

"""Armature objects ↔ the bpy-free :class:`~temos_blender.retarget.armature.Armature` (reading), and one frame of a
:class:`~temos_blender.retarget.retarget.RetargetResult` onto pose bones (for previews and tests; takes are baked
by :mod:`.bake`). Thin: every computation lives in :mod:`temos_blender.retarget`.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..retarget.armature import Armature, RigError


def _copied_bone(obj: bpy.types.Object, pose_bone: bpy.types.PoseBone, index: dict[str, int]) -> int:
    """Index of the bone whose pose ``pose_bone`` copies (the last active full-influence world-space Copy Transforms
    constraint targeting a bone of the same armature), or −1."""
    copied = -1
    for c in pose_bone.constraints:
        if c.mute or c.influence < 0.999:
            continue
        if c.type != "COPY_TRANSFORMS":
            continue
        if c.target is obj and c.subtarget in index and c.owner_space == "WORLD" and c.target_space == "WORLD":
            if c.mix_mode == "REPLACE" and c.head_tail == 0.0:
                copied = index[c.subtarget]
    return copied


def armature_from_object(obj: bpy.types.Object) -> Armature:
    """Read the rest pose of armature object ``obj`` (bones, parents, rest matrices, bone flags, object matrix)."""
    if obj is None or obj.type != "ARMATURE":
        kind = "nothing" if obj is None else f"a {obj.type.lower()} object"
        raise RigError(f"Select an armature to put takes on; got {kind}.")
    bones = obj.data.bones
    if len(bones) == 0:
        raise RigError(f"Armature '{obj.name}' has no bones.")
    names = [b.name for b in bones]
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    heads = np.empty(n * 3)
    tails = np.empty(n * 3)
    matrices = np.empty(n * 16)
    bones.foreach_get("head_local", heads)
    bones.foreach_get("tail_local", tails)
    bones.foreach_get("matrix_local", matrices)
    # foreach_get flattens each Matrix column by column.
    rest = matrices.reshape(n, 4, 4).swapaxes(-1, -2)[:, :3, :3]
    return Armature(
        name=obj.name,
        bone_names=tuple(names),
        parents=tuple(index[b.parent.name] if b.parent else -1 for b in bones),
        heads=heads.reshape(n, 3),
        tails=tails.reshape(n, 3),
        rest_rotations=rest,
        world_matrix=np.array(obj.matrix_world, dtype=np.float64),
        inherit_rotation=tuple(b.use_inherit_rotation for b in bones),
        local_location=tuple(b.use_local_location for b in bones),
        connected=tuple(b.use_connect for b in bones),
        copy_transforms=tuple(_copied_bone(obj, obj.pose.bones[b.name], index) for b in bones),
    )


def current_root_location(obj: bpy.types.Object, bone_name: str) -> tuple[float, float, float]:
    """The pose bone's current ``location`` (for ``RetargetOptions.current_root_location``)."""
    return tuple(obj.pose.bones[bone_name].location)


def apply_frame(obj: bpy.types.Object, result, frame: int) -> None:
    """Set the pose bones of ``obj`` to frame ``frame`` of a ``RetargetResult`` (quaternion mode), with its custom
    properties. Call ``view_layer.update()`` before reading evaluated matrices."""
    bones = obj.pose.bones
    for prop in result.custom_props:
        if prop.bone in bones:
            bones[prop.bone][prop.name] = float(prop.value)
    for name, q in result.rotations.items():
        bone = bones[name]
        bone.rotation_mode = "QUATERNION"
        bone.rotation_quaternion = [float(x) for x in q[frame]]
    for name, p in result.locations.items():
        bones[name].location = [float(x) for x in p[frame]]

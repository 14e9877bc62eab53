"""One file per take and format, through Blender's own exporters: BVH, FBX and glTF binary (GLB).

Every export plays exactly one take: for its duration the take's action is the armature's active action, every NLA
track is muted and the scene's frame range is the take's. Afterwards the armature's animation state, the frame
range, the current frame, the selection and the active object are put back as they were.

FBX and GLB carry the armature and the meshes it deforms (children and objects with an Armature modifier on it);
BVH carries the skeleton only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import bpy

from . import compat

FORMATS: tuple[str, ...] = ("bvh", "fbx", "glb")
"""Export formats, by file extension."""


def action_frame_range(action: bpy.types.Action) -> tuple[int, int]:
    """First and last keyed frame of ``action``, as whole frames (takes are keyed once per frame)."""
    start, end = action.frame_range
    return int(round(start)), int(round(end))


def deformed_meshes(obj: bpy.types.Object) -> list[bpy.types.Object]:
    """Mesh objects that ``obj`` (an armature) deforms or carries: children and Armature-modifier users."""
    out = []
    for other in bpy.data.objects:
        if other.type != "MESH" or other.name not in bpy.context.view_layer.objects:
            continue
        if other.parent == obj or any(m.type == "ARMATURE" and m.object == obj for m in other.modifiers):
            out.append(other)
    return out


@contextlib.contextmanager
def solo_take(obj: bpy.types.Object, action: bpy.types.Action):
    """Make ``action`` the only animation ``obj`` plays, over the action's frame range; restore everything after."""
    scene = bpy.context.scene
    view_layer = bpy.context.view_layer
    had_animation_data = obj.animation_data is not None
    ad = obj.animation_data or obj.animation_data_create()
    saved_action, saved_slot = ad.action, compat.active_slot(obj)
    saved_mutes = [(track, track.mute, track.is_solo) for track in ad.nla_tracks]
    saved_range = (scene.frame_start, scene.frame_end, scene.frame_current)
    saved_selection = [o for o in view_layer.objects if o.select_get()]
    saved_active = view_layer.objects.active
    saved_hidden = (obj.hide_get(), obj.hide_viewport)
    try:
        for track, _, solo in saved_mutes:
            if solo:
                track.is_solo = False
            track.mute = True
        slot = next((s for s in action.slots if s.name_display == obj.name), None) if compat.SLOTTED_ACTIONS else None
        if compat.SLOTTED_ACTIONS and slot is None and len(action.slots) == 1:
            slot = action.slots[0]
        compat.assign_action(obj, action, slot)
        start, end = action_frame_range(action)
        scene.frame_start, scene.frame_end = start, end
        scene.frame_set(start)
        obj.hide_set(False)
        obj.hide_viewport = False
        for other in saved_selection:
            other.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
        yield start, end
    finally:
        for other in view_layer.objects:
            other.select_set(other in saved_selection)
        view_layer.objects.active = saved_active
        obj.hide_set(saved_hidden[0])
        obj.hide_viewport = saved_hidden[1]
        compat.assign_action(obj, saved_action, saved_slot)
        for track, mute, solo in saved_mutes:
            track.mute = mute
            if solo:
                track.is_solo = True
        scene.frame_start, scene.frame_end = saved_range[0], saved_range[1]
        scene.frame_set(saved_range[2])
        if not had_animation_data:
            obj.animation_data_clear()


def _check_written(path: Path, fmt: str, result: set) -> Path:
    if result != {"FINISHED"} or not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(
            f"Blender's {fmt.upper()} exporter did not write {path.name} (it returned {sorted(result)})."
        )
    return path


def export_bvh(obj: bpy.types.Object, action: bpy.types.Action, filepath: str | os.PathLike) -> Path:
    """The take as BVH: the skeleton's rest offsets and one frame per scene frame of the take (Blender units)."""
    path = Path(filepath)
    with solo_take(obj, action) as (start, end):
        result = bpy.ops.export_anim.bvh(
            filepath=str(path), check_existing=False, frame_start=start, frame_end=end, global_scale=1.0,
            rotate_mode="NATIVE", root_transform_only=False,
        )  # fmt: skip
    return _check_written(path, "bvh", result)


def export_fbx(obj: bpy.types.Object, action: bpy.types.Action, filepath: str | os.PathLike) -> Path:
    """The take as FBX: armature + deformed meshes, one animation stack sampled on every frame, no leaf bones."""
    path = Path(filepath)
    meshes = deformed_meshes(obj)
    with solo_take(obj, action):
        for mesh in meshes:
            mesh.select_set(True)
        result = bpy.ops.export_scene.fbx(
            filepath=str(path), check_existing=False, use_selection=True, object_types={"ARMATURE", "MESH"},
            add_leaf_bones=False, bake_anim=True, bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False,
            bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True, bake_anim_step=1.0,
            bake_anim_simplify_factor=0.0, use_custom_props=False,
        )  # fmt: skip
    return _check_written(path, "fbx", result)


def export_glb(obj: bpy.types.Object, action: bpy.types.Action, filepath: str | os.PathLike) -> Path:
    """The take as binary glTF: armature (skin) + deformed meshes and one animation sampled on every frame."""
    path = Path(filepath)
    meshes = deformed_meshes(obj)
    with solo_take(obj, action):
        for mesh in meshes:
            mesh.select_set(True)
        result = bpy.ops.export_scene.gltf(
            filepath=str(path), check_existing=False, export_format="GLB", use_selection=True,
            export_animations=True, export_animation_mode="ACTIVE_ACTIONS", export_frame_range=True,
            export_force_sampling=True, export_optimize_animation_size=False, export_nla_strips=False,
            export_anim_slide_to_zero=True, export_nla_strips_merged_animation_name=action.name,
            export_current_frame=False, export_extras=False,
        )  # fmt: skip
    return _check_written(path, "glb", result)


EXPORTERS = {"bvh": export_bvh, "fbx": export_fbx, "glb": export_glb}


def export_take(obj: bpy.types.Object, action: bpy.types.Action, fmt: str, filepath: str | os.PathLike) -> Path:
    """Export the take ``action`` of armature ``obj`` as ``fmt`` (one of :data:`FORMATS`) to ``filepath``."""
    if fmt not in EXPORTERS:
        raise ValueError(f"Export format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    return EXPORTERS[fmt](obj, action, filepath)

"""The add-on's data on Blender types: generation settings at ``scene.temos``, the bone map at ``object.temos_rig``.

Both are saved with the .blend file and follow undo. Nothing here runs a generation; the operators read these.
"""

from __future__ import annotations

import json

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..skeleton import SMPL_JOINTS

MAX_TAKES = 16  # equals core.generate.MAX_TAKES (kept here so drawing the panel never imports torch)


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class TEMOS_PG_bone_map_item(bpy.types.PropertyGroup):
    """One SMPL joint and the rig bone that follows it (empty: not mapped)."""

    joint: StringProperty(name="Joint", description="SMPL joint")
    bone: StringProperty(name="Bone", description="Bone of this armature that follows the joint; empty to skip it")


class TEMOS_PG_rig(bpy.types.PropertyGroup):
    """Per-armature bone map: which bone follows which SMPL joint. Detected on first use, editable by hand.

    The joint → bone rows and the root bone are editable in the panel; the rest of the detected
    :class:`~..retarget.bone_map.BoneMap` (rig-specific joint positions, spine chain, custom properties to key)
    is kept as JSON in ``details``. Editing a row drops what was detected for that joint.
    """

    bone_map: CollectionProperty(type=TEMOS_PG_bone_map_item, name="Bone Map")
    root_bone: StringProperty(
        name="Root Bone",
        description="Bone whose location carries the motion over the ground; empty: the pelvis bone",
    )
    details: StringProperty(
        name="Details",
        description="The rest of the detected bone map as JSON (joint positions, spine chain, custom properties)",
    )

    def has_map(self) -> bool:
        return len(self.bone_map) > 0

    def to_bone_map(self):
        """The stored map as a ``BoneMap`` (None when none is stored)."""
        from ..retarget.bone_map import BoneMap

        if not self.has_map():
            return None
        joints = {item.joint: item.bone for item in self.bone_map if item.bone}
        details = json.loads(self.details) if self.details else {}
        detected = details.get("joints", {})
        unchanged = {j for j, b in joints.items() if detected.get(j) == b}
        return BoneMap(
            joints=joints,
            root_bone=self.root_bone or None,
            points={j: b for j, b in details.get("points", {}).items() if j in unchanged},
            spine_chain=details.get("spine_chain", []),
            custom_props=details.get("custom_props", []),
            source=details.get("source", "") if unchanged == set(joints) == set(detected) else "",
        )

    def set_bone_map(self, bone_map) -> None:
        """Store ``bone_map`` (a ``BoneMap``): one row per SMPL joint, mapped or not."""
        data = bone_map.to_dict()
        self.bone_map.clear()
        for joint in SMPL_JOINTS:
            item = self.bone_map.add()
            item.joint = joint
            item.bone = bone_map.joints.get(joint, "")
        self.root_bone = bone_map.root_bone or ""
        self.details = json.dumps({k: data[k] for k in ("joints", "points", "spine_chain", "custom_props", "source")})


class TEMOS_PG_scene(bpy.types.PropertyGroup):
    """What the TEMOS panel edits: the prompt, the takes to make, the target rig and how to put the motion on it."""

    prompt: StringProperty(
        name="Prompt",
        description="What the character should do, in plain English, e.g. 'a person walks forward and waves'",
        default="",
    )
    duration_s: FloatProperty(
        name="Duration",
        description="Length of each take in seconds (the model was trained on 1–10 s)",
        default=5.0,
        min=0.0,
        soft_min=1.0,
        soft_max=10.0,
        step=50,
        precision=1,
        unit="TIME_ABSOLUTE",
    )
    n_takes: IntProperty(
        name="Takes",
        description=f"How many different takes to generate (1–{MAX_TAKES}); each gets its own action and NLA track",
        default=4,
        min=0,
        max=MAX_TAKES,
        soft_min=1,
    )
    seed: IntProperty(
        name="Seed",
        description="Seed of the first take; take i uses seed + i. The same prompt, seed and model give the same takes",
        default=0,
        min=0,
        max=2**31 - 1 - MAX_TAKES,
    )
    random_seed: BoolProperty(
        name="Random Seed",
        description="Pick a new seed at every generation (the seed used is stored on each take)",
        default=True,
    )
    diversity: FloatProperty(
        name="Diversity",
        description="How different the takes are from one another: 0 gives the average motion, 1 the trained spread",
        default=1.0,
        min=0.0,
        max=3.0,
        soft_max=2.0,
        step=10,
    )
    armature: PointerProperty(
        type=bpy.types.Object,
        name="Armature",
        description="Rig that receives the takes; empty uses the active armature",
        poll=_is_armature,
    )
    in_place: BoolProperty(
        name="In Place",
        description="Remove the travel over the ground: the character moves on the spot (vertical motion stays)",
        default=False,
    )
    keep_heading: BoolProperty(
        name="Keep Heading",
        description=(
            "The take starts facing where the rig faces; off: the take keeps its own heading in the world "
            "(its start faces -Y, Blender's front view), however the rig object is turned"
        ),
        default=True,
    )
    use_current_frame: BoolProperty(
        name="Start at Current Frame",
        description="Start the takes at the current frame; off: at the frame set below",
        default=True,
    )
    start_frame: IntProperty(name="Start Frame", description="First frame of every take", default=1)
    foot_cleanup: BoolProperty(
        name="Foot Cleanup",
        description="Pin feet that touch the ground so they do not slide",
        default=True,
    )
    take_index: IntProperty(name="Take", description="Selected take in the list", default=-1)

    # Auditioning changes the scene's preview range; these remember the range it replaced (see Bake to NLA).
    audition_saved: BoolProperty(default=False, options={"HIDDEN"})
    saved_use_preview_range: BoolProperty(default=False, options={"HIDDEN"})
    saved_preview_start: IntProperty(default=0, options={"HIDDEN"})
    saved_preview_end: IntProperty(default=0, options={"HIDDEN"})

    def target(self, context) -> bpy.types.Object | None:
        """The armature takes go to: the one picked, else the active object when it is an armature."""
        if self.armature is not None:
            return self.armature
        obj = context.active_object
        return obj if obj is not None and obj.type == "ARMATURE" else None

    def first_frame(self, scene) -> int:
        return scene.frame_current if self.use_current_frame else self.start_frame


classes = (TEMOS_PG_bone_map_item, TEMOS_PG_rig, TEMOS_PG_scene)


def register_properties() -> None:
    bpy.types.Scene.temos = PointerProperty(type=TEMOS_PG_scene)
    bpy.types.Object.temos_rig = PointerProperty(type=TEMOS_PG_rig)


def unregister_properties() -> None:
    for owner, name in ((bpy.types.Object, "temos_rig"), (bpy.types.Scene, "temos")):
        if hasattr(owner, name):
            delattr(owner, name)


class TEMOS_UL_takes(bpy.types.UIList):
    """The takes on the target armature's NLA: one row per take track (other tracks are filtered out)."""

    bl_idname = "TEMOS_UL_takes"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        from .bake import take_of_track

        take = take_of_track(item)
        row = layout.row(align=True)
        if take is None:
            row.label(text=item.name, icon="NLA")
            return
        state_icon = "SOLO_ON" if item.is_solo else ("HIDE_ON" if item.mute else "HIDE_OFF")
        row.label(text=item.name, icon="ACTION")
        if take.action.get("temos_kept"):
            row.label(text="", icon="CHECKMARK")
        row.label(text=f"seed {take.metadata.seed}")
        row.label(text="", icon=state_icon)

    def filter_items(self, context, data, propname):
        from .bake import take_of_track

        tracks = getattr(data, propname)
        flags = [self.bitflag_filter_item if take_of_track(t) is not None else 0 for t in tracks]
        if self.filter_name:
            by_name = bpy.types.UI_UL_list.filter_items_by_name(
                self.filter_name, self.bitflag_filter_item, tracks, "name"
            )
            flags = [a & b for a, b in zip(flags, by_name)]
        return flags, []


classes = (*classes, TEMOS_UL_takes)

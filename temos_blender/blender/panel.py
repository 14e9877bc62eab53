"""The TEMOS tab in the 3D Viewport's sidebar (N panel): prompt → takes, the take browser, the bone map.

Drawing reads state and never changes it; every change goes through an operator (one undo step each).
docs/PANEL.md shows the rows as text.
"""

import textwrap

import bpy

from .. import __version__
from . import bake, ops_generate
from .preferences import ADDON_ID

NUM_JOINTS = 22


def _wrapped(layout, context, text: str, icon: str = "NONE") -> None:
    """``text`` as labels wrapped to the region's width (Blender labels do not wrap by themselves)."""
    width_px = context.region.width if getattr(context, "region", None) is not None else 300
    chars = max(20, int(width_px / (7.0 * context.preferences.view.ui_scale)))
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, chars) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1" if icon != "NONE" else "NONE")


def _draw_bone_map_status(layout, context, obj) -> None:
    if ops_generate.rig_problem(obj):
        return  # shown as the reason Generate is disabled
    binding = ops_generate.rig_status(obj)
    row = layout.row(align=True)
    if binding.bone_map is None:
        row.label(text="Bone map: cannot read the rig", icon="ERROR")
        return
    mapped = binding.bone_map.num_mapped
    stored = "" if obj.temos_rig.has_map() else " (detected)"
    row.label(
        text=f"{mapped}/{NUM_JOINTS} joints mapped{stored} — edit below",
        icon="CHECKMARK" if mapped == NUM_JOINTS else "ERROR" if binding.problem else "INFO",
    )
    row.operator("temos.detect_bone_map", text="", icon="VIEWZOOM")


def _draw_generate(layout, context) -> None:
    props = context.scene.temos
    run = ops_generate.current_run()
    col = layout.column()
    if run is not None:
        col.progress(factor=run.fraction, type="BAR", text=run.status_text)
        col.operator("temos.cancel", text="Cancel", icon="CANCEL")
        return
    blocker = ops_generate.generate_blocker(context)
    row = col.row()
    row.scale_y = 1.4
    row.enabled = not blocker
    n = props.n_takes
    row.operator("temos.generate", text=f"Generate {n} Take{'s' if n != 1 else ''}", icon="PLAY")
    if blocker:
        _wrapped(col, context, blocker, icon="ERROR")
    for text in ops_generate.prompt_warnings(context):
        _wrapped(col, context, text, icon="INFO")


class TEMOS_PT_main(bpy.types.Panel):
    bl_label = "TEMOS Motion"
    bl_idname = "TEMOS_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "TEMOS"

    def draw(self, context):
        layout = self.layout
        props = context.scene.temos
        target = props.target(context)

        col = layout.column()
        row = col.row(align=True)
        row.prop(props, "prompt", text="")
        row.operator("temos.edit_prompt", text="", icon="GREASEPENCIL")
        if len(props.prompt) > 32:
            _wrapped(col.box(), context, props.prompt)

        settings = layout.column(align=True)
        settings.use_property_split = True
        settings.use_property_decorate = False
        settings.prop(props, "duration_s")
        settings.prop(props, "n_takes")
        row = settings.row(align=True)
        sub = row.row(align=True)
        sub.active = not props.random_seed
        sub.prop(props, "seed")
        row.prop(props, "random_seed", text="", icon="FILE_REFRESH")
        settings.prop(props, "diversity")

        rig = layout.column()
        rig.use_property_split = True
        rig.use_property_decorate = False
        rig.prop(props, "armature", text="Armature")
        if target is None:
            rig.operator("temos.add_smpl_armature", icon="ARMATURE_DATA")
        else:
            if props.armature is None:
                rig.label(text=f"Using the active armature '{target.name}'", icon="INFO")
            _draw_bone_map_status(rig, context, target)
        options = layout.column(heading="Root")
        options.use_property_split = True
        options.use_property_decorate = False
        options.prop(props, "in_place")
        options.prop(props, "keep_heading")
        start = layout.column(heading="Start")
        start.use_property_split = True
        start.use_property_decorate = False
        start.prop(props, "use_current_frame", text="Current Frame")
        sub = start.row()
        sub.active = not props.use_current_frame
        sub.prop(props, "start_frame")
        start.prop(props, "foot_cleanup")

        _draw_generate(layout, context)

        footer = layout.row()
        footer.label(text=f"Version {__version__}")
        footer.operator("preferences.addon_show", text="", icon="PREFERENCES").module = ADDON_ID


class TEMOS_PT_takes(bpy.types.Panel):
    bl_label = "Takes"
    bl_idname = "TEMOS_PT_takes"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "TEMOS"
    bl_parent_id = "TEMOS_PT_main"

    def draw(self, context):
        layout = self.layout
        props = context.scene.temos
        obj = props.target(context)
        takes = bake.takes_of(obj)
        if not takes:
            layout.label(text="No takes yet" + (f" on '{obj.name}'." if obj is not None else "."))
            return
        layout.template_list("TEMOS_UL_takes", "", obj.animation_data, "nla_tracks", props, "take_index", rows=4)

        col = layout.column(align=True)
        row = col.row(align=True)
        row.operator("temos.take_audition", text="Audition", icon="PLAY")
        row.operator("temos.take_rename", text="", icon="GREASEPENCIL")
        row.operator("temos.take_delete", text="", icon="TRASH")
        row = col.row(align=True)
        row.operator("temos.take_keep", text="Keep as Strip", icon="NLA").mode = "STRIP"
        row.operator("temos.take_keep", text="Push to Action", icon="ACTION").mode = "ACTION"
        row = col.row(align=True)
        row.operator("temos.take_regenerate", text="New Seed", icon="FILE_REFRESH").mode = "NEW_SEED"
        row.operator("temos.take_regenerate", text="Reproduce", icon="DUPLICATE").mode = "EXACT"
        col.operator("temos.bake_to_nla", icon="CHECKMARK")

        take = ops_generate.selected_take(context)
        if take is not None:
            meta = take.metadata
            box = layout.box()
            _wrapped(box, context, f"“{meta.prompt}”")
            info = box.column(align=True)
            info.label(text=f"Seed {meta.seed} · diversity {meta.diversity:.2f} · {meta.duration_s:g} s")
            info.label(text=f"Model {meta.model_id} · add-on {meta.addon_version}")
            info.label(text=f"Take {meta.take_number} · generation {meta.generation}")
            flags = [name for name, on in (("in place", meta.in_place), ("keep heading", meta.keep_heading),
                                           ("foot cleanup", meta.foot_cleanup)) if on]  # fmt: skip
            info.label(text="Options: " + (", ".join(flags) or "none"))
            start, end = take.strip.frame_start, take.strip.frame_end
            info.label(text=f"Frames {start:g}–{end:g}" + (" · kept" if take.action.get("temos_kept") else ""))


class TEMOS_PT_bone_map(bpy.types.Panel):
    bl_label = "Bone Map"
    bl_idname = "TEMOS_PT_bone_map"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "TEMOS"
    bl_parent_id = "TEMOS_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        obj = context.scene.temos.target(context)
        if obj is None or ops_generate.rig_problem(obj):
            layout.label(text="No armature that takes can go on.")
            return
        binding = ops_generate.rig_status(obj)
        _wrapped(layout, context, binding.status_text)
        rig = obj.temos_rig
        if not rig.has_map():
            layout.label(text="Detected, not stored yet: Generate stores it.", icon="INFO")
            layout.operator("temos.detect_bone_map", text="Store Detected Map", icon="VIEWZOOM")
            col = layout.column(align=True)
            for joint, bone in binding.bone_map.joints.items() if binding.bone_map else ():
                col.label(text=f"{joint}: {bone}")
            return
        col = layout.column(align=True)
        col.use_property_split = True
        col.use_property_decorate = False
        for item in rig.bone_map:
            col.prop_search(item, "bone", obj.data, "bones", text=item.joint)
        col.separator()
        col.prop_search(rig, "root_bone", obj.data, "bones")
        layout.operator("temos.detect_bone_map", text="Detect Again", icon="VIEWZOOM")


classes = (TEMOS_PT_main, TEMOS_PT_takes, TEMOS_PT_bone_map)

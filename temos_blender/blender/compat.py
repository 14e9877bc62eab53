"""Action and NLA access across Blender versions: the only module that looks at ``bpy.app.version``.

- 4.2 LTS: legacy actions; F-curves live on ``action.fcurves`` (grouped with ``action_group=``), no slots.
- 4.4 / 4.5 LTS: slotted actions; F-curves live in ``action.layers[0].strips[0].channelbag(slot)``; F-curve groups
  are made in ``channelbag.groups`` (``fcurves.new`` has no ``group_name`` yet).
- 5.0: ``action.fcurves`` is gone; ``channelbag.fcurves.new(..., group_name=…)`` creates and fills the group.
  A new world comes with a node tree and ``World.use_nodes`` is deprecated (to be removed in 6.0).

Every function takes the slot that :func:`ensure_slot` returned (``None`` on 4.2) so callers never branch.
"""

from __future__ import annotations

import bpy

SLOTTED_ACTIONS: bool = bpy.app.version >= (4, 4, 0)
"""Actions have layers, strips, slots and channelbags (4.4+)."""
FCURVE_NEW_TAKES_GROUP_NAME: bool = bpy.app.version >= (5, 0, 0)
"""``channelbag.fcurves.new`` accepts ``group_name`` (5.0+)."""


def new_action(name: str) -> bpy.types.Action:
    """An empty action meant for objects (Blender makes the name unique)."""
    action = bpy.data.actions.new(name)
    if not SLOTTED_ACTIONS:
        action.id_root = "OBJECT"
    return action


def ensure_slot(action: bpy.types.Action, obj: bpy.types.Object):
    """The action's slot for ``obj`` (found by name, else created); ``None`` where slots do not exist."""
    if not SLOTTED_ACTIONS:
        return None
    for slot in action.slots:
        if slot.target_id_type in {"OBJECT", "UNSPECIFIED"} and slot.name_display == obj.name:
            return slot
    return action.slots.new(id_type="OBJECT", name=obj.name)


def _channelbag(action: bpy.types.Action, slot, ensure: bool):
    if not action.layers:
        if not ensure:
            return None
        action.layers.new("Layer")
    layer = action.layers[0]
    if not layer.strips:
        if not ensure:
            return None
        layer.strips.new(type="KEYFRAME")
    return layer.strips[0].channelbag(slot, ensure=ensure)


def fcurves_of(action: bpy.types.Action, slot=None) -> list[bpy.types.FCurve]:
    """The F-curves of ``action`` for ``slot`` (every slot's when ``slot`` is None)."""
    if not SLOTTED_ACTIONS:
        return list(action.fcurves)
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                if slot is None or bag.slot_handle == slot.handle:
                    out.extend(bag.fcurves)
    return out


def new_fcurve(
    action: bpy.types.Action, slot, data_path: str, index: int = 0, group_name: str = ""
) -> bpy.types.FCurve:
    """A new F-curve on ``action`` for ``slot``, in the group ``group_name`` (created on first use)."""
    if not SLOTTED_ACTIONS:
        return action.fcurves.new(data_path, index=index, action_group=group_name)
    bag = _channelbag(action, slot, ensure=True)
    if FCURVE_NEW_TAKES_GROUP_NAME:
        return bag.fcurves.new(data_path, index=index, group_name=group_name)
    fcurve = bag.fcurves.new(data_path, index=index)
    if group_name:
        group = bag.groups.get(group_name) or bag.groups.new(group_name)
        fcurve.group = group
    return fcurve


def fcurve_group_name(fcurve: bpy.types.FCurve) -> str:
    return fcurve.group.name if fcurve.group is not None else ""


def assign_action(obj: bpy.types.Object, action: bpy.types.Action | None, slot=None) -> None:
    """Make ``action`` (with ``slot``) the object's active action; ``None`` clears it."""
    ad = obj.animation_data or obj.animation_data_create()
    ad.action = action
    if action is not None and slot is not None:
        ad.action_slot = slot


def active_slot(obj: bpy.types.Object):
    """The slot the object's active action plays (``None`` on 4.2 or without an action)."""
    ad = obj.animation_data
    if not SLOTTED_ACTIONS or ad is None or ad.action is None:
        return None
    return ad.action_slot


def new_nla_strip(track: bpy.types.NlaTrack, name: str, start_frame: int, action: bpy.types.Action, slot=None):
    """A strip of ``action`` on ``track`` starting at ``start_frame``, playing ``slot``."""
    strip = track.strips.new(name, int(start_frame), action)
    if SLOTTED_ACTIONS and slot is not None and strip.action_slot != slot:
        strip.action_slot = slot
    return strip


def strip_slot(strip: bpy.types.NlaStrip):
    """The slot an NLA strip plays (``None`` on 4.2)."""
    return strip.action_slot if SLOTTED_ACTIONS else None


def set_world_color(world: bpy.types.World, rgb) -> None:
    """A flat background of colour ``rgb`` for Workbench and Cycles alike, on every version.

    Workbench reads ``world.color``. Cycles reads it only from a world without nodes (a new world on 4.x); a world
    with a node tree (every new world on 5.0) shows its Background nodes, whose colour is set to the same value.
    ``World.use_nodes`` is never touched (deprecated on 5.0).
    """
    world.color = tuple(rgb)
    if world.node_tree is None:
        return
    for node in world.node_tree.nodes:
        if node.bl_idname == "ShaderNodeBackground":
            node.inputs["Color"].default_value = (*rgb, 1.0)
            node.inputs["Strength"].default_value = 1.0

"""Write takes into Blender: one action per take, keyed in bulk, each on its own NLA track.

A take arrives as :class:`TakeCurves` (what ``retarget`` produced: pose-bone rotations and locations at the
model's frame rate). :func:`write_action` resamples it to the scene's frame rate, writes every F-curve with
``keyframe_points.add`` + ``foreach_set`` (never per-key ``keyframe_insert``), groups curves per bone and stores
the take's :class:`TakeMetadata` as custom properties on the action. :class:`GenerationBake` adds the tracks and
strips of one generation and removes all of it again if any step fails.

Names are never reused: a new take of "walk forward and wave" after takes 1–4 is "walk forward and wave · take 5".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from ..rotations import quat_normalize, resample_linear, resample_rotations
from . import compat

TAKE_SEPARATOR = " · take "
MAX_NAME_BYTES = 63
"""Longest ID name every supported Blender accepts (5.0 allows 255; 4.2–4.5 allow 63), in UTF-8 bytes."""
METADATA_PREFIX = "temos_"

_INTERPOLATION = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items
_LINEAR = _INTERPOLATION["LINEAR"].value
_CONSTANT = _INTERPOLATION["CONSTANT"].value


@dataclass(frozen=True)
class TakeCurves:
    """One take on one rig, ready to key: channels of pose bones, in each bone's local (pose) space."""

    fps: float
    """Frame rate of the arrays (the model's)."""
    rotations: Mapping[str, np.ndarray]
    """Bone name → (T, 4) wxyz rotation relative to the bone's rest pose (``pose_bone.rotation_quaternion``)."""
    locations: Mapping[str, np.ndarray]
    """Bone name → (T, 3) ``pose_bone.location`` (usually only the root bone)."""
    bone_properties: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(bone, custom property) → value held for the whole take (Rigify's ``IK_FK`` = 1 so FK bones drive the limbs)."""

    @property
    def num_frames(self) -> int:
        arrays = [*self.rotations.values(), *self.locations.values()]
        return int(arrays[0].shape[0]) if arrays else 0


@dataclass(frozen=True)
class TakeMetadata:
    """What a take was made from; stored on its action as ``temos_<field>`` custom properties."""

    prompt: str
    """The text the take was generated from."""
    seed: int
    """Seed of the take's latent sample."""
    diversity: float
    """Latent sampling factor."""
    duration_s: float
    """Requested length in seconds."""
    model_id: str
    """Model that generated it."""
    addon_version: str
    """Version of this add-on that baked it."""
    take_number: int
    """The N of "· take N" at creation."""
    generation: str
    """Identifier shared by the takes of one Generate."""
    in_place: bool = False
    """Root motion removed (the character stays over the origin)."""
    keep_heading: bool = True
    """The character keeps the rig's facing direction at the first frame."""
    foot_cleanup: bool = True
    """Foot-contact cleanup was applied."""

    def write(self, action: bpy.types.Action) -> None:
        for f in fields(self):
            action[METADATA_PREFIX + f.name] = getattr(self, f.name)

    @classmethod
    def read(cls, action: bpy.types.Action | None) -> TakeMetadata | None:
        """The metadata stored on ``action``; None when it is not a take (or the properties were removed)."""
        if action is None or METADATA_PREFIX + "prompt" not in action:
            return None
        values = {}
        for f in fields(cls):
            key = METADATA_PREFIX + f.name
            if key in action:
                kind = {"str": str, "int": int, "float": float, "bool": bool}[f.type]
                values[f.name] = kind(action[key])
        try:
            return cls(**values)
        except TypeError:
            return None


def is_take_action(action: bpy.types.Action | None) -> bool:
    return TakeMetadata.read(action) is not None


# Names ---------------------------------------------------------------------------------------------------------


def _truncate_utf8(text: str, max_bytes: int) -> str:
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    ellipsis = "…"
    budget = max_bytes - len(ellipsis.encode("utf-8"))
    out = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip()
    return out + ellipsis


def take_base_name(prompt: str) -> str:
    """The prompt as a name stem, short enough that "stem · take 999" fits in an ID name."""
    stem = " ".join(prompt.split()) or "take"
    return _truncate_utf8(stem, MAX_NAME_BYTES - len(f"{TAKE_SEPARATOR}999".encode()))


def take_name(prompt: str, number: int) -> str:
    return f"{take_base_name(prompt)}{TAKE_SEPARATOR}{number}"


def next_take_number(obj: bpy.types.Object, prompt: str) -> int:
    """1 + the highest N of any action or of ``obj``'s NLA tracks named "<prompt stem> · take N"."""
    pattern = re.compile(re.escape(take_base_name(prompt) + TAKE_SEPARATOR) + r"(\d+)(?:\.\d+)?$")
    names = [a.name for a in bpy.data.actions]
    if obj.animation_data is not None:
        names += [t.name for t in obj.animation_data.nla_tracks]
    numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
    return max(numbers, default=0) + 1


# Keys ----------------------------------------------------------------------------------------------------------


def _continuous_quats(q: np.ndarray) -> np.ndarray:
    """Flip signs along time (axis 0) so consecutive quaternions lie in the same hemisphere.

    Blender interpolates quaternion curves per component; q and -q are the same rotation, but a sign flip between
    two keys would swing the bone the long way round.
    """
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.where(dots < 0, -1.0, 1.0)
    signs = np.concatenate([np.ones((1,) + flips.shape[1:]), np.cumprod(flips, axis=0)], axis=0)
    return q * signs[..., None]


def _bone_rotation_channels(pose_bone: bpy.types.PoseBone, quats: np.ndarray) -> tuple[str, np.ndarray]:
    """The property and (T, C) values that express ``quats`` in the bone's own rotation mode."""
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", quats
    if mode == "AXIS_ANGLE":
        out = np.empty((len(quats), 4))
        for i, q in enumerate(quats):
            axis, angle = Quaternion(q).to_axis_angle()
            out[i] = (angle, *axis)
        return "rotation_axis_angle", out
    out = np.empty((len(quats), 3))
    previous = Euler((0.0, 0.0, 0.0), mode)
    for i, q in enumerate(quats):
        previous = Quaternion(q).to_euler(mode, previous)  # compatible with the previous frame: no 360° jumps
        out[i] = previous
    return "rotation_euler", out


def _write_fcurve(fcurve: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray, interpolation: int = _LINEAR):
    n = len(frames)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    points = fcurve.keyframe_points
    points.add(n)
    points.foreach_set("co", co)
    # One key per frame: linear interpolation reproduces the samples without Bezier overshoot between them.
    points.foreach_set("interpolation", np.full(n, interpolation, dtype=np.int32))
    fcurve.update()


def resampled(curves: TakeCurves, scene_fps: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Rotations (continuous signs) and locations at ``scene_fps``; returns them and the new frame count.

    A take of T frames at ``curves.fps`` lasts T / fps seconds, so it gets round(T / fps · scene_fps) frames: a
    4 s take is 120 frames at 30 fps, as the animator asked (the last fraction of a model frame holds its pose).
    """
    same_rate = np.isclose(curves.fps, scene_fps)
    lengths = [len(v) for v in (*curves.rotations.values(), *curves.locations.values())]
    n = lengths[0] if lengths and same_rate else int(round(lengths[0] / curves.fps * scene_fps)) if lengths else 0
    names = list(curves.rotations)
    rots = {}
    if names:
        q = np.stack([np.asarray(curves.rotations[b], dtype=np.float64) for b in names], axis=1)  # (T, B, 4)
        if not same_rate:
            q = resample_rotations(q, curves.fps, scene_fps, n)
        q = _continuous_quats(quat_normalize(q))
        rots = {b: q[:, i] for i, b in enumerate(names)}
    locs = {}
    for b, v in curves.locations.items():
        v = np.asarray(v, dtype=np.float64)
        locs[b] = v if same_rate else resample_linear(v, curves.fps, scene_fps, n)
    return rots, locs, n


def write_action(
    obj: bpy.types.Object, name: str, curves: TakeCurves, scene_fps: float, start_frame: int
) -> tuple[bpy.types.Action, object]:
    """A new action (and its slot for ``obj``) keying ``curves`` from ``start_frame`` at the scene's frame rate.

    Raises KeyError naming the bone if a curve targets a bone ``obj`` does not have; nothing is left behind then.
    """
    pose = obj.pose
    missing = [b for b in (*curves.rotations, *curves.locations, *(b for b, _ in curves.bone_properties))]
    missing = [b for b in missing if b not in pose.bones]
    if missing:
        raise KeyError(f"Armature '{obj.name}' has no bone '{missing[0]}'.")
    absent = [(b, p) for b, p in curves.bone_properties if p not in pose.bones[b]]
    if absent:
        raise KeyError(f"Bone '{absent[0][0]}' of '{obj.name}' has no custom property '{absent[0][1]}'.")
    rots, locs, n = resampled(curves, scene_fps)
    frames = start_frame + np.arange(n, dtype=np.float64)
    action = compat.new_action(name)
    try:
        slot = compat.ensure_slot(action, obj)
        for bone, quats in rots.items():
            prop, values = _bone_rotation_channels(pose.bones[bone], quats)
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'
            for i in range(values.shape[1]):
                _write_fcurve(compat.new_fcurve(action, slot, path, i, group_name=bone), frames, values[:, i])
        for bone, values in locs.items():
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].location'
            for i in range(3):
                _write_fcurve(compat.new_fcurve(action, slot, path, i, group_name=bone), frames, values[:, i])
        ends = frames[[0, -1]] if n > 1 else frames[:1]
        for (bone, prop), value in curves.bone_properties.items():
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]["{bpy.utils.escape_identifier(prop)}"]'
            fcurve = compat.new_fcurve(action, slot, path, 0, group_name=bone)
            _write_fcurve(fcurve, ends, np.full(len(ends), value), _CONSTANT)
    except BaseException:
        bpy.data.actions.remove(action)
        raise
    return action, slot


# NLA ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TakeRef:
    """A take on the NLA: its track (one strip) and action."""

    track: bpy.types.NlaTrack
    strip: bpy.types.NlaStrip
    action: bpy.types.Action
    metadata: TakeMetadata


def take_of_track(track: bpy.types.NlaTrack) -> TakeRef | None:
    """The take ``track`` holds, or None when it is not a single-strip track of a take action."""
    if len(track.strips) != 1:
        return None
    strip = track.strips[0]
    meta = TakeMetadata.read(strip.action)
    return TakeRef(track, strip, strip.action, meta) if meta is not None else None


def takes_of(obj: bpy.types.Object | None) -> list[TakeRef]:
    """Every take on ``obj``'s NLA, bottom track first."""
    if obj is None or obj.animation_data is None:
        return []
    return [t for t in map(take_of_track, obj.animation_data.nla_tracks) if t is not None]


def remove_action_if_unused(action: bpy.types.Action | None) -> bool:
    """Delete ``action`` when nothing uses it any more (and it has no fake user); returns whether it was deleted."""
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)
        return True
    return False


def delete_take(obj: bpy.types.Object, track: bpy.types.NlaTrack) -> None:
    """Remove the take's track; its action too when nothing else uses it."""
    action = track.strips[0].action if len(track.strips) else None
    obj.animation_data.nla_tracks.remove(track)
    remove_action_if_unused(action)


def add_take_track(obj, action, slot, name: str, start_frame: int, mute: bool):
    """A new NLA track named ``name`` on top of ``obj``'s stack with one strip of ``action`` at ``start_frame``."""
    ad = obj.animation_data or obj.animation_data_create()
    track = ad.nla_tracks.new()
    track.name = name
    strip = compat.new_nla_strip(track, name, start_frame, action, slot)
    strip.extrapolation = "HOLD_FORWARD"  # before the take: whatever was there; after it: its last pose
    track.mute = mute
    return track, strip


@dataclass
class BakedTake:
    action: bpy.types.Action
    track: bpy.types.NlaTrack
    strip: bpy.types.NlaStrip


class GenerationBake:
    """Everything one generation writes onto one armature, so it can all be taken back.

    Use as ``with GenerationBake(obj) as bake: bake.add(...)``: leaving the block by an exception removes every
    action, track and strip it created (and the animation data, if the object had none), then re-raises.
    """

    def __init__(self, obj: bpy.types.Object, scene_fps: float, start_frame: int):
        self.obj = obj
        self.scene_fps = float(scene_fps)
        self.start_frame = int(start_frame)
        self.had_animation_data = obj.animation_data is not None
        self.baked: list[BakedTake] = []
        self._actions: list[bpy.types.Action] = []
        self._replaced: list[tuple[bpy.types.NlaTrack, bpy.types.Action, object]] = []

    def __enter__(self) -> GenerationBake:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.rollback()
        return False

    def add(self, curves: TakeCurves, metadata: TakeMetadata, mute: bool, replace: bpy.types.NlaTrack | None = None):
        """Bake one take: a new action and track, or (``replace``) a new action in that take's existing track."""
        name = replace.name if replace is not None else take_name(metadata.prompt, metadata.take_number)
        action, slot = write_action(self.obj, name, curves, self.scene_fps, self.start_frame)
        self._actions.append(action)
        metadata.write(action)
        if replace is None:
            track, strip = add_take_track(self.obj, action, slot, name, self.start_frame, mute)
        else:
            track = replace
            self._replaced.append((track, action, slot))
            strip = None  # swapped in by commit(): the old take stays intact until nothing can fail any more
        baked = BakedTake(action, track, strip)
        self.baked.append(baked)
        return baked

    def commit(self) -> None:
        """Swap replaced takes' strips for their new actions (the last step; it cannot fail half-way)."""
        for (track, action, slot), baked in zip(self._replaced, [b for b in self.baked if b.strip is None]):
            old = track.strips[0]
            old_action, start, extrapolation = old.action, int(old.frame_start), old.extrapolation
            track.strips.remove(old)
            baked.strip = compat.new_nla_strip(track, track.name, start, action, slot)
            baked.strip.extrapolation = extrapolation
            if remove_action_if_unused(old_action):
                action.name = track.name  # the new action was "<name>.001" while the old one existed
                baked.strip.name = action.name
        self._replaced.clear()

    def rollback(self) -> None:
        """Remove what :meth:`add` created; the object is left as before the generation."""
        ad = self.obj.animation_data
        for baked in reversed(self.baked):
            if ad is not None and baked.strip is not None and baked.track.name in ad.nla_tracks:
                ad.nla_tracks.remove(baked.track)
        for action in self._actions:
            if action.name in bpy.data.actions and action.users == 0:
                bpy.data.actions.remove(action)
        if not self.had_animation_data and ad is not None:
            self.obj.animation_data_clear()
        self.baked.clear()
        self._actions.clear()
        self._replaced.clear()

"""A preview anyone can watch: every take of an armature side by side, rendered headless to MP4, GIF or a PNG sheet.

Armatures do not render, so each take gets a copy of the armature with stand-in geometry: one capsule per deform
bone, sized by the bone's length and skinned rigidly to it. The takes stand in a row, each in its own colour and
labelled with its take number (and prompt); an orthographic camera, tilted slightly down, frames the whole motion
of every take. Workbench renders it at 320×240 in a few milliseconds a frame where OpenGL works headless (Debian:
libegl1, libegl-mesa0, libgl1-mesa-dri); Cycles on the CPU at a few samples is the fallback.

A Workbench render without a working EGL aborts the whole process from inside Blender's C code, where Python
cannot catch it, so :func:`render_preview_subprocess` renders in a child process (``python -m
temos_blender.blender.preview``) and falls back to Cycles when that child dies.

Blender has no GIF writer: :func:`write_gif` encodes the rendered PNG frames itself (GIF89a, LZW, one palette of
the most used colours, only the changed rectangle of each frame).

The PNG is a contact sheet to read at a glance (in a document, a review tool, a chat): :data:`SHEET_FRAMES` frames
evenly spaced from the first to the last, left to right and top to bottom, :data:`SHEET_COLUMNS` to a row.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Euler, Matrix, Vector

from . import bake, compat

PREVIEW_FORMATS: tuple[str, ...] = ("mp4", "gif", "png")
ENGINES: tuple[str, ...] = ("workbench", "cycles")
RESOLUTION: tuple[int, int] = (320, 240)
CAMERA_TILT_DEG = 12.0
"""How far the camera looks down: enough to see the feet on the floor, little enough to read the poses."""
SHEET_FRAMES = 6
SHEET_COLUMNS = 3
SHEET_GAP_PX = 4
"""White space between the frames of a sheet."""
GIF_FPS = 10.0
"""GIF frames are taken at about this rate (GIF delays are whole hundredths of a second)."""
CYCLES_SAMPLES = 4
CYCLES_FRAME_STEP = 2
"""Cycles renders every other frame (the video keeps real time at half the frame rate)."""
LABEL_PX = 13.0
"""Height of label text in pixels of the final frame (before the labels themselves widen the framing)."""
TAKE_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.85, 0.33, 0.25), (0.22, 0.52, 0.80), (0.35, 0.68, 0.30), (0.87, 0.62, 0.18),
    (0.55, 0.38, 0.72), (0.20, 0.65, 0.65), (0.80, 0.40, 0.60), (0.50, 0.50, 0.50),
)  # fmt: skip
BACKGROUND_COLOR = (0.78, 0.80, 0.83)
FLOOR_COLOR = (0.66, 0.67, 0.68)
TEXT_COLOR = (0.05, 0.05, 0.06)
PREVIEW_COLLECTION = "TEMOS Preview"


# Stand-in geometry ---------------------------------------------------------------------------------------------


def stand_in_bones(arm: bpy.types.Armature) -> list[bpy.types.Bone]:
    """The bones that get a capsule: deform bones (all bones when none deforms), minus tiny ones."""
    bones = [b for b in arm.bones if b.use_deform] or list(arm.bones)
    height = rig_height(arm)
    return [b for b in bones if b.length >= 0.01 * height]


def rig_height(arm: bpy.types.Armature) -> float:
    """The largest extent of the rest skeleton, in armature space (its 'size')."""
    points = np.array([p for b in arm.bones for p in (b.head_local, b.tail_local)], dtype=np.float64)
    return float(np.max(points.max(0) - points.min(0))) if len(points) else 1.0


def capsule_radius(bone_length: float, height: float) -> float:
    return float(np.clip(0.18 * bone_length, 0.03 * height, 0.06 * height))


def _capsule(head: np.ndarray, tail: np.ndarray, radius: float, segments: int = 8, rings: int = 3):
    """Vertices (V, 3) and faces of a capsule around head→tail (hemispheres centred on both ends)."""
    axis = tail - head
    length = float(np.linalg.norm(axis))
    u = axis / length if length > 0 else np.array([0.0, 0.0, 1.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    w = np.cross(u, v)
    angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring_dirs = np.cos(angles)[:, None] * v + np.sin(angles)[:, None] * w  # (S, 3)
    lats = np.linspace(-np.pi / 2, np.pi / 2, 2 * rings + 1)[1:-1]  # without the poles
    verts = [head - radius * u]
    for lat in lats:
        centre = head if lat < 1e-9 else tail
        verts.extend(centre + radius * (np.sin(lat) * u + np.cos(lat) * ring_dirs))
        if abs(lat) < 1e-9:  # the equator opens into the cylinder: repeat it at the tail end
            verts.extend(tail + radius * ring_dirs)
    verts.append(tail + radius * u)
    n_rings = (len(verts) - 2) // segments
    faces = [(0, 1 + (s + 1) % segments, 1 + s) for s in range(segments)]
    for r in range(n_rings - 1):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        faces += [(a + s, a + (s + 1) % segments, b + (s + 1) % segments, b + s) for s in range(segments)]
    top, last = len(verts) - 1, 1 + (n_rings - 1) * segments
    faces += [(last + s, last + (s + 1) % segments, top) for s in range(segments)]
    return np.asarray(verts), faces


def add_stand_in(obj: bpy.types.Object, name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    """A mesh of capsules, one per bone of :func:`stand_in_bones`, skinned rigidly to armature ``obj``."""
    arm = obj.data
    height = rig_height(arm)
    verts, faces, groups = [], [], []
    for bone in stand_in_bones(arm):
        head, tail = np.array(bone.head_local), np.array(bone.tail_local)
        v, f = _capsule(head, tail, capsule_radius(bone.length, height))
        offset = sum(len(x) for x in verts)
        verts.append(v)
        faces.extend(tuple(i + offset for i in face) for face in f)
        groups.append((bone.name, range(offset, offset + len(v))))
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.concatenate(verts).tolist() if verts else [], [], faces)
    mesh.update()
    stand_in = bpy.data.objects.new(name, mesh)
    collection.objects.link(stand_in)
    for bone_name, indices in groups:
        stand_in.vertex_groups.new(name=bone_name).add(list(indices), 1.0, "REPLACE")
    stand_in.parent = obj
    stand_in.matrix_parent_inverse = Matrix.Identity(4)
    modifier = stand_in.modifiers.new("Armature", "ARMATURE")
    modifier.object = obj
    return stand_in


# Scene ---------------------------------------------------------------------------------------------------------


def _material(name: str, color) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*color, 1.0)  # Workbench (colour type MATERIAL) and node-less Cycles both read this
    mat.roughness = 0.8
    return mat


def _text(name: str, body: str, size: float, collection, material, wrap_width: float = 0.0) -> bpy.types.Object:
    curve = bpy.data.curves.new(name, "FONT")
    curve.body = body
    curve.size = size
    curve.align_x = "CENTER"
    curve.align_y = "BOTTOM"
    if wrap_width > 0:
        curve.text_boxes[0].width = wrap_width
        curve.text_boxes[0].x = -wrap_width / 2
    curve.materials.append(material)
    text = bpy.data.objects.new(name, curve)
    collection.objects.link(text)
    return text


def _world_corners(obj: bpy.types.Object) -> np.ndarray:
    return np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])


@dataclass
class PreviewTake:
    """One take in the preview row."""

    action: bpy.types.Action
    label: str
    rig: bpy.types.Object | None = None
    """The armature copy that plays the take."""
    anchor: bpy.types.Object | None = None
    """Empty the copy hangs from; its X places the take in the row."""
    bounds: np.ndarray | None = None
    """(2, 3) world min/max of the take's bones over its frames, with capsule radius (after layout: in the row)."""


def take_labels(takes: list[bake.TakeRef]) -> tuple[str, list[str]]:
    """A title (the prompt, when all takes share one) and one label per take ("take 3", or "take 3: prompt")."""
    prompts = {t.metadata.prompt for t in takes}
    if len(prompts) == 1:
        return next(iter(prompts)), [f"take {t.metadata.take_number}" for t in takes]
    return "", [f"take {t.metadata.take_number}: {t.metadata.prompt}" for t in takes]


def _sample_bounds(scene, takes: list[PreviewTake], frames: range, bone_names: list[str], pad: float) -> None:
    lo = [np.full(3, np.inf) for _ in takes]
    hi = [np.full(3, -np.inf) for _ in takes]
    for frame in frames:
        scene.frame_set(frame)
        for i, take in enumerate(takes):
            mw = take.rig.matrix_world
            pts = np.array(
                [
                    mw @ p
                    for name in bone_names
                    for p in (take.rig.pose.bones[name].head, take.rig.pose.bones[name].tail)
                ]
            )
            lo[i] = np.minimum(lo[i], pts.min(0))
            hi[i] = np.maximum(hi[i], pts.max(0))
    for i, take in enumerate(takes):
        take.bounds = np.stack([lo[i] - pad, hi[i] + pad])


def build_preview_scene(obj: bpy.types.Object, resolution: tuple[int, int] = RESOLUTION) -> tuple[int, int]:
    """Turn the current scene into the preview of ``obj``'s takes; returns the frame range to render.

    Everything already in the scene is hidden from the render; the preview objects live in their own collection.
    The file is meant to be thrown away afterwards (the preview is rendered from a copy, never saved).
    """
    scene = bpy.context.scene
    refs = bake.takes_of(obj)
    if not refs:
        raise ValueError(f"Armature '{obj.name}' has no takes on its NLA tracks; nothing to preview.")
    title, labels = take_labels(refs)
    for other in scene.objects:
        other.hide_render = True
    collection = bpy.data.collections.new(PREVIEW_COLLECTION)
    scene.collection.children.link(collection)

    arm = obj.data
    height_arm = rig_height(arm)
    scale = max(obj.matrix_world.to_scale())
    height = height_arm * scale
    bone_names = [b.name for b in stand_in_bones(arm)]
    pad = capsule_radius(height_arm * 0.25, height_arm) * scale

    takes = [PreviewTake(r.action, label) for r, label in zip(refs, labels)]
    start = min(int(round(t.action.frame_range[0])) for t in takes)
    end = max(int(round(t.action.frame_range[1])) for t in takes)
    for i, take in enumerate(takes):
        take.anchor = bpy.data.objects.new(f"take {i + 1} anchor", None)
        collection.objects.link(take.anchor)
        rig = obj.copy()
        rig.name = f"take {i + 1}"
        collection.objects.link(rig)
        rig.parent = take.anchor
        rig.matrix_parent_inverse = Matrix.Identity(4)
        rig.matrix_basis = obj.matrix_world.copy()
        rig.animation_data_clear()
        slot = None
        if compat.SLOTTED_ACTIONS and len(take.action.slots):
            slot = next((s for s in take.action.slots if s.name_display == obj.name), take.action.slots[0])
        compat.assign_action(rig, take.action, slot)
        rig.hide_render = False  # armatures draw nothing in a render; their stand-ins do
        take.rig = rig
        stand_in = add_stand_in(rig, f"take {i + 1} body", collection)
        stand_in.data.materials.append(_material(f"take {i + 1}", TAKE_COLORS[i % len(TAKE_COLORS)]))
        stand_in.hide_render = False

    step = max(1, (end - start) // 40)
    _sample_bounds(scene, takes, range(start, end + 1, step), bone_names, pad)

    # Lay the takes out in a row along X, a gap apart, centred on the origin.
    gap = 0.3 * height
    cursor = 0.0
    for take in takes:
        lo, hi = take.bounds
        take.anchor.location.x = cursor - lo[0]
        cursor += (hi[0] - lo[0]) + gap
    shift = -(cursor - gap) / 2
    for take in takes:
        take.anchor.location.x += shift
        take.bounds = take.bounds + np.array([take.anchor.location.x, 0.0, 0.0])
    all_lo = np.min([t.bounds[0] for t in takes], axis=0)
    all_hi = np.max([t.bounds[1] for t in takes], axis=0)

    # Camera: orthographic, looking along +Y (at the rig's front) and tilted down.
    camera_data = bpy.data.cameras.new("TEMOS Preview Camera")
    camera_data.type = "ORTHO"
    camera = bpy.data.objects.new("TEMOS Preview Camera", camera_data)
    collection.objects.link(camera)
    camera.rotation_euler = Euler((math.radians(90.0 - CAMERA_TILT_DEG), 0.0, 0.0))
    scene.camera = camera
    res_x, res_y = resolution
    scene.render.resolution_x, scene.render.resolution_y = res_x, res_y
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    aspect = res_x / res_y

    def frame_points(points: np.ndarray) -> float:
        rot = np.array(camera.rotation_euler.to_matrix())
        right, up, back = rot[:, 0], rot[:, 1], rot[:, 2]
        x, y, z = points @ right, points @ up, points @ back
        ortho = max(x.max() - x.min(), (y.max() - y.min()) * aspect) * 1.08
        centre = right * (x.max() + x.min()) / 2 + up * (y.max() + y.min()) / 2
        distance = (z.max() - z.min()) + 10.0 * height
        camera.location = Vector(centre + back * (z.max() + distance))
        camera_data.ortho_scale = ortho
        camera_data.clip_start = 0.01 * height
        camera_data.clip_end = 2 * distance + (z.max() - z.min())
        return ortho

    corners = np.array(
        [[x, y, z] for x in (all_lo[0], all_hi[0]) for y in (all_lo[1], all_hi[1]) for z in (all_lo[2], all_hi[2])]
    )
    ortho = frame_points(corners)

    # Labels, sized in pixels of that framing, at the far top corner of the motion so that, seen from above, they
    # stand over every pose; then frame again with them.
    px = ortho / res_x
    text_material = _material("TEMOS label", TEXT_COLOR)
    label_z = all_hi[2] + 4 * px
    texts = []
    for take in takes:
        lo, hi = take.bounds
        text = _text(
            take.label, take.label, LABEL_PX * px, collection, text_material, wrap_width=0 if title else hi[0] - lo[0]
        )
        text.location = ((lo[0] + hi[0]) / 2, all_hi[1], label_z)
        text.rotation_euler = camera.rotation_euler
        texts.append(text)
    if title:
        bpy.context.view_layer.update()
        top = max(_world_corners(t)[:, 2].max() for t in texts)
        text = _text(
            "prompt", title, LABEL_PX * px, collection, text_material, wrap_width=all_hi[0] - all_lo[0] + 2 * gap
        )
        text.location = (0.0, all_hi[1], top + 6 * px)
        text.rotation_euler = camera.rotation_euler
        texts.append(text)
    bpy.context.view_layer.update()
    frame_points(np.concatenate([corners, *[_world_corners(t) for t in texts]]))

    # A floor under the row of takes, where the rig's feet are at rest (its far edge shows where the ground ends).
    x0, x1 = all_lo[0] - gap / 2, all_hi[0] + gap / 2
    y0, y1 = all_lo[1] - gap, all_hi[1] + gap
    rest_points = [
        obj.matrix_world @ getattr(arm.bones[name], end) for name in bone_names for end in ("head_local", "tail_local")
    ]
    z = min(p.z for p in rest_points) - 0.5 * pad
    floor_mesh = bpy.data.meshes.new("TEMOS Preview Floor")
    floor_mesh.from_pydata([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)], [], [(0, 1, 2, 3)])
    floor_mesh.materials.append(_material("TEMOS floor", FLOOR_COLOR))
    floor = bpy.data.objects.new("TEMOS Preview Floor", floor_mesh)
    collection.objects.link(floor)

    scene.world = bpy.data.worlds.new("TEMOS Preview World")  # the file's own world (an HDRI, say) is left alone
    compat.set_world_color(scene.world, BACKGROUND_COLOR)
    scene.frame_start, scene.frame_end = start, end
    scene.frame_set(start)
    return start, end


# Rendering -----------------------------------------------------------------------------------------------------


def configure_render(scene, engine: str, resolution: tuple[int, int]) -> None:
    """Workbench (flat studio light, material colours) or Cycles CPU at a few samples, at ``resolution``."""
    render = scene.render
    render.resolution_x, render.resolution_y = resolution
    render.resolution_percentage = 100
    render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    if engine == "workbench":
        render.engine = "BLENDER_WORKBENCH"
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.color_type = "MATERIAL"
        shading.show_cavity = False
        shading.show_shadows = False
        scene.display.render_aa = "FXAA"
    elif engine == "cycles":
        render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = CYCLES_SAMPLES
        scene.cycles.use_denoising = False
        scene.cycles.use_adaptive_sampling = False
        scene.cycles.max_bounces = 1
        render.use_persistent_data = True
        scene.frame_step = CYCLES_FRAME_STEP
        render.fps_base *= CYCLES_FRAME_STEP
        sun_data = bpy.data.lights.new("TEMOS Preview Sun", "SUN")
        sun_data.energy = 3.0
        sun = bpy.data.objects.new("TEMOS Preview Sun", sun_data)
        sun.rotation_euler = Euler((math.radians(50), math.radians(10), math.radians(-30)))
        bpy.data.collections[PREVIEW_COLLECTION].objects.link(sun)
        compat.set_world_color(scene.world, tuple(c * 0.6 for c in BACKGROUND_COLOR))  # also a light in Cycles
    else:
        raise ValueError(f"Render engine must be one of {', '.join(ENGINES)}; got {engine!r}.")


def _set_movie_output(scene) -> None:
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0+: the file format list depends on the media type
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format = "MPEG4"
    ffmpeg.codec = "H264"
    ffmpeg.constant_rate_factor = "MEDIUM"
    ffmpeg.ffmpeg_preset = "GOOD"
    ffmpeg.audio_codec = "NONE"


def _set_png_output(scene) -> None:
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    settings.color_mode = "RGB"
    settings.compression = 15


def render_mp4(scene, out_path: Path) -> Path:
    """Render the scene's frame range to an H.264 MP4 at ``out_path`` through Blender's FFmpeg output."""
    _set_movie_output(scene)
    scene.render.use_file_extension = False
    scene.render.filepath = str(out_path)
    bpy.ops.render.render(animation=True)
    if not out_path.is_file() or out_path.stat().st_size == 0:
        raise RuntimeError(f"Blender's FFmpeg output did not write {out_path.name}.")
    return out_path


def _read_png(path: Path) -> np.ndarray:
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = image.size
        pixels = np.empty(w * h * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    rgb = pixels.reshape(h, w, 4)[::-1, :, :3]  # Blender stores rows bottom-up
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def render_gif(scene, out_path: Path) -> Path:
    """Render about :data:`GIF_FPS` frames a second as PNGs into a temporary folder, then encode them as a GIF."""
    fps = scene.render.fps / scene.render.fps_base * scene.frame_step
    step = max(scene.frame_step, round(fps / GIF_FPS))
    delay_cs = max(2, round(100 * step / fps))
    _set_png_output(scene)
    with tempfile.TemporaryDirectory(prefix="temos-preview-") as folder:
        frames = []
        for frame in range(scene.frame_start, scene.frame_end + 1, step):
            scene.frame_set(frame)
            scene.render.filepath = os.path.join(folder, f"frame_{frame:05d}.png")
            bpy.ops.render.render(write_still=True)
            frames.append(_read_png(Path(scene.render.filepath)))
    write_gif(out_path, frames, delay_cs)
    return out_path


def sheet_frames(start: int, end: int, count: int = SHEET_FRAMES) -> list[int]:
    """``count`` frames evenly spaced from ``start`` to ``end`` (both included; fewer when the range is shorter)."""
    return sorted({int(round(f)) for f in np.linspace(start, end, count)})


def tile(images: list[np.ndarray], columns: int, gap: int = SHEET_GAP_PX) -> np.ndarray:
    """Equal-sized (H, W, 3) uint8 images → one (rows·H + gaps, columns·W + gaps, 3) sheet, row by row, on white."""
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    sheet = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), 255, np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = image
    return sheet


def write_png(path: Path, rgb: np.ndarray, scene=None) -> Path:
    """Save an (H, W, 3) uint8 image as a maximally compressed PNG through Blender's image writer (the pixels
    unchanged: the Standard view transform; ``scene``'s output settings are put back afterwards)."""
    scene = scene or bpy.context.scene
    settings, view = scene.render.image_settings, scene.view_settings
    saved = (settings.file_format, settings.color_mode, settings.compression, view.view_transform, view.look)
    media_type = getattr(settings, "media_type", None)  # Blender 5.0+: restored first, the format list depends on it
    h, w, _ = rgb.shape
    image = bpy.data.images.new("TEMOS Preview Sheet", w, h, alpha=False)
    try:
        _set_png_output(scene)
        settings.compression = 100
        view.view_transform, view.look = "Standard", "None"
        rgba = np.concatenate([rgb[::-1].astype(np.float32) / 255.0, np.ones((h, w, 1), np.float32)], axis=2)
        image.pixels.foreach_set(rgba.ravel())
        image.save_render(str(path), scene=scene)
    finally:
        bpy.data.images.remove(image)
        if media_type is not None:
            settings.media_type = media_type
        settings.file_format, settings.color_mode, settings.compression = saved[:3]
        view.view_transform, view.look = saved[3:]
    return path


def render_sheet(scene, out_path: Path) -> Path:
    """Render :func:`sheet_frames` of the scene's frame range and tile them into one PNG at ``out_path``."""
    _set_png_output(scene)
    with tempfile.TemporaryDirectory(prefix="temos-preview-") as folder:
        frames = []
        for frame in sheet_frames(scene.frame_start, scene.frame_end):
            scene.frame_set(frame)
            scene.render.filepath = os.path.join(folder, f"frame_{frame:05d}.png")
            bpy.ops.render.render(write_still=True)
            frames.append(_read_png(Path(scene.render.filepath)))
    return write_png(out_path, tile(frames, SHEET_COLUMNS), scene)


def render_preview(
    obj: bpy.types.Object, out_path: str | os.PathLike, engine: str = "workbench", resolution=RESOLUTION
) -> Path:
    """Build the preview of ``obj``'s takes in the current file and render it (format from the suffix)."""
    out_path = Path(out_path)
    fmt = out_path.suffix.lower().lstrip(".")
    if fmt not in PREVIEW_FORMATS:
        raise ValueError(f"Preview format must be one of {', '.join(PREVIEW_FORMATS)}; got {out_path.name!r}.")
    scene = bpy.context.scene
    build_preview_scene(obj, resolution)
    configure_render(scene, engine, resolution)
    render = {"mp4": render_mp4, "gif": render_gif, "png": render_sheet}[fmt]
    return render(scene, out_path)


# GIF -----------------------------------------------------------------------------------------------------------


def _palette(frames: list[np.ndarray], size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` most used colours (on a 5-bit-per-channel grid) and a lookup: grid cell → palette index."""
    cells = np.concatenate([(f[..., 0] >> 3).astype(np.int32) << 10 | (f[..., 1] >> 3).astype(np.int32) << 5 | (f[..., 2] >> 3) for f in frames[:: max(1, len(frames) // 8)]], axis=None)  # fmt: skip
    counts = np.bincount(cells.ravel(), minlength=1 << 15)
    used = np.argsort(counts)[::-1][:size]
    used = used[counts[used] > 0]
    grid = (
        np.stack([(np.arange(1 << 15) >> s) & 31 for s in (10, 5, 0)], axis=1).astype(np.float32) * 8 + 4
    )  # (32768, 3)
    palette = grid[used]
    lookup = np.empty(1 << 15, dtype=np.uint8)
    for chunk in range(0, 1 << 15, 4096):
        d = ((grid[chunk : chunk + 4096, None, :] - palette[None]) ** 2).sum(-1)
        lookup[chunk : chunk + 4096] = d.argmin(1)
    out = np.zeros((size, 3), dtype=np.uint8)
    out[: len(palette)] = np.clip(palette, 0, 255).astype(np.uint8)
    return out, lookup


def _lzw(indices: bytes, min_code_size: int = 8) -> bytes:
    """GIF's variable-width LZW (codes of 9…12 bits, clear code when the table is full), bits packed LSB first."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    code_size, next_code = min_code_size + 1, end + 1
    table: dict[int, int] = {}
    out = bytearray()
    bits, nbits = clear, code_size
    prefix = indices[0]
    for c in indices[1:]:
        key = prefix << 8 | c
        code = table.get(key)
        if code is not None:
            prefix = code
            continue
        bits |= prefix << nbits
        nbits += code_size
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
        if next_code < 4096:
            table[key] = next_code
            next_code += 1
            if next_code > 1 << code_size:
                code_size += 1
        else:
            bits |= clear << nbits
            nbits += code_size
            table.clear()
            code_size, next_code = min_code_size + 1, end + 1
        prefix = c
    bits |= prefix << nbits
    nbits += code_size
    if next_code >= 1 << code_size and code_size < 12:
        code_size += 1  # the decoder adds one more entry on reading the last code, and widens as it does
    bits |= end << nbits
    nbits += code_size
    while nbits > 0:
        out.append(bits & 0xFF)
        bits >>= 8
        nbits -= 8
    return bytes(out)


def _sub_blocks(data: bytes) -> bytes:
    return b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)) + b"\x00"


def write_gif(path: str | os.PathLike, frames: list[np.ndarray], delay_cs: int) -> Path:
    """Write (H, W, 3) uint8 ``frames`` as a looping GIF89a, ``delay_cs`` hundredths of a second per frame."""
    if not frames:
        raise ValueError("A GIF needs at least one frame.")
    h, w = frames[0].shape[:2]
    palette, lookup = _palette(frames)
    out = bytearray(b"GIF89a")
    out += w.to_bytes(2, "little") + h.to_bytes(2, "little") + bytes([0xF7, 0, 0])  # global table of 256 colours
    out += palette.tobytes()
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    previous = None
    for frame in frames:
        cells = (
            (frame[..., 0] >> 3).astype(np.int32) << 10
            | (frame[..., 1] >> 3).astype(np.int32) << 5
            | (frame[..., 2] >> 3)
        )
        index = lookup[cells]
        if previous is None:
            top, left, bottom, right = 0, 0, h, w
        else:
            changed = index != previous
            if changed.any():
                rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            else:
                top, bottom, left, right = 0, 1, 0, 1
        previous = index
        out += b"\x21\xf9\x04\x04" + int(delay_cs).to_bytes(2, "little") + b"\x00\x00"  # keep the frame below
        out += (
            b"\x2c" + b"".join(int(v).to_bytes(2, "little") for v in (left, top, right - left, bottom - top)) + b"\x00"
        )
        out += b"\x08" + _sub_blocks(_lzw(index[top:bottom, left:right].tobytes()))
    out += b"\x3b"
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


# Child process -------------------------------------------------------------------------------------------------


def render_preview_subprocess(
    blend: str | os.PathLike,
    armature: str,
    out_path: str | os.PathLike,
    engine: str = "auto",
    timeout_s: float = 600.0,
) -> str:
    """Render the preview of ``armature`` in ``blend`` in a child process; returns the engine that rendered it.

    ``engine="auto"`` tries Workbench and falls back to Cycles when the Workbench child fails (no OpenGL).
    Raises RuntimeError with the child's last output when no engine could render.
    """
    engines = ENGINES if engine == "auto" else (engine,)
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    module = __name__ if __name__ != "__main__" else "temos_blender.blender.preview"
    errors = []
    for candidate in engines:
        cmd = [sys.executable, "-m", module, str(blend), armature, str(out_path), "--engine", candidate]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            errors.append(f"{candidate}: took longer than {timeout_s:g} s")
            continue
        if proc.returncode == 0 and Path(out_path).is_file():
            return candidate
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        errors.append(f"{candidate}: exit status {proc.returncode}: {' | '.join(tail)}")
        Path(out_path).unlink(missing_ok=True)
    raise RuntimeError("The preview could not be rendered (" + "; ".join(errors) + ").")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the preview of an armature's takes from a .blend file.")
    parser.add_argument("blend")
    parser.add_argument("armature")
    parser.add_argument("out", help="output file: .mp4, .gif or .png (a sheet of frames)")
    parser.add_argument("--engine", choices=ENGINES, default="workbench")
    args = parser.parse_args(argv)
    bpy.ops.wm.open_mainfile(filepath=args.blend, load_ui=False)
    obj = bpy.data.objects.get(args.armature)
    if obj is None or obj.type != "ARMATURE":
        print(f"{args.blend} has no armature object '{args.armature}'.", file=sys.stderr)
        return 2
    render_preview(obj, args.out, args.engine)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # bpy 4.5 can hang at interpreter exit

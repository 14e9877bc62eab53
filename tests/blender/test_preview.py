"""The preview: stand-in bodies follow the bones, the camera frames every take, GIF frames decode back."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from temos_blender.blender import bake, preview  # noqa: E402

# A reference GIF decoder, written from the GIF89a specification independently of the encoder under test. -------


def _lzw_decode(data: bytes, min_code_size: int, n_pixels: int) -> list[int]:
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    pos = 0  # bit position

    def read(width: int) -> int:
        nonlocal pos
        value = 0
        for i in range(width):
            byte = data[(pos + i) >> 3]
            value |= ((byte >> ((pos + i) & 7)) & 1) << i
        pos += width
        return value

    out: list[int] = []
    table: list[list[int]] = []
    width = min_code_size + 1
    prev: list[int] | None = None
    while True:
        code = read(width)
        if code == clear:
            table = [[i] for i in range(clear)] + [[], []]
            width, prev = min_code_size + 1, None
            continue
        if code == end:
            break
        if prev is None:
            entry = table[code]
        elif code < len(table):
            entry = table[code]
            if len(table) < 4096:
                table.append(prev + entry[:1])
        else:
            assert code == len(table), f"code {code} beyond the table ({len(table)})"
            entry = prev + prev[:1]
            table.append(entry)
        out.extend(entry)
        prev = entry
        if len(table) == 1 << width and width < 12:
            width += 1
    assert len(out) == n_pixels, f"decoded {len(out)} pixels, expected {n_pixels}"
    return out


def _decode_gif(blob: bytes) -> tuple[list[np.ndarray], list[int], list[tuple[int, int, int, int]]]:
    """Composited frames (H, W, 3), delays (1/100 s) and each frame's rectangle (left, top, width, height)."""
    assert blob[:6] == b"GIF89a"
    w, h = int.from_bytes(blob[6:8], "little"), int.from_bytes(blob[8:10], "little")
    flags = blob[10]
    assert flags & 0x80, "expected a global colour table"
    n_colors = 2 << (flags & 7)
    palette = np.frombuffer(blob[13 : 13 + 3 * n_colors], dtype=np.uint8).reshape(-1, 3)
    pos = 13 + 3 * n_colors
    canvas = np.zeros((h, w), dtype=np.int64)
    frames, delays, rects = [], [], []
    delay = 0
    while True:
        block = blob[pos]
        if block == 0x3B:
            break
        if block == 0x21:  # extension: label, then sub-blocks
            label = blob[pos + 1]
            pos += 2
            body = b""
            while blob[pos]:
                body += blob[pos + 1 : pos + 1 + blob[pos]]
                pos += 1 + blob[pos]
            pos += 1
            if label == 0xF9:
                delay = int.from_bytes(body[1:3], "little")
            continue
        assert block == 0x2C, f"unexpected block {block:#x}"
        left, top, fw, fh = (int.from_bytes(blob[pos + 1 + 2 * i : pos + 3 + 2 * i], "little") for i in range(4))
        pos += 10
        min_code_size = blob[pos]
        pos += 1
        data = b""
        while blob[pos]:
            data += blob[pos + 1 : pos + 1 + blob[pos]]
            pos += 1 + blob[pos]
        pos += 1
        pixels = np.array(_lzw_decode(data, min_code_size, fw * fh)).reshape(fh, fw)
        canvas[top : top + fh, left : left + fw] = pixels
        frames.append(palette[canvas])
        delays.append(delay)
        rects.append((left, top, fw, fh))
    return frames, delays, rects


def test_gif_frames_decode_back_to_the_rendered_colours(tmp_path):
    rng = np.random.default_rng(3)
    colors = rng.integers(0, 256, size=(40, 3), dtype=np.uint8)
    noise = colors[rng.integers(0, 40, size=(90, 120))]  # incompressible enough to fill the LZW table (clear codes)
    flat = np.zeros((90, 120, 3), dtype=np.uint8) + colors[0]
    moved = flat.copy()
    moved[30:50, 70:85] = colors[5]  # only a small rectangle changes
    frames = [noise, flat, moved, moved]

    path = preview.write_gif(tmp_path / "t.gif", frames, delay_cs=10)
    decoded, delays, _ = _decode_gif(path.read_bytes())

    assert len(decoded) == len(frames)
    assert delays == [10] * len(frames)
    for got, want in zip(decoded, frames):
        # Colours go through a 5-bit-per-channel palette: each comes back within half a step.
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 4


def test_gif_stores_only_the_changed_rectangle(tmp_path):
    base = np.full((60, 80, 3), 200, dtype=np.uint8)
    changed = base.copy()
    changed[10:20, 30:35] = 20
    path = preview.write_gif(tmp_path / "r.gif", [base, changed], delay_cs=5)
    decoded, _, rects = _decode_gif(path.read_bytes())
    left, top, w, h = rects[1]
    assert rects[0] == (0, 0, 80, 60)
    assert (left, top, w, h) == (30, 10, 5, 10)


# Scenes ------------------------------------------------------------------------------------------------------------


def _chain_armature(name: str = "Rig"):
    """Three bones up the Z axis (1 m each) plus a tiny non-deforming helper bone."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for i, bone_name in enumerate(("hips", "chest", "head")):
        bone = arm.edit_bones.new(bone_name)
        bone.head, bone.tail = (0, 0, i), (0, 0, i + 1)
        bone.parent = parent
        parent = bone
    helper = arm.edit_bones.new("helper")
    helper.head, helper.tail = (0.5, 0, 0), (0.5, 0, 0.3)
    helper.use_deform = False
    bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return obj


def _bake_takes(obj, n_takes: int, frames: int = 20):
    """``n_takes`` takes that swing the chest about X and slide the hips along X by a different amount each."""
    with bake.GenerationBake(obj, scene_fps=30, start_frame=1) as gb:
        for k in range(n_takes):
            angle = np.linspace(0, 0.8 * (k + 1), frames)
            chest = np.stack([np.cos(angle / 2), np.sin(angle / 2), 0 * angle, 0 * angle], axis=1)
            hips_loc = np.zeros((frames, 3))
            hips_loc[:, 0] = np.linspace(0, 0.5 * k, frames)
            curves = bake.TakeCurves(30.0, {"chest": chest}, {"hips": hips_loc})
            meta = bake.TakeMetadata("a test motion", 7 + k, 1.0, frames / 30, "tiny-test", "0", k + 1, "g")
            gb.add(curves, meta, mute=k > 0)
        gb.commit()


@pytest.fixture
def empty_scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    return bpy.context.scene


def test_stand_in_has_one_capsule_per_deform_bone_and_follows_its_bone(empty_scene):
    obj = _chain_armature()
    stand_in = preview.add_stand_in(obj, "body", empty_scene.collection)
    assert sorted(g.name for g in stand_in.vertex_groups) == ["chest", "head", "hips"]  # the helper does not deform

    def head_capsule_centre():
        depsgraph = bpy.context.evaluated_depsgraph_get()
        evaluated = stand_in.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        group = stand_in.vertex_groups["head"].index
        points = [stand_in.matrix_world @ v.co for v in mesh.vertices if any(g.group == group for g in v.groups)]
        evaluated.to_mesh_clear()
        return np.mean(points, axis=0)

    def head_bone_middle():
        bone = obj.pose.bones["head"]
        return np.array(obj.matrix_world @ ((bone.head + bone.tail) / 2))

    rest = head_capsule_centre()
    assert np.allclose(rest, (0, 0, 2.5), atol=1e-5)
    obj.pose.bones["chest"].rotation_quaternion = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0)  # 90° about X
    bpy.context.view_layer.update()
    bent = head_capsule_centre()
    assert np.linalg.norm(bent - rest) > 1.0  # the head capsule swung with the chest ...
    assert np.allclose(bent, head_bone_middle(), atol=1e-4)  # ... and stayed on its bone


@pytest.mark.parametrize("transform", ["identity", "fbx_like"])
def test_preview_camera_sees_every_take_on_every_frame(empty_scene, transform):
    obj = _chain_armature()
    if transform == "fbx_like":  # an FBX import: Y-up bones under a +90° X rotation, centimetre bones scaled 0.01
        obj.rotation_euler = (np.pi / 2, 0.0, 0.0)
        obj.scale = (0.01, 0.01, 0.01)
    _bake_takes(obj, n_takes=3)
    start, end = preview.build_preview_scene(obj, resolution=(320, 240))
    assert (start, end) == (1, 20)
    rigs = [o for o in bpy.data.collections[preview.PREVIEW_COLLECTION].objects if o.type == "ARMATURE"]
    assert len(rigs) == 3
    labels = sorted(o.data.body for o in bpy.data.collections[preview.PREVIEW_COLLECTION].objects if o.type == "FONT")
    assert labels == ["a test motion", "take 1", "take 2", "take 3"]
    camera = empty_scene.camera
    for frame in (start, (start + end) // 2, end):
        empty_scene.frame_set(frame)
        for rig in rigs:
            for pose_bone in (b for b in rig.pose.bones if b.bone.use_deform):
                for point in (pose_bone.head, pose_bone.tail):
                    x, y, depth = world_to_camera_view(empty_scene, camera, rig.matrix_world @ point)
                    assert 0 <= x <= 1 and 0 <= y <= 1 and depth > 0, (rig.name, pose_bone.name, frame, x, y)
    xs = [rig.matrix_world.translation.x for rig in rigs]
    height = 3.0 * max(obj.scale)
    assert xs == sorted(xs) and min(np.diff(xs)) > 0.15 * height, xs  # side by side, in take order, apart


def test_preview_refuses_an_armature_without_takes(empty_scene):
    obj = _chain_armature()
    with pytest.raises(ValueError, match="has no takes"):
        preview.build_preview_scene(obj)


def _render_two_takes_in_a_child(folder, name: str) -> str:
    """Two 12-frame takes on a chain armature, saved and rendered to ``folder``/``name`` by the child process."""
    obj = _chain_armature()
    _bake_takes(obj, n_takes=2, frames=12)
    blend = folder / "takes.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
    return preview.render_preview_subprocess(blend, obj.name, folder / name, timeout_s=140)


@pytest.mark.timeout(300, method="thread")
def test_gif_preview_renders_in_a_child_process(empty_scene, tmp_path):
    assert _render_two_takes_in_a_child(tmp_path, "preview.gif") in preview.ENGINES
    frames, delays, _ = _decode_gif((tmp_path / "preview.gif").read_bytes())
    assert len(frames) == 4  # 12 frames at 30 fps, one GIF frame every 3rd (10 fps)
    assert frames[0].shape == (240, 320, 3)
    assert delays == [10] * 4
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 3  # background, floor, bodies, labels: not blank


def test_sheet_frames_span_the_range_evenly_and_tiles_keep_every_pixel():
    assert preview.sheet_frames(1, 121) == [1, 25, 49, 73, 97, 121]
    assert preview.sheet_frames(1, 3) == [1, 2, 3]  # a short range gives fewer frames, never repeats
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (5, 7, 3), dtype=np.uint8) for _ in range(5)]
    sheet = preview.tile(images, columns=3, gap=2)
    assert sheet.shape == (2 * 5 + 3 * 2, 3 * 7 + 4 * 2, 3)
    np.testing.assert_array_equal(sheet[2:7, 2:9], images[0])
    np.testing.assert_array_equal(sheet[9:14, 11:18], images[4])  # second row, second column
    assert (sheet[9:14, 20:27] == 255).all()  # the missing sixth frame stays blank


def test_png_written_through_blender_reads_back_exactly(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    path = preview.write_png(tmp_path / "sheet.png", rgb)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(preview._read_png(path), rgb)


@pytest.mark.timeout(300, method="thread")
def test_png_sheet_renders_six_moments_of_the_takes_in_a_child_process(empty_scene, tmp_path):
    assert _render_two_takes_in_a_child(tmp_path, "sheet.png") in preview.ENGINES
    sheet = preview._read_png(tmp_path / "sheet.png")
    gap, (w, h) = preview.SHEET_GAP_PX, preview.RESOLUTION
    assert sheet.shape == (2 * h + 3 * gap, 3 * w + 4 * gap, 3)  # 6 frames, 3 to a row
    first = sheet[gap : gap + h, gap : gap + w]
    last = sheet[2 * gap + h : 2 * gap + 2 * h, 3 * gap + 2 * w : 3 * gap + 3 * w]
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 3  # background, floor, bodies, labels: not blank
    assert (first != last).any(axis=-1).mean() > 0.001  # the takes moved between the first and the last frame


def test_writing_a_png_puts_the_scenes_output_settings_back(empty_scene, tmp_path):
    settings = empty_scene.render.image_settings
    settings.file_format, settings.compression = "JPEG", 40
    empty_scene.view_settings.view_transform = "Filmic" if bpy.app.version < (4, 0, 0) else "AgX"
    before = (settings.file_format, settings.compression, empty_scene.view_settings.view_transform)
    preview.write_png(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8), empty_scene)
    assert (settings.file_format, settings.compression, empty_scene.view_settings.view_transform) == before

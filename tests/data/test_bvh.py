"""The BVH reader: channel orders, position channels, end sites, frame time; checked against Blender's importer."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from temos_blender.data.bvh import BvhError, parse_bvh, read_bvh
from temos_blender.rotations import euler_to_matrix

SMALL = """HIERARCHY
ROOT Hips
{
  OFFSET 1 2 3
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 10 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT Hand
    {
      OFFSET 0 5 0
      CHANNELS 4 Yposition Zrotation Yrotation Xrotation
      End Site
      {
        OFFSET 0 0 2
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0 0 0 0  0 0 0  7 0 0 0
1 2 3 90 0 0  0 90 0  7 10 20 30
"""


def test_small_file_reads_hierarchy_channels_and_frame_time():
    m = parse_bvh(SMALL)
    assert m.names == ["Hips", "Arm", "Hand"]
    assert m.parents.tolist() == [-1, 0, 1]
    assert m.rotation_orders == ["ZXY", "XYZ", "ZYX"]
    assert m.frame_time == pytest.approx(0.04) and m.num_frames == 2
    assert np.allclose(m.end_sites[2], [0, 0, 2])


def test_position_channels_replace_the_offset_and_missing_axes_keep_it():
    m = parse_bvh(SMALL)
    assert np.allclose(m.local_translations[1, 0], [1, 2, 3])  # root channels replace OFFSET (1, 2, 3)
    assert np.allclose(m.local_translations[0, 2], [0, 7, 0])  # Hand: only Y given; X and Z keep the OFFSET's 0, 0


def test_rotation_channels_compose_in_listed_order():
    m = parse_bvh(SMALL)
    expected = euler_to_matrix(np.deg2rad(np.array([10.0, 20.0, 30.0])), "ZYX")
    assert np.allclose(m.local_rotations[1, 2], expected)
    # Root turned 90° about Z: the arm (OFFSET +X) points along +Y in the world.
    pos, _ = m.forward_kinematics()
    assert np.allclose(pos[1, 1] - pos[1, 0], [0, 10, 0], atol=1e-9)


def test_truncated_motion_is_reported_with_the_file_name():
    with pytest.raises(BvhError, match="broken.bvh"):
        parse_bvh(SMALL.replace("7 10 20 30", "7 10"), source="broken.bvh")


def test_gzip_and_plain_files_read_alike(data_dir, tmp_path):
    gz = data_dir / "bandai_namco" / "dataset-2" / "dataset-2_wave-right-hand_normal_001.bvh.gz"
    plain = tmp_path / "clip.bvh"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    a, b = read_bvh(gz), read_bvh(plain)
    assert a.names == b.names and np.array_equal(a.local_rotations, b.local_rotations)


def _blender_world_heads(path_bvh, frames):
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(
        filepath=str(path_bvh), global_scale=1.0, frame_start=1, use_fps_scale=False, rotate_mode="NATIVE",
        axis_forward="-Z", axis_up="Y",
    )  # fmt: skip
    obj = bpy.context.object
    out = {}
    for f in frames:
        bpy.context.scene.frame_set(f + 1)
        out[f] = {pb.name: np.array(obj.matrix_world @ pb.head) for pb in obj.pose.bones}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


@pytest.mark.parametrize(
    "relpath",
    [
        "bandai_namco/dataset-2/dataset-2_walk_normal_001.bvh.gz",
        "bandai_namco/dataset-1/dataset-1_walk-back_normal_001.bvh.gz",
        "cmu_bvh/131_02.bvh.gz",
        "cmu_bvh/07_01.bvh.gz",
    ],
)
def test_reader_matches_blenders_importer(data_dir, tmp_path, relpath):
    src = data_dir / relpath
    plain = tmp_path / "clip.bvh"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    ours = read_bvh(src)
    pos, _ = ours.forward_kinematics()
    frames = [0, ours.num_frames // 2, ours.num_frames - 1]
    blender = _blender_world_heads(plain, frames)
    for f in frames:
        for j, name in enumerate(ours.names):
            x, y, z = pos[f, j]
            # Blender's importer with axis_forward=-Z, axis_up=Y maps the file's (x, y, z) to (x, -z, y).
            assert np.allclose(blender[f][name], [x, -z, y], atol=1e-3), (f, name, blender[f][name], pos[f, j])

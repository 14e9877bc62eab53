import json

import numpy as np
import pytest
from retarget_rigs import build_rig

from temos_blender.retarget.armature import Armature, RigError, armature_from_head_tail_roll
from temos_blender.retarget.bone_map import (
    BoneMap,
    CustomProp,
    bone_map_from_preset,
    detect_bone_map,
    guess_bone_map,
    list_presets,
    load_preset,
)
from temos_blender.skeleton import SMPL_JOINTS

MIXAMO = {
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
    "left_collar": "LeftShoulder", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "left_foot": "LeftToeBase",
}  # fmt: skip
CMU = {**MIXAMO, "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1"}
UE = {
    "pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_03", "spine3": "spine_05", "neck": "neck_01",
    "head": "head", "left_collar": "clavicle_l", "left_shoulder": "upperarm_l", "left_elbow": "lowerarm_l",
    "left_wrist": "hand_l", "left_hip": "thigh_l", "left_knee": "calf_l", "left_ankle": "foot_l", "left_foot": "ball_l",
}  # fmt: skip
RIGIFY = {
    "pelvis": "spine_fk", "spine1": "spine_fk.001", "spine2": "spine_fk.002", "spine3": "spine_fk.003",
    "neck": "neck", "head": "head", "left_collar": "shoulder.L", "left_shoulder": "upper_arm_fk.L",
    "left_elbow": "forearm_fk.L", "left_wrist": "hand_fk.L", "left_hip": "thigh_fk.L", "left_knee": "shin_fk.L",
    "left_ankle": "foot_fk.L", "left_foot": "toe_fk.L",
}  # fmt: skip
BIPED = {
    "pelvis": "Bip01 Pelvis", "spine1": "Bip01 Spine", "spine2": "Bip01 Spine1", "spine3": "Bip01 Spine2",
    "neck": "Bip01 Neck", "head": "Bip01 Head", "left_collar": "Bip01 L Clavicle", "left_shoulder": "Bip01 L UpperArm",
    "left_elbow": "Bip01 L Forearm", "left_wrist": "Bip01 L Hand", "left_hip": "Bip01 L Thigh",
    "left_knee": "Bip01 L Calf", "left_ankle": "Bip01 L Foot", "left_foot": "Bip01 L Toe0",
}  # fmt: skip


def _named(
    table: dict[str, str],
    right=lambda name: name.replace("Left", "Right").replace("_l", "_r").replace(".L", ".R").replace(" L ", " R "),
):
    def names(joint: str) -> str:
        if joint.startswith("right_") and joint not in table:
            return right(table["left_" + joint[6:]])
        return table[joint]

    return names


def _rig(table, prefix="", missing=(), **kwargs) -> Armature:
    names = _named(table)
    return build_rig(names=lambda j: prefix + names(j), missing=missing, **kwargs).armature


def _with_bones(arm: Armature, extra: list[tuple[str, str | None]]) -> Armature:
    """The same armature plus small bones ``(name, parent)`` at the origin."""
    names = list(arm.bone_names) + [n for n, _ in extra]
    parents = [arm.bone_names[p] if p >= 0 else None for p in arm.parents] + [p for _, p in extra]
    heads = np.concatenate([arm.heads, np.zeros((len(extra), 3))])
    tails = np.concatenate([arm.tails, np.tile([0.0, 0.0, 0.1], (len(extra), 1))])
    return armature_from_head_tail_roll(arm.name, names, parents, heads, tails)


def test_every_preset_is_valid_json_naming_only_known_joints():
    assert set(list_presets()) >= {"smpl", "mixamo", "rigify", "ue5", "cmu_bvh"}
    for name in list_presets():
        data = load_preset(name)
        assert set(data["joints"]) == set(SMPL_JOINTS), name
        assert all(isinstance(c, list) and c for c in data["joints"].values()), name


@pytest.mark.parametrize(
    ("table", "prefix", "preset"),
    [
        ({j: j for j in SMPL_JOINTS}, "", "smpl"),
        (MIXAMO, "mixamorig:", "mixamo"),
        (MIXAMO, "", "mixamo"),
        (MIXAMO, "mixamorig7:", "mixamo"),
        (CMU, "", "cmu_bvh"),
        (UE, "", "ue5"),
        (RIGIFY, "", "rigify"),
    ],
)
def test_detection_picks_the_preset_that_maps_every_joint(table, prefix, preset):
    bone_map = detect_bone_map(_rig(table, prefix))
    assert bone_map.source == f"preset:{preset}"
    assert bone_map.num_mapped == 22, bone_map.missing_joints
    assert bone_map.status().endswith(": 22/22 joints mapped")


def test_smpl_preset_reads_the_capitalised_style_with_a_model_prefix():
    caps = {
        "pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck", "head": "Head",
        "left_collar": "L_Collar", "left_shoulder": "L_Shoulder", "left_elbow": "L_Elbow", "left_wrist": "L_Wrist",
        "left_hip": "L_Hip", "left_knee": "L_Knee", "left_ankle": "L_Ankle", "left_foot": "L_Foot",
    }  # fmt: skip
    arm = build_rig(names=lambda j: "m_avg_" + (caps[j] if j in caps else "R_" + caps["left_" + j[6:]][2:])).armature
    bone_map = detect_bone_map(arm)
    assert (bone_map.source, bone_map.num_mapped) == ("preset:smpl", 22)
    assert bone_map.joints["left_shoulder"] == "m_avg_L_Shoulder"  # SMPL's "shoulder" is the upper arm


def test_ue4_mannequin_with_three_spine_bones_maps_spine3_to_spine_03():
    ue4 = {**UE, "spine2": "spine_02", "spine3": "spine_03"}
    bone_map = bone_map_from_preset(_rig(ue4), "ue5")
    assert bone_map.joints["spine2"] == "spine_02" and bone_map.joints["spine3"] == "spine_03"
    assert bone_map.num_mapped == 22


def test_ue5_mannequin_distributes_the_spine_over_its_five_bones():
    rename = {"spine1_mid": "spine_02", "spine2_mid": "spine_04", "root": "root"}
    arm = build_rig(names=_named(UE), extra_spine=True, root_bone=True, rename=rename).armature
    bone_map = detect_bone_map(arm)
    assert bone_map.source == "preset:ue5"
    assert bone_map.spine_chain == [
        "pelvis",
        "spine_01",
        "spine_02",
        "spine_03",
        "spine_04",
        "spine_05",
        "neck_01",
        "head",
    ]
    assert (bone_map.joints["spine2"], bone_map.joints["spine3"]) == ("spine_03", "spine_05")


def test_rigify_preset_switches_limbs_to_fk_and_moves_the_torso():
    arm = build_rig(names=_named(RIGIFY), root_bone=True, rename={"root": "torso"}).armature
    arm = _with_bones(arm, [("thigh_parent.L", "torso"), ("thigh_parent.R", "torso"), ("upper_arm_parent.L", "torso"),
                            ("upper_arm_parent.R", "torso"), ("DEF-spine", "spine_fk"), ("DEF-spine.001", "spine_fk.001")])  # fmt: skip
    bone_map = detect_bone_map(arm)
    assert bone_map.source == "preset:rigify"
    assert bone_map.root_bone == "torso"
    assert bone_map.points == {"pelvis": "DEF-spine", "spine1": "DEF-spine.001"}
    ik_fk = {(p.bone, p.name): p.value for p in bone_map.custom_props}
    for bone in ("thigh_parent.L", "thigh_parent.R", "upper_arm_parent.L", "upper_arm_parent.R"):
        assert ik_fk[(bone, "IK_FK")] == 1.0
    assert ik_fk[("torso", "neck_follow")] == 1.0 and ik_fk[("torso", "head_follow")] == 1.0


def test_status_counts_missing_joints():
    bone_map = detect_bone_map(_rig(MIXAMO, "mixamorig:", missing=("left_collar", "right_collar")))
    assert bone_map.status() == "Mixamo preset: 20/22 joints mapped (missing: left_collar, right_collar)"


@pytest.mark.parametrize("table", [BIPED], ids=["3ds Max biped"])
def test_unknown_naming_is_guessed_from_names_and_hierarchy(table):
    arm = _rig(table, twist=True, fingers=True)
    bone_map = detect_bone_map(arm)
    assert bone_map.source == "guessed"
    want = {j: _named(table)(j) for j in SMPL_JOINTS}
    assert bone_map.joints == want
    assert bone_map.status() == "guessed from bone names: 22/22 joints mapped"


def test_guess_handles_a_two_bone_spine_and_shoulder_named_collars():
    table = {
        "pelvis": "Hips", "spine1": "Spine", "spine3": "Chest", "neck": "Neck", "head": "Head",
        "left_collar": "Shoulder_L", "left_shoulder": "UpperArm_L", "left_elbow": "LowerArm_L", "left_wrist": "Hand_L",
        "left_hip": "UpperLeg_L", "left_knee": "LowerLeg_L", "left_ankle": "Foot_L", "left_foot": "Toes_L",
    }  # fmt: skip
    names = _named(table, right=lambda n: n.replace("_L", "_R"))
    arm = build_rig(names=lambda j: names(j) if j != "spine2" else "unused", missing=("spine2",)).armature
    bone_map = guess_bone_map(arm)
    assert bone_map.joints == {j: names(j) for j in SMPL_JOINTS if j != "spine2"}
    assert bone_map.spine_chain == ["Hips", "Spine", "Chest", "Neck", "Head"]


def test_guess_calls_a_lone_shoulder_bone_the_upper_arm():
    table = {
        "pelvis": "hips", "spine1": "spine", "spine2": "spine.001", "spine3": "chest", "neck": "neck", "head": "head",
        "left_shoulder": "shoulder.L", "left_elbow": "elbow.L", "left_wrist": "wrist.L",
        "left_hip": "hip.L", "left_knee": "knee.L", "left_ankle": "ankle.L", "left_foot": "toe.L",
    }  # fmt: skip
    names = _named(table)
    arm = build_rig(
        names=lambda j: names(j) if "collar" not in j else j, missing=("left_collar", "right_collar")
    ).armature
    bone_map = guess_bone_map(arm)
    assert bone_map.joints["left_shoulder"] == "shoulder.L" and bone_map.joints["right_shoulder"] == "shoulder.R"
    assert bone_map.joints["left_hip"] == "hip.L" and bone_map.joints["pelvis"] == "hips"


def test_bone_map_json_round_trip():
    bone_map = BoneMap(
        joints={"pelvis": "hips", "left_hip": "thigh.L"},
        root_bone="root",
        points={"pelvis": "DEF-hips"},
        spine_chain=["hips", "spine"],
        custom_props=[CustomProp("thigh_parent.L", "IK_FK", 1.0)],
        source="preset:rigify",
    )
    text = bone_map.to_json()
    assert json.loads(text)["joints"] == {"pelvis": "hips", "left_hip": "thigh.L"}
    assert BoneMap.from_json(text) == bone_map
    assert BoneMap.from_json(detect_bone_map(_rig(MIXAMO)).to_json()) == detect_bone_map(_rig(MIXAMO))


def test_edits_that_break_the_map_are_refused_with_the_reason():
    with pytest.raises(RigError, match="unknown keys \\['bones'\\]"):
        BoneMap.from_dict({"joints": {}, "bones": {}})
    with pytest.raises(RigError, match="unknown joints \\['hand'\\]"):
        BoneMap({"hand": "Hand"})
    with pytest.raises(RigError, match="mapped to both pelvis and spine1"):
        BoneMap({"pelvis": "Hips", "spine1": "Hips"})


def test_problems_name_bones_the_rig_lacks():
    arm = _rig(MIXAMO)
    bone_map = BoneMap({"pelvis": "Hips", "left_hip": "mixamorig:LeftUpLeg"})
    assert bone_map.problems(arm) == ["Bone 'mixamorig:LeftUpLeg' (for left_hip) is not on armature 'Synthetic'."]
    with pytest.raises(RigError, match="Choose a bone-map preset or map the bones by hand"):
        bone_map.check(arm)
    assert BoneMap({"left_hip": "LeftUpLeg"}).problems(arm) == [
        "No bone is mapped to 'pelvis'; map the rig's hip/pelvis bone to it."
    ]

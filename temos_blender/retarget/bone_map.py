"""Which rig bone each of the 22 SMPL joints drives: presets, auto-detection, and the map as plain editable data.

A :class:`BoneMap` is plain data (JSON round trip with :meth:`BoneMap.to_json` / :meth:`BoneMap.from_json`), so the
UI can show it and the user can edit it:

- ``joints``: SMPL joint name → bone name. Unmapped joints are simply absent: their rotation ends up in the next
  mapped bone below them (see :mod:`.retarget`).
- ``root_bone``: the bone whose ``location`` carries the root motion (default: the pelvis bone). It must be the
  pelvis bone or one of its ancestors.
- ``points``: joint → bone whose *rest head* is where that joint sits on the rig, when that is not the mapped
  bone's head (Rigify's lower spine controls hang downwards from the torso pivot, so their heads are not the joints).
- ``spine_chain``: the rig's trunk bones from pelvis to head, bottom to top. Unmapped bones in it between two mapped
  ones share the bend between them (spine distribution) and are keyed too.
- ``custom_props``: custom properties to set on pose bones so the keyed bones drive the rig (Rigify's IK/FK switches).

Presets are JSON files in ``presets/``; each joint lists candidate bone names, the first one present (and not used
by an earlier joint) wins. Names also match ignoring case, a namespace (``mixamorig1:Hips`` matches ``Hips``) and the
preset's ``strip_prefixes``. :func:`detect_bone_map` picks the preset that maps the most joints and falls back to
:func:`guess_bone_map` (bone names + hierarchy) when no preset fits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_JOINTS, SMPL_PARENTS
from .armature import Armature, RigError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESET_FORMAT = 1
MIN_PRESET_JOINTS = 12
"""A preset that maps fewer joints than this is not trusted; the name/hierarchy guess is tried as well."""


@dataclass(frozen=True)
class CustomProp:
    """A custom property to set on a pose bone before the keys can drive the rig."""

    bone: str
    """Pose bone that holds the property."""
    name: str
    """Property name, e.g. ``IK_FK``."""
    value: float
    """Value to set (Rigify: ``IK_FK`` = 1.0 means FK)."""


@dataclass
class BoneMap:
    """SMPL joint → rig bone, plus what the rig needs to follow the keys. Plain data; edit freely."""

    joints: dict[str, str]
    """SMPL joint name → bone name, for the mapped joints only."""
    root_bone: str | None = None
    """Bone whose ``location`` carries the root motion; None: the pelvis bone."""
    points: dict[str, str] = field(default_factory=dict)
    """Joint → bone whose rest head marks that joint on the rig, where it is not the mapped bone's head."""
    spine_chain: list[str] = field(default_factory=list)
    """Trunk bones, pelvis to head, bottom to top; unmapped ones between mapped ones share the bend."""
    custom_props: list[CustomProp] = field(default_factory=list)
    """Pose-bone custom properties to set (Rigify's IK/FK switches)."""
    source: str = ""
    """Where the map came from: ``preset:<name>``, ``guessed`` or empty (made by hand)."""

    def __post_init__(self):
        unknown = [j for j in self.joints if j not in JOINT_INDEX]
        if unknown:
            raise RigError(f"Bone map names unknown joints {unknown}; joints are {', '.join(SMPL_JOINTS)}")
        unknown = [j for j in self.points if j not in JOINT_INDEX]
        if unknown:
            raise RigError(f"Bone map 'points' names unknown joints {unknown}")
        used: dict[str, str] = {}
        for joint, bone in self.joints.items():
            if bone in used:
                raise RigError(f"Bone '{bone}' is mapped to both {used[bone]} and {joint}; map each bone once")
            used[bone] = joint
        self.custom_props = [p if isinstance(p, CustomProp) else CustomProp(**p) for p in self.custom_props]

    # ------------------------------------------------------------------------------------------ reading
    @property
    def num_mapped(self) -> int:
        return len(self.joints)

    @property
    def missing_joints(self) -> list[str]:
        """SMPL joints without a bone, in skeleton order."""
        return [j for j in SMPL_JOINTS if j not in self.joints]

    def status(self) -> str:
        """One line for the UI, e.g. ``"Mixamo preset: 21/22 joints mapped (missing: left_collar)"``."""
        head = f"{self.num_mapped}/{NUM_JOINTS} joints mapped"
        if self.missing_joints:
            head += f" (missing: {', '.join(self.missing_joints)})"
        if self.source.startswith("preset:"):
            name = self.source.split(":", 1)[1]
            label = load_preset(name).get("label", name) if name in list_presets() else name
            return f"{label} preset: {head}"
        if self.source == "guessed":
            return f"guessed from bone names: {head}"
        return head

    def pelvis_bone(self) -> str:
        if "pelvis" not in self.joints:
            raise RigError("The bone map has no bone for 'pelvis'; map the rig's hip/pelvis bone to it")
        return self.joints["pelvis"]

    def root_motion_bone(self) -> str:
        return self.root_bone or self.pelvis_bone()

    def point_bone(self, joint: str) -> str:
        """The bone whose rest head marks ``joint`` on the rig."""
        return self.points.get(joint, self.joints[joint])

    def problems(self, armature: Armature) -> list[str]:
        """What does not fit ``armature``, in words; empty when the map can be used."""
        out = []
        names = set(armature.bone_names)
        for joint, bone in self.joints.items():
            if bone not in names:
                out.append(f"Bone '{bone}' (for {joint}) is not on armature '{armature.name}'.")
        for joint, bone in self.points.items():
            if bone not in names:
                out.append(f"Bone '{bone}' (position of {joint}) is not on armature '{armature.name}'.")
        if self.root_bone is not None and self.root_bone not in names:
            out.append(f"Root bone '{self.root_bone}' is not on armature '{armature.name}'.")
        out += [f"Spine bone '{b}' is not on armature '{armature.name}'." for b in self.spine_chain if b not in names]
        if "pelvis" not in self.joints:
            out.append("No bone is mapped to 'pelvis'; map the rig's hip/pelvis bone to it.")
        elif not out and self.root_bone is not None and self.root_bone != self.joints["pelvis"]:
            root, pelvis = armature.index[self.root_bone], armature.index[self.joints["pelvis"]]
            if not armature.is_ancestor(root, pelvis):
                out.append(f"Root bone '{self.root_bone}' must be the pelvis bone or one of its parents.")
        return out

    def check(self, armature: Armature) -> None:
        """Raise :class:`RigError` listing every problem of this map on ``armature``."""
        problems = self.problems(armature)
        if problems:
            raise RigError(" ".join(problems), "Choose a bone-map preset or map the bones by hand.")

    # ------------------------------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        return {
            "format": PRESET_FORMAT,
            "joints": dict(self.joints),
            "root_bone": self.root_bone,
            "points": dict(self.points),
            "spine_chain": list(self.spine_chain),
            "custom_props": [{"bone": p.bone, "name": p.name, "value": p.value} for p in self.custom_props],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict) -> BoneMap:
        data = dict(data)
        version = data.pop("format", PRESET_FORMAT)
        if version != PRESET_FORMAT:
            raise RigError(f"Bone map format {version} is not supported (this version reads format {PRESET_FORMAT})")
        allowed = {"joints", "root_bone", "points", "spine_chain", "custom_props", "source"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RigError(f"Bone map has unknown keys {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> BoneMap:
        return cls.from_dict(json.loads(text))


# ---------------------------------------------------------------------------------------------- presets
@cache
def list_presets() -> tuple[str, ...]:
    """Names of the shipped presets (file stems in ``presets/``)."""
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.json")))


@cache
def _load_preset_text(name: str) -> str:
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise RigError(f"No bone-map preset '{name}'; presets are {', '.join(list_presets())}")
    return path.read_text(encoding="utf-8")


def load_preset(name: str) -> dict:
    """The preset's JSON as a dict (a fresh copy)."""
    data = json.loads(_load_preset_text(name))
    if data.get("format") != PRESET_FORMAT:
        raise RigError(f"Preset '{name}' has format {data.get('format')}; expected {PRESET_FORMAT}")
    return data


def _normalize(name: str, strip_prefixes: tuple[str, ...] = ()) -> str:
    key = name.rsplit(":", 1)[-1].lower()
    for prefix in strip_prefixes:
        if key.startswith(prefix.lower()):
            key = key[len(prefix) :]
            break
    return key


class _NameMatcher:
    """Finds a rig bone for a list of candidate names: exact, then ignoring case/namespace/prefixes."""

    def __init__(self, armature: Armature, strip_prefixes=()):
        self.names = set(armature.bone_names)
        self.strip = tuple(strip_prefixes)
        self.by_key: dict[str, list[str]] = {}
        for bone in armature.bone_names:
            self.by_key.setdefault(_normalize(bone, self.strip), []).append(bone)
        self.used: set[str] = set()

    def find(self, candidates: list[str]) -> str | None:
        for name in candidates:
            if name in self.names and name not in self.used:
                return name
        for name in candidates:
            hits = [b for b in self.by_key.get(_normalize(name, self.strip), []) if b not in self.used]
            if len(hits) == 1:
                return hits[0]
        return None


def bone_map_from_preset(armature: Armature, preset: str) -> BoneMap:
    """Resolve preset ``preset`` against the armature's bone names (joints whose bones are absent stay unmapped)."""
    data = load_preset(preset)
    match = _NameMatcher(armature, data.get("strip_prefixes", ()))
    joints: dict[str, str] = {}
    for joint, candidates in data["joints"].items():
        bone = match.find(candidates)
        if bone is not None:
            joints[joint] = bone
            match.used.add(bone)
    joints = {j: joints[j] for j in SMPL_JOINTS if j in joints}
    free = _NameMatcher(armature, data.get("strip_prefixes", ()))
    root = free.find(data.get("root_bone", []))
    points = {}
    for joint, candidates in data.get("points", {}).items():
        bone = free.find(candidates)
        if bone is not None and joint in joints:
            points[joint] = bone
    chain = [b for b in (free.find(c) for c in data.get("spine_chain", [])) if b is not None]
    props = [CustomProp(**p) for p in data.get("custom_props", []) if p["bone"] in match.names]
    if root is not None and "pelvis" in joints and root != joints["pelvis"]:
        if not armature.is_ancestor(armature.index[root], armature.index[joints["pelvis"]]):
            root = None
    return BoneMap(joints, root, points, chain, props, source=f"preset:{preset}")


def detect_bone_map(armature: Armature) -> BoneMap:
    """The best bone map for ``armature``: the preset mapping the most joints, or a guess from names and hierarchy
    when no preset maps at least :data:`MIN_PRESET_JOINTS` joints (the guess is kept only if it maps more)."""
    best: BoneMap | None = None
    for name in list_presets():
        candidate = bone_map_from_preset(armature, name)
        if "pelvis" not in candidate.joints:
            continue
        if best is None or candidate.num_mapped > best.num_mapped:
            best = candidate
    if best is not None and best.num_mapped >= MIN_PRESET_JOINTS:
        return best
    guess = guess_bone_map(armature)
    if best is None or guess.num_mapped > best.num_mapped:
        return guess
    return best


# ---------------------------------------------------------------------------------------------- guessing
_IGNORE_TOKENS = frozenset(
    "ik pole target twist roll nub end tip helper ctrl ctl mch org tweak socket prop weapon eye eyes jaw tongue "
    "breast pectoral ear hair corrective correct".split()
)
_FINGER = re.compile(r"finger|thumb|index|middle|ring|pinky|pinkie|little|carpal")
_ROLE_PATTERNS = (  # first match wins, on the name with side tokens removed
    ("head", re.compile(r"head")),
    ("neck", re.compile(r"neck")),
    ("toe", re.compile(r"toe|ball")),
    ("foot", re.compile(r"foot|ankle")),
    ("thigh", re.compile(r"thigh|upleg|upperleg|hip$|hip\d|femur")),
    ("shin", re.compile(r"shin|calf|knee|lowerleg|leg")),
    ("hand", re.compile(r"hand|wrist")),
    ("forearm", re.compile(r"forearm|lowerarm|elbow|loarm")),
    ("collar", re.compile(r"clavicle|collar|shoulder|shldr")),
    ("upperarm", re.compile(r"upperarm|uparm|arm")),
    ("pelvis", re.compile(r"hips|pelvis|hip")),
    ("spine", re.compile(r"spine|chest|back|torso|abdomen|lumbar|thorax|waist|belly")),
)
_SIDE_TOKENS = {"l": "L", "left": "L", "r": "R", "right": "R"}


def _tokens(name: str) -> list[str]:
    name = name.rsplit(":", 1)[-1]
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name)
    return [t for t in re.split(r"[^A-Za-z0-9]+", name.lower()) if t]


def _split_side(tokens: list[str]) -> tuple[str, list[str]]:
    side = "C"
    rest = []
    for t in tokens:
        if t in _SIDE_TOKENS and side == "C":
            side = _SIDE_TOKENS[t]
        elif (
            len(t) > 1
            and t[0] in "lr"
            and t[1:] in ("thigh", "shin", "foot", "toe", "hand", "collar", "shldr", "forearm")
        ):
            side, rest = _SIDE_TOKENS[t[0]], rest + [t[1:]]  # DAZ style: lThigh, rHand
        else:
            rest.append(t)
    return side, rest


def _role(name: str) -> tuple[str | None, str]:
    """(role, side) of a bone from its name; role None for bones the guess should ignore."""
    side, tokens = _split_side(_tokens(name))
    if any(t in _IGNORE_TOKENS for t in tokens):
        return None, side
    core = "".join(t for t in tokens if not t.isdigit() or len(tokens) == 1)
    if _FINGER.search(core):
        return None, side
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(core):
            if role == "pelvis" and side != "C":
                role = "thigh"  # "L_Hip" is the hip joint, not the pelvis
            return role, side
    return None, side


def guess_bone_map(armature: Armature) -> BoneMap:
    """A bone map from bone names (keywords, sides) checked against the hierarchy, for rigs no preset knows."""
    roles: dict[tuple[str, str], list[int]] = {}
    for i, name in enumerate(armature.bone_names):
        role, side = _role(name)
        if role is not None:
            roles.setdefault((role, side), []).append(i)
    depth = [len(armature.ancestors(i)) for i in range(armature.num_bones)]

    def pick(role: str, side: str, below: int | None = None) -> int | None:
        found = [i for i in roles.get((role, side), []) if below is None or armature.is_ancestor(below, i)]
        return min(found, key=lambda i: depth[i]) if found else None

    joints: dict[str, int] = {}
    legs: dict[str, list[int | None]] = {}
    for side, prefix in (("L", "left"), ("R", "right")):
        thigh = pick("thigh", side)
        shin = pick("shin", side, thigh) if thigh is not None else None
        foot = pick("foot", side, shin if shin is not None else thigh) if thigh is not None else None
        toe = pick("toe", side, foot) if foot is not None else None
        legs[side] = [thigh, shin, foot, toe]
        for joint, bone in zip(("hip", "knee", "ankle", "foot"), (thigh, shin, foot, toe)):
            if bone is not None:
                joints[f"{prefix}_{joint}"] = bone
        collar = pick("collar", side)
        upper = pick("upperarm", side, collar) if collar is not None else None
        if collar is not None and upper is None:
            # Only one shoulder-like bone above the elbow: it is the upper arm (SMPL calls it "shoulder").
            if pick("forearm", side, collar) is not None or pick("hand", side, collar) is not None:
                collar, upper = None, collar
        if upper is None:
            upper = pick("upperarm", side)
        fore = pick("forearm", side, upper) if upper is not None else None
        hand = pick("hand", side, fore if fore is not None else upper) if upper is not None else None
        for joint, bone in zip(("collar", "shoulder", "elbow", "wrist"), (collar, upper, fore, hand)):
            if bone is not None:
                joints[f"{prefix}_{joint}"] = bone

    pelvis = pick("pelvis", "C")
    thighs = [b for b in (legs["L"][0], legs["R"][0]) if b is not None]
    if thighs and (pelvis is None or not all(armature.is_ancestor(pelvis, t) for t in thighs)):
        common = set(armature.ancestors(thighs[0]))
        for t in thighs[1:]:
            common &= set(armature.ancestors(t))
        if common:
            pelvis = max(common, key=lambda i: depth[i])
    if pelvis is not None:
        joints["pelvis"] = pelvis
    neck = pick("neck", "C", pelvis)
    head = pick("head", "C", neck if neck is not None else pelvis)
    if neck is not None:
        joints["neck"] = neck
    if head is not None:
        joints["head"] = head

    chain: list[int] = []
    if pelvis is not None:
        top, spine_top_included = (neck, False) if neck is not None else (head, False)
        if top is None:  # no neck or head bone: the arms hang from the top of the spine
            arms = [joints.get(j) for j in ("left_collar", "right_collar", "left_shoulder", "right_shoulder")]
            arms = [a for a in arms if a is not None and armature.is_ancestor(pelvis, a)]
            top, spine_top_included = (armature.parents[arms[0]], True) if arms else (None, False)
        if top is not None and top != pelvis and armature.is_ancestor(pelvis, top):
            below_top = list(reversed(armature.ancestors(top)))
            between = below_top[below_top.index(pelvis) + 1 :] + ([top] if spine_top_included else [])
            spine = [b for b in between if _role(armature.bone_names[b])[0] in (None, "spine")]
            if len(spine) == 1:
                joints["spine3"] = spine[0]
            elif len(spine) == 2:
                joints["spine1"], joints["spine3"] = spine
            elif len(spine) >= 3:
                joints["spine1"], joints["spine2"], joints["spine3"] = spine[0], spine[len(spine) // 2], spine[-1]
            chain = [pelvis, *between]
            if not spine_top_included:
                chain.append(top)
            if top == neck and head is not None and armature.is_ancestor(neck, head):
                above = list(reversed(armature.ancestors(head)))
                chain += above[above.index(neck) + 1 :] + [head]
    names = armature.bone_names
    ordered = {j: names[joints[j]] for j in SMPL_JOINTS if j in joints}
    _drop_out_of_order(ordered, armature)
    return BoneMap(ordered, None, {}, [names[b] for b in chain] if len(chain) > 2 else [], [], source="guessed")


def _drop_out_of_order(joints: dict[str, str], armature: Armature) -> None:
    """Remove guesses whose bone does not sit below the bone of the nearest mapped SMPL ancestor joint."""
    for joint in SMPL_JOINTS:
        if joint not in joints:
            continue
        p = SMPL_PARENTS[JOINT_INDEX[joint]]
        while p >= 0 and SMPL_JOINTS[p] not in joints:
            p = SMPL_PARENTS[p]
        if p >= 0:
            parent_bone = armature.index[joints[SMPL_JOINTS[p]]]
            if not armature.is_ancestor(parent_bone, armature.index[joints[joint]]):
                del joints[joint]

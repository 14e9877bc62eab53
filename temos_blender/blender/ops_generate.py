"""Operators: Generate (non-blocking), Cancel, Add SMPL Armature, and the take browser.

Generate gathers the settings and the rig on the main thread, hands a :class:`~.jobs.GenerationPlan` to a
:class:`~.jobs.Job`, and polls it from a window-manager timer (``modal``), showing progress in the status bar, the
cursor and the panel. Only when the takes are back does it touch Blender data: it bakes them (a few takes per
timer tick), which is one undo step, and a failure while baking removes whatever that generation had added. Esc or Cancel stops it with
the scene exactly as it was. ``execute`` runs the same work synchronously: that is what background mode and scripts
get (timers never fire there).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .. import __version__
from ..errors import RigError, TemosError
from ..model_limits import limit_warnings
from ..retarget import retarget as retargeting
from ..retarget.armature import Armature
from ..retarget.armature import RigError as RigDataError
from ..retarget.axes import smpl_to_blender_positions
from ..retarget.bone_map import BoneMap, detect_bone_map
from ..skeleton import SMPL_JOINTS, SMPL_PARENTS, SMPL_REST_POSITIONS_M
from . import bake, compat, jobs, worker_client
from .preferences import get_preferences
from .props import MAX_TAKES

BUNDLED_MODEL_ID = "temos-cmu-kitml"
"""Equals ``core.weights.BUNDLED_MODEL_ID`` (kept here so the panel can find the model without importing torch)."""

TIMER_INTERVAL_S = 0.05
"""How often the modal operator polls the worker."""
BAKE_BUDGET_S = 0.01
"""Main-thread time one timer tick may spend baking takes before giving the UI back."""


# Inputs ----------------------------------------------------------------------------------------------------------


def bundled_model_folder() -> Path | None:
    """Same search as ``core.weights.bundled_model_folder``, without importing torch."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (
        package / "vendor_models" / BUNDLED_MODEL_ID,
        package.parent / "vendor_models" / BUNDLED_MODEL_ID,
    ):
        if (candidate / "config.json").is_file():
            return candidate
    return None


_config_cache: dict[tuple[str, float], dict] = {}


def model_folder(prefs) -> tuple[Path | None, str]:
    """(the folder of the model the preferences point at, and how to name it to the user; None and the reason when
    there is none)."""
    if prefs.model_dir:
        folder = Path(bpy.path.abspath(prefs.model_dir))
        return folder, f"Model folder '{folder}'"
    folder = bundled_model_folder()
    if folder is None:
        return None, (
            "No model: the bundled model is missing and no model folder is set. "
            "Set Model Folder in Edit › Preferences › Add-ons › TEMOS Motion."
        )
    return folder, f"Bundled model folder '{folder}'"


def model_config(prefs) -> tuple[dict | None, str]:
    """(config.json of the model the preferences point at, or None; the reason when None)."""
    folder, where = model_folder(prefs)
    if folder is None:
        return None, where
    path = folder / "config.json"
    if not path.is_file():
        return (
            None,
            f"{where} has no config.json. Choose a folder with config.json and model.safetensors in the preferences.",
        )
    key = (str(path), path.stat().st_mtime)
    if key not in _config_cache:
        try:
            _config_cache[key] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            return None, f"Cannot read {path}: {e}. Fix the file or choose another model folder."
    return _config_cache[key], ""


def default_cpu_threads() -> int:
    """torch's CPU threads when the preference is 0: every core but one, which stays free for Blender's UI."""
    return max(1, (os.cpu_count() or 2) - 1)


def model_settings(prefs) -> jobs.ModelSettings:
    return jobs.ModelSettings(
        model_dir=bpy.path.abspath(prefs.model_dir) if prefs.model_dir else "",
        text_model_dir=bpy.path.abspath(prefs.text_model_dir) if prefs.text_model_dir else "",
        device=prefs.device.lower(),
        threads=int(prefs.cpu_threads) or default_cpu_threads(),
    )


def rig_problem(obj: bpy.types.Object | None) -> str:
    """Why takes cannot be written onto ``obj`` (empty string when they can)."""
    if obj is None:
        return "No armature to put the takes on. Select one, pick it under Armature, or click Add SMPL Armature."
    if obj.type != "ARMATURE":
        return f"'{obj.name}' is not an armature. Pick an armature under Armature."
    if obj.library is not None:
        return (
            f"Armature '{obj.name}' is linked from '{obj.library.filepath}' and cannot be animated here. "
            "Make it local (Object › Relations › Make Local) first."
        )
    if obj.override_library is not None:
        return (
            f"Armature '{obj.name}' is a library override; TEMOS writes takes onto local armatures only. "
            "Make it local (Object › Library Override › Make Local) first."
        )
    if obj.mode == "EDIT":
        return f"Armature '{obj.name}' is in Edit Mode. Switch to Object or Pose Mode first."
    return ""


def request_problem(prompt: str, duration_s: float, n_takes: int, config: dict | None) -> str:
    """Why these inputs cannot be generated (empty string when they can). Mirrors ``GenerateRequest.validated``."""
    if not prompt.strip():
        return "The prompt is empty. Type what the character should do, e.g. 'a person walks forward and waves'."
    if not 1 <= n_takes <= MAX_TAKES:
        return f"Number of takes must be between 1 and {MAX_TAKES}; got {n_takes}."
    low, high = (config.get("min_duration_s", 1.0), config.get("max_duration_s", 10.0)) if config else (0.0, math.inf)
    if duration_s <= 0 or not low <= duration_s <= high:
        span = f"between {low:g} and {high:g} s" if config else "more than 0 s"
        return f"Duration must be {span}; got {duration_s:g} s."
    return ""


def generate_blocker(context) -> str:
    """The reason Generate cannot run now, in words for the user; empty when it can. The panel shows it."""
    if current_run() is not None:
        return "A generation is running. Wait for it or press Cancel."
    props = context.scene.temos
    config, reason = model_config(get_preferences(context))
    if config is None:
        return reason
    obj = props.target(context)
    problem = rig_problem(obj) or request_problem(props.prompt, props.duration_s, props.n_takes, config)
    if problem:
        return problem
    return rig_status(obj).problem


def prompt_warnings(context) -> list[str]:
    """What the model was measured not to make that the prompt asks for (the model folder's limits.json), one
    sentence each; empty when nothing. Warnings, not blockers: the takes are still made."""
    folder, _ = model_folder(get_preferences(context))
    prompt = context.scene.temos.prompt
    if folder is None or not prompt.strip():
        return []
    return limit_warnings(prompt, folder)


# The rig and its bone map ---------------------------------------------------------------------------------------


@dataclass
class RigBinding:
    """An armature read into plain data with the bone map to use on it: what the worker retargets onto."""

    armature: Armature | None
    bone_map: BoneMap | None
    problem: str = ""
    """Why takes cannot go onto this rig with this map (empty when they can)."""

    @property
    def status_text(self) -> str:
        return self.bone_map.status() if self.bone_map is not None else "no bone map"

    def retarget(self, take, in_place: bool, keep_heading: bool, foot_cleanup: bool):
        """Put ``take`` on the rig (numpy only: runs on the worker)."""
        options = retargeting.RetargetOptions(
            in_place=in_place, face_rig_forward=keep_heading, clean_foot_contacts=foot_cleanup
        )
        try:
            return retargeting.retarget(take, self.armature, self.bone_map, options)
        except RigDataError as e:
            raise RigError(str(e), "Check the bone map in the TEMOS panel.") from None

    @staticmethod
    def to_curves(result, obj: bpy.types.Object) -> bake.TakeCurves:
        """A ``RetargetResult`` as what :mod:`.bake` writes. Custom properties the rig lacks are left out."""
        bones = obj.pose.bones
        props = {
            (p.bone, p.name): float(p.value) for p in result.custom_props if p.bone in bones and p.name in bones[p.bone]
        }
        return bake.TakeCurves(
            fps=result.fps, rotations=result.rotations, locations=result.locations, bone_properties=props
        )

    def store(self, obj: bpy.types.Object, overwrite: bool = False) -> None:
        """Save the bone map on the armature (only if it has none, unless ``overwrite``)."""
        if self.bone_map is not None and (overwrite or not obj.temos_rig.has_map()):
            obj.temos_rig.set_bone_map(self.bone_map)


def bind_rig(obj: bpy.types.Object, redetect: bool = False) -> RigBinding:
    """Read ``obj`` and pick its bone map: the one stored on it, else a detected one (``redetect``: always)."""
    from .rig_io import armature_from_object

    try:
        armature = armature_from_object(obj)
        stored = None if redetect else obj.temos_rig.to_bone_map()
        bone_map = stored if stored is not None else detect_bone_map(armature)
    except RigDataError as e:
        return RigBinding(None, None, f"{e} Fix the bone map in the TEMOS panel.")
    problems = bone_map.problems(armature)
    if problems:
        return RigBinding(armature, bone_map, " ".join(problems) + " Fix the bone map in the TEMOS panel.")
    try:
        retargeting.rest_alignment(armature, bone_map)
    except (RigDataError, ValueError) as e:
        return RigBinding(armature, bone_map, f"{e}")
    return RigBinding(armature, bone_map)


_status_cache: dict[tuple, RigBinding] = {}


def rig_status(obj: bpy.types.Object) -> RigBinding:
    """:func:`bind_rig` for drawing: cached while the bones, their parents and the stored map stay the same."""
    arm = obj.data
    key = (
        obj.as_pointer(),
        tuple((b.name, b.parent.name if b.parent else "", b.use_connect) for b in arm.bones),
        tuple((i.joint, i.bone) for i in obj.temos_rig.bone_map),
        obj.temos_rig.root_bone,
    )
    if key not in _status_cache:
        if len(_status_cache) > 32:
            _status_cache.clear()
        _status_cache[key] = bind_rig(obj)
    return _status_cache[key]


def create_smpl_armature(context, name: str = "SMPL") -> bpy.types.Object:
    """An armature with SMPL's 22 joints as bones (SMPL names, Blender Z-up, facing -Y) and a stand-in body mesh."""
    rest = smpl_to_blender_positions(SMPL_REST_POSITIONS_M)  # (22, 3) joint positions, Blender axes
    tails = _smpl_bone_tails(rest)
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    context.collection.objects.link(obj)
    for other in context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for j, joint in enumerate(SMPL_JOINTS):
            bone = arm.edit_bones.new(joint)
            bone.head, bone.tail, bone.roll = rest[j], tails[j], 0.0
            bones.append(bone)
        for j, p in enumerate(SMPL_PARENTS):
            if p >= 0:
                bones[j].parent = bones[p]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    arm.display_type = "STICK"
    body = _stand_in_body(obj, rest, tails, name + " body")
    context.collection.objects.link(body)
    return obj


_BONE_CHILD = {
    "pelvis": "spine1", "spine3": "neck", "left_collar": "left_shoulder", "right_collar": "right_shoulder",
}  # fmt: skip
"""For joints with several children, the one their bone points at."""
_LEAF_TAIL_M = {"head": (0.0, 0.0, 0.18), "left_foot": (0.0, -0.08, 0.0), "right_foot": (0.0, -0.08, 0.0)}
_LIMB_RADIUS_M = {"pelvis": 0.09, "spine1": 0.1, "spine2": 0.11, "spine3": 0.11, "neck": 0.05, "head": 0.09}


def _smpl_bone_tails(rest: np.ndarray) -> np.ndarray:
    tails = np.zeros_like(rest)
    for j, joint in enumerate(SMPL_JOINTS):
        children = [i for i, p in enumerate(SMPL_PARENTS) if p == j]
        if joint in _BONE_CHILD:
            tails[j] = rest[SMPL_JOINTS.index(_BONE_CHILD[joint])]
        elif children:
            tails[j] = rest[children[0]]
        elif joint in _LEAF_TAIL_M:
            tails[j] = rest[j] + _LEAF_TAIL_M[joint]
        else:  # wrists: continue the forearm by 8 cm
            direction = rest[j] - rest[SMPL_PARENTS[j]]
            tails[j] = rest[j] + 0.08 * direction / np.linalg.norm(direction)
    return tails


def _stand_in_body(rig: bpy.types.Object, heads: np.ndarray, tails: np.ndarray, name: str) -> bpy.types.Object:
    """One octahedron per bone, rigidly skinned to it, so the motion shows in the viewport and in renders."""
    verts, faces = [], []
    for head, tail, joint in zip(heads, tails, SMPL_JOINTS):
        axis = tail - head
        length = float(np.linalg.norm(axis))
        y = axis / length
        x = np.cross(y, (0.0, 0.0, 1.0) if abs(y[2]) < 0.9 else (1.0, 0.0, 0.0))
        x /= np.linalg.norm(x)
        z = np.cross(x, y)
        r = _LIMB_RADIUS_M.get(joint, min(0.06, 0.25 * length))
        ring = head + 0.2 * axis
        base = len(verts)
        verts += [head, ring + r * x, ring + r * z, ring - r * x, ring - r * z, tail]
        faces += [(base, base + 1 + i, base + 1 + (i + 1) % 4) for i in range(4)]
        faces += [(base + 5, base + 1 + (i + 1) % 4, base + 1 + i) for i in range(4)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(map(float, v)) for v in verts], [], faces)
    mesh.update()
    body = bpy.data.objects.new(name, mesh)
    body.parent = rig
    for j, joint in enumerate(SMPL_JOINTS):
        group = body.vertex_groups.new(name=joint)
        group.add(list(range(6 * j, 6 * j + 6)), 1.0, "REPLACE")
    modifier = body.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    body.hide_select = True
    return body


# One generation ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSpec:
    """What one Generate / Regenerate makes, decided on the main thread."""

    prompt: str
    duration_s: float
    seeds: tuple[int, ...]
    diversity: float
    start_frame: int
    in_place: bool
    keep_heading: bool
    foot_cleanup: bool
    replace_track: str = ""
    """Regenerate in place: the take track whose strip gets the new action (keeps its name and number)."""
    seed_to_settings: bool = False
    """Write the (randomly drawn) first seed back to the panel's Seed field when the takes are baked."""


def spec_from_scene(context) -> GenerationSpec:
    props = context.scene.temos
    n = int(props.n_takes)
    seed = random.randrange(0, 2**31 - MAX_TAKES) if props.random_seed else int(props.seed)
    return GenerationSpec(
        prompt=" ".join(props.prompt.split()),
        duration_s=float(props.duration_s),
        seeds=tuple(seed + i for i in range(max(n, 0))),
        diversity=float(props.diversity),
        start_frame=props.first_frame(context.scene),
        in_place=props.in_place,
        keep_heading=props.keep_heading,
        foot_cleanup=props.foot_cleanup,
        seed_to_settings=props.random_seed,
    )


def spec_from_take(take: bake.TakeRef, seed: int, replace_track: bool) -> GenerationSpec:
    meta = take.metadata
    return GenerationSpec(
        prompt=meta.prompt,
        duration_s=meta.duration_s,
        seeds=(int(seed),),
        diversity=meta.diversity,
        start_frame=int(round(take.strip.frame_start)),
        in_place=meta.in_place,
        keep_heading=meta.keep_heading,
        foot_cleanup=meta.foot_cleanup,
        replace_track=take.track.name if replace_track else "",
    )


class GenerationRun:
    """One generation, from inputs to baked takes. The operator drives it; tests can too.

    ``start()`` runs the work off the main thread and ``pump(context)`` (call it from a timer) returns "RUNNING"
    until the job ends, then bakes on the calling (main) thread, a slice per call, and returns "FINISHED",
    "CANCELLED" or "FAILED".
    ``run_blocking(context)`` does all of it at once.
    """

    def __init__(self, context, obj: bpy.types.Object, spec: GenerationSpec):
        prefs = get_preferences(context)
        self.scene_name = context.scene.name
        self.obj_name = obj.name
        self.spec = spec
        self.binding: RigBinding = bind_rig(obj)
        if self.binding.problem:
            raise ValueError(self.binding.problem)
        self.plan = jobs.GenerationPlan(
            prompt=spec.prompt,
            duration_s=spec.duration_s,
            seeds=spec.seeds,
            diversity=spec.diversity,
            model=model_settings(prefs),
            retarget=partial(
                self.binding.retarget, in_place=spec.in_place, keep_heading=spec.keep_heading,
                foot_cleanup=spec.foot_cleanup,
            ),
        )  # fmt: skip
        # With a Python Environment set, the worker process of that Python generates (see worker_client).
        python_env = bpy.path.abspath(prefs.python_env) if prefs.python_env else ""
        self.job = worker_client.make_job(self.plan, python_env)
        self.progress = jobs.Progress(0, worker_client.job_stage_count(self.plan, python_env), "starting")
        self.message = ""
        self.hint = ""
        self.baked: list[bake.BakedTake] = []
        self._baker: TakeBaker | None = None
        self.stages: list[str] = []
        """Every stage reported so far, in order."""

    # driving -------------------------------------------------------------------------------------------------

    def start(self) -> GenerationRun:
        self.job.start()
        return self

    def cancel(self) -> None:
        self.job.cancel()

    @property
    def baking(self) -> bool:
        """The worker is done and takes are being written (on the main thread)."""
        return self._baker is not None

    @property
    def fraction(self) -> float:
        return self.progress.step / max(self.progress.total, 1)

    @property
    def status_text(self) -> str:
        p = self.progress
        return f"TEMOS: {p.label} ({p.step + 1}/{p.total})"

    def pump(self, context, budget_s: float = BAKE_BUDGET_S) -> str:
        """Take the job's news; once it is done, bake takes for about ``budget_s`` per call (at least one).
        Returns RUNNING, FINISHED, CANCELLED or FAILED. Baking in slices keeps each call short, so the UI stays
        responsive while many takes go in."""
        if self.job.cancel_requested:
            if self._baker is not None:
                self._baker.rollback()
                self._baker = None
            self.message = "Generation cancelled; nothing was changed."
            return "CANCELLED"  # the worker stops at its next check; its result, if any, is dropped
        if self._baker is not None:
            deadline = time.perf_counter() + budget_s
            state = self._bake_step()
            while state == "RUNNING" and time.perf_counter() < deadline:
                state = self._bake_step()
            return state
        for message in self.job.poll():
            if isinstance(message, jobs.Progress):
                self.progress = message
                self.stages.append(message.label)
            elif isinstance(message, jobs.Failed):
                return self._failed(message)
            elif isinstance(message, jobs.Done):
                return self._start_baking(message.result)
        return "RUNNING"

    def run_blocking(self, context) -> str:
        final = self.job.run_blocking()
        if isinstance(final, jobs.Failed):
            return self._failed(final)
        state = self._start_baking(final.result)
        while state == "RUNNING":
            state = self._bake_step()
        return state

    def _failed(self, failed: jobs.Failed) -> str:
        self.message, self.hint = failed.message, failed.hint
        if failed.details:
            print(failed.details)
        return "CANCELLED" if failed.cancelled else "FAILED"

    # baking (main thread) ----------------------------------------------------------------------------------------

    def _start_baking(self, result) -> str:
        scene = bpy.data.scenes.get(self.scene_name)
        obj = bpy.data.objects.get(self.obj_name)
        if scene is None or obj is None or rig_problem(obj):
            self.message = f"Armature '{self.obj_name}' was removed or changed while generating; nothing was added."
            self.hint = rig_problem(obj) if obj is not None else ""
            return "FAILED"
        try:
            self._baker = TakeBaker(scene, obj, self.spec, self.binding, result)
        except Exception as e:
            return self._bake_failed(obj.name, e)
        self._report_bake_progress()
        return "RUNNING"

    def _bake_step(self) -> str:
        baker = self._baker
        try:
            done = baker.step()
        except Exception as e:  # everything this generation added is removed again
            baker.rollback()
            self._baker = None
            return self._bake_failed(baker.obj.name, e)
        if not done:
            self._report_bake_progress()
            return "RUNNING"
        self._baker = None
        self.baked = baker.baked
        names = ", ".join(b.track.name for b in self.baked[:2]) + (" …" if len(self.baked) > 2 else "")
        self.message = (
            f"Added {len(self.baked)} take{'s' if len(self.baked) != 1 else ''} to '{baker.obj.name}': {names}"
        )
        return "FINISHED"

    def _report_bake_progress(self) -> None:
        baker = self._baker
        label = f"bake take {len(baker.baked) + 1}/{len(baker.result)}" if baker.remaining else "bake"
        self.progress = jobs.Progress(self.progress.total - 1, self.progress.total, label)
        self.stages.append(label)

    def _bake_failed(self, obj_name: str, error: Exception) -> str:
        self.message = f"Baking the takes onto '{obj_name}' failed: {error}. Nothing was added."
        self.hint = "Check the bone map in the TEMOS panel."
        return "FAILED"


class TakeBaker:
    """Bakes ``[(take, retarget result)]`` onto ``obj`` as one generation, one take per :meth:`step`; if a step
    fails, :meth:`rollback` removes everything it had added.

    New takes are numbered after the highest existing "<prompt> · take N"; a replaced take keeps its number.
    When the last take is in, the bone map is stored on the armature and the first new take is auditioned.
    """

    def __init__(self, scene, obj, spec: GenerationSpec, binding: RigBinding, result):
        self.scene, self.obj, self.spec, self.binding, self.result = scene, obj, spec, binding, list(result)
        self.replace_track = None
        if spec.replace_track:
            ad = obj.animation_data
            self.replace_track = ad.nla_tracks.get(spec.replace_track) if ad else None
            if self.replace_track is None or bake.take_of_track(self.replace_track) is None:
                raise KeyError(f"the take track '{spec.replace_track}' is gone")
            self.numbers = [bake.take_of_track(self.replace_track).metadata.take_number]
        else:
            first = bake.next_take_number(obj, spec.prompt)
            self.numbers = list(range(first, first + len(self.result)))
        self.generation = uuid.uuid4().hex[:8]
        self.bake = bake.GenerationBake(obj, scene.render.fps / scene.render.fps_base, spec.start_frame)
        self.remaining = list(zip(self.numbers, self.result))

    @property
    def baked(self) -> list[bake.BakedTake]:
        return self.bake.baked

    def step(self) -> bool:
        """Bake the next take; after the last one, finish the generation. Returns True when all is done."""
        if self.remaining:
            number, (take, curves) = self.remaining.pop(0)
            spec = self.spec
            meta = bake.TakeMetadata(
                prompt=take.prompt, seed=int(take.seed), diversity=float(take.diversity),
                duration_s=float(spec.duration_s), model_id=take.model_id, addon_version=__version__,
                take_number=number, generation=self.generation, in_place=spec.in_place,
                keep_heading=spec.keep_heading, foot_cleanup=spec.foot_cleanup,
            )  # fmt: skip
            self.bake.add(self.binding.to_curves(curves, self.obj), meta, mute=True, replace=self.replace_track)
            return False
        scene, obj = self.scene, self.obj
        self.bake.commit()
        self.binding.store(obj)
        first = self.bake.baked[0].track
        audition(scene, obj, first)
        scene.temos.take_index = list(obj.animation_data.nla_tracks).index(first)
        if self.spec.seed_to_settings:
            scene.temos.seed = self.spec.seeds[0]
        return True

    def rollback(self) -> None:
        self.bake.rollback()


def bake_takes(scene, obj, spec: GenerationSpec, binding: RigBinding, result) -> list[bake.BakedTake]:
    """All of :class:`TakeBaker` at once (rolled back if any step fails)."""
    baker = TakeBaker(scene, obj, spec, binding, result)
    try:
        while not baker.step():
            pass
    except BaseException:
        baker.rollback()
        raise
    return baker.baked


_current: GenerationRun | None = None


def current_run() -> GenerationRun | None:
    """The generation running in the UI right now (there is at most one)."""
    return _current


# Take browser logic ----------------------------------------------------------------------------------------------


def _set_preview_range(scene, start: int, end: int, use: bool = True) -> None:
    # While the preview range is off, setting one end resets the other: switch it on, set both, then as asked.
    scene.use_preview_range = True
    if start > scene.frame_preview_end:
        scene.frame_preview_end = end
        scene.frame_preview_start = start
    else:
        scene.frame_preview_start = start
        scene.frame_preview_end = end
    scene.use_preview_range = use


def audition(scene, obj, track: bpy.types.NlaTrack) -> None:
    """Play only this take: solo its track, unmute it, mute the other takes, loop its frames in the preview range."""
    props = scene.temos
    for take in bake.takes_of(obj):
        take.track.mute = take.track != track
    track.mute = False
    track.is_solo = True
    strip = track.strips[0]
    if not props.audition_saved:
        props.saved_use_preview_range = scene.use_preview_range
        props.saved_preview_start = scene.frame_preview_start
        props.saved_preview_end = scene.frame_preview_end
        props.audition_saved = True
    _set_preview_range(scene, int(math.floor(strip.frame_start)), int(math.ceil(strip.frame_end)))


def end_audition(scene, obj, keep_names: set[str], remove_others: bool) -> int:
    """Clear solo, restore the preview range; takes named in ``keep_names`` (or marked kept) play, the others are
    removed (``remove_others``) or muted. Returns how many takes were removed."""
    props = scene.temos
    ad = obj.animation_data
    if ad is not None:
        for track in ad.nla_tracks:
            if track.is_solo:
                track.is_solo = False
    removed = 0
    for take in bake.takes_of(obj):
        if take.track.name in keep_names or take.action.get("temos_kept"):
            take.track.mute = False
        elif remove_others:
            bake.delete_take(obj, take.track)
            removed += 1
        else:
            take.track.mute = True
    if props.audition_saved:
        _set_preview_range(scene, props.saved_preview_start, props.saved_preview_end, props.saved_use_preview_range)
        props.audition_saved = False
    return removed


def push_to_action(obj, take: bake.TakeRef) -> None:
    """Make the take the armature's active action; a previous active action is stashed on a muted NLA track."""
    ad = obj.animation_data
    for track in ad.nla_tracks:
        if track.is_solo:
            track.is_solo = False  # a soloed track would silence the active action
    old_action, old_slot = ad.action, compat.active_slot(obj)
    slot = compat.strip_slot(take.strip)
    action = take.action
    ad.nla_tracks.remove(take.track)  # the take's action now lives on as the active action
    if old_action is not None and old_action != action:
        stash = ad.nla_tracks.new()
        stash.name = "[Action Stash]"
        compat.new_nla_strip(stash, old_action.name, int(old_action.frame_range[0]), old_action, old_slot)
        stash.mute = True
    compat.assign_action(obj, action, slot)
    action["temos_kept"] = True


def selected_take(context) -> bake.TakeRef | None:
    """The take selected in the panel's list, on the target armature."""
    props = context.scene.temos
    obj = props.target(context)
    if obj is None or obj.animation_data is None:
        return None
    tracks = obj.animation_data.nla_tracks
    if not 0 <= props.take_index < len(tracks):
        return None
    return bake.take_of_track(tracks[props.take_index])


# Operators -------------------------------------------------------------------------------------------------------


class _GenerationOperator:
    """Shared run loop of Generate and Regenerate: ``invoke`` starts the job, ``modal`` polls it, ``execute`` blocks."""

    _timer = None
    _run: GenerationRun | None = None

    @classmethod
    def poll(cls, context):
        if current_run() is not None:
            cls.poll_message_set("A generation is running. Wait for it or press Cancel.")
            return False
        return context.scene is not None

    def prepare(self, context) -> GenerationRun:
        """Check the inputs and build the run; raise ValueError with the message for the user."""
        raise NotImplementedError

    def _prepared(self, context) -> GenerationRun | None:
        try:
            return self.prepare(context)
        except (ValueError, KeyError, TemosError) as e:
            self.report({"ERROR"}, str(e).strip("'\""))
            return None

    def execute(self, context):
        run = self._prepared(context)
        if run is None:
            return {"CANCELLED"}
        return self._report_end(run, run.run_blocking(context))

    def invoke(self, context, event):
        global _current
        if bpy.app.background or context.window is None:
            return self.execute(context)
        run = self._prepared(context)
        if run is None:
            return {"CANCELLED"}
        try:
            _current = self._run = run.start()
        except TemosError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.progress_begin(0, run.progress.total)
        wm.modal_handler_add(self)
        context.workspace.status_text_set(run.status_text + " — Esc to cancel")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        run = self._run
        if event.type == "ESC" and event.value == "PRESS":
            run.cancel()
        elif event.type != "TIMER":
            # While the takes go in (a few ticks), hold other events back: an undo in between would pull the
            # half-written data from under the baker.
            return {"RUNNING_MODAL"} if run.baking else {"PASS_THROUGH"}
        before = run.progress
        state = run.pump(context)
        if state == "RUNNING":
            if run.progress != before:
                context.window_manager.progress_update(run.progress.step)
                context.workspace.status_text_set(run.status_text + " — Esc to cancel")
                _redraw_panels(context)
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        return self._report_end(run, state)

    def cancel(self, context):  # Blender ends the modal (file loaded, window closed)
        if self._run is not None:
            self._run.cancel()
        self._end_modal(context)

    def _end_modal(self, context) -> None:
        global _current
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        if _current is self._run:
            _current = None
        _redraw_panels(context)

    def _report_end(self, run: GenerationRun, state: str):
        if state == "FINISHED":
            self.report({"INFO"}, run.message)
            return {"FINISHED"}
        text = f"{run.message} {run.hint}".strip()
        self.report({"WARNING"} if state == "CANCELLED" else {"ERROR"}, text)
        return {"CANCELLED"}


def _redraw_panels(context) -> None:
    screen = context.screen
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


class TEMOS_OT_generate(_GenerationOperator, bpy.types.Operator):
    """Generate takes from the prompt onto the target armature (Esc cancels)"""

    bl_idname = "temos.generate"
    bl_label = "Generate Takes"
    bl_options = {"REGISTER", "UNDO"}

    def prepare(self, context) -> GenerationRun:
        props = context.scene.temos
        config, reason = model_config(get_preferences(context))
        if config is None:
            raise ValueError(reason)
        obj = props.target(context)
        problem = rig_problem(obj) or request_problem(props.prompt, props.duration_s, props.n_takes, config)
        if problem:
            raise ValueError(problem)
        for text in prompt_warnings(context):
            self.report({"WARNING"}, text)
        return GenerationRun(context, obj, spec_from_scene(context))


class TEMOS_OT_cancel(bpy.types.Operator):
    """Stop the running generation; the scene stays as it was"""

    bl_idname = "temos.cancel"
    bl_label = "Cancel Generation"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return current_run() is not None

    def execute(self, context):
        current_run().cancel()
        return {"FINISHED"}


class TEMOS_OT_add_smpl_armature(bpy.types.Operator):
    """Add an armature with SMPL's 22 joints, named as the SMPL bone-map preset expects, and a stand-in body"""

    bl_idname = "temos.add_smpl_armature"
    bl_label = "Add SMPL Armature"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode first.")
            return False
        return context.scene is not None

    def execute(self, context):
        obj = create_smpl_armature(context)
        context.scene.temos.armature = obj
        self.report({"INFO"}, f"Added armature '{obj.name}' with {len(SMPL_JOINTS)} SMPL bones.")
        return {"FINISHED"}


class TEMOS_OT_detect_bone_map(bpy.types.Operator):
    """Detect which bone follows which SMPL joint from the bone names, and store it on the armature"""

    bl_idname = "temos.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        problem = rig_problem(context.scene.temos.target(context))
        if problem:
            cls.poll_message_set(problem)
        return not problem

    def execute(self, context):
        obj = context.scene.temos.target(context)
        binding = bind_rig(obj, redetect=True)
        if binding.bone_map is None:
            self.report({"ERROR"}, binding.problem)
            return {"CANCELLED"}
        binding.store(obj, overwrite=True)
        self.report({"WARNING"} if binding.problem else {"INFO"}, f"{binding.status_text} on '{obj.name}'.")
        return {"FINISHED"}


class TEMOS_OT_edit_prompt(bpy.types.Operator):
    """Edit the prompt in a wide text field"""

    bl_idname = "temos.edit_prompt"
    bl_label = "Edit Prompt"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    prompt: StringProperty(name="Prompt", description="What the character should do")

    def invoke(self, context, event):
        self.prompt = context.scene.temos.prompt
        return context.window_manager.invoke_props_dialog(self, width=640)

    def draw(self, context):
        self.layout.prop(self, "prompt", text="")

    def execute(self, context):
        context.scene.temos.prompt = self.prompt
        return {"FINISHED"}


class _TakeOperator:
    """Acts on the take selected in the panel's list."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if current_run() is not None:
            cls.poll_message_set("A generation is running. Wait for it or press Cancel.")
            return False
        if selected_take(context) is None:
            cls.poll_message_set("Select a take in the list first.")
            return False
        return True


class TEMOS_OT_take_audition(_TakeOperator, bpy.types.Operator):
    """Play only this take: solo its track and loop its frames in the preview range"""

    bl_idname = "temos.take_audition"
    bl_label = "Audition Take"

    def execute(self, context):
        take = selected_take(context)
        obj = context.scene.temos.target(context)
        audition(context.scene, obj, take.track)
        context.scene.frame_set(int(take.strip.frame_start))
        return {"FINISHED"}


class TEMOS_OT_take_rename(_TakeOperator, bpy.types.Operator):
    """Rename the take (its action, NLA track and strip)"""

    bl_idname = "temos.take_rename"
    bl_label = "Rename Take"

    name: StringProperty(name="Name", description="New name of the take")

    def invoke(self, context, event):
        self.name = selected_take(context).action.name
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        name = self.name.strip()
        if not name:
            self.report({"ERROR"}, "The name is empty. Type a name for the take.")
            return {"CANCELLED"}
        take = selected_take(context)
        take.action.name = name
        take.track.name = take.action.name  # Blender may have added ".001" to keep action names unique
        take.strip.name = take.action.name
        return {"FINISHED"}


class TEMOS_OT_take_delete(_TakeOperator, bpy.types.Operator):
    """Delete the take's NLA track, and its action when nothing else uses it"""

    bl_idname = "temos.take_delete"
    bl_label = "Delete Take"

    def execute(self, context):
        take = selected_take(context)
        obj = context.scene.temos.target(context)
        name = take.track.name
        was_solo = take.track.is_solo
        bake.delete_take(obj, take.track)
        if was_solo:
            end_audition(context.scene, obj, set(), remove_others=False)
        props = context.scene.temos
        props.take_index = min(props.take_index, len(obj.animation_data.nla_tracks) - 1)
        self.report({"INFO"}, f"Deleted take '{name}'.")
        return {"FINISHED"}


class TEMOS_OT_take_keep(_TakeOperator, bpy.types.Operator):
    """Keep this take: leave it as a playing NLA strip, or push it into the armature's active action"""

    bl_idname = "temos.take_keep"
    bl_label = "Keep Take"

    mode: EnumProperty(
        name="Keep As",
        items=(
            ("STRIP", "Strip", "Leave the take on its NLA track, unmuted, marked as kept"),
            ("ACTION", "Active Action", "Make the take the armature's active action (a previous one is stashed)"),
        ),
        default="STRIP",
    )

    def execute(self, context):
        take = selected_take(context)
        obj = context.scene.temos.target(context)
        name = take.track.name
        if self.mode == "ACTION":
            end_audition(context.scene, obj, {name}, remove_others=False)
            push_to_action(obj, bake.take_of_track(obj.animation_data.nla_tracks[name]))
            self.report({"INFO"}, f"'{name}' is now the active action of '{obj.name}'.")
        else:
            take.action["temos_kept"] = True
            take.track.mute = False
            self.report({"INFO"}, f"Kept '{name}' as an NLA strip.")
        return {"FINISHED"}


class TEMOS_OT_take_regenerate(_GenerationOperator, bpy.types.Operator):
    """Generate this take again: with a new seed (replacing it), or exactly as it was made (as a new take)"""

    bl_idname = "temos.take_regenerate"
    bl_label = "Regenerate Take"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(
        name="Mode",
        items=(
            ("NEW_SEED", "New Seed", "Replace the take with a new sample of the same prompt and settings"),
            ("EXACT", "Exactly", "Add a new take from the stored prompt, seed, diversity and options"),
        ),
        default="NEW_SEED",
    )

    @classmethod
    def poll(cls, context):
        return _GenerationOperator.poll.__func__(cls, context) and _TakeOperator.poll.__func__(cls, context)

    def prepare(self, context) -> GenerationRun:
        take = selected_take(context)
        obj = context.scene.temos.target(context)
        config, reason = model_config(get_preferences(context))
        if config is None:
            raise ValueError(reason)
        problem = rig_problem(obj)
        if problem:
            raise ValueError(problem)
        if config.get("model_id", "") != take.metadata.model_id and self.mode == "EXACT":
            self.report(
                {"WARNING"},
                f"The take was made by model '{take.metadata.model_id}', the loaded one is "
                f"'{config.get('model_id', '')}': the result will differ.",
            )
        if self.mode == "EXACT":
            spec = spec_from_take(take, take.metadata.seed, replace_track=False)
        else:
            seed = random.randrange(0, 2**31 - 1)
            spec = spec_from_take(take, seed, replace_track=True)
        return GenerationRun(context, obj, spec)


class TEMOS_OT_bake_to_nla(bpy.types.Operator):
    """Finish auditioning: clear solo, restore the preview range, and keep the selected and kept takes as plain
    playing NLA strips"""

    bl_idname = "temos.bake_to_nla"
    bl_label = "Bake to NLA"
    bl_options = {"REGISTER", "UNDO"}

    remove_others: BoolProperty(
        name="Remove Other Takes",
        description="Delete the takes that are neither selected nor kept (otherwise they stay, muted)",
        default=False,
    )

    @classmethod
    def poll(cls, context):
        obj = context.scene.temos.target(context)
        if not bake.takes_of(obj):
            cls.poll_message_set("The target armature has no takes.")
            return False
        return current_run() is None

    def execute(self, context):
        obj = context.scene.temos.target(context)
        take = selected_take(context)
        keep = {take.track.name} if take is not None else set()
        removed = end_audition(context.scene, obj, keep, self.remove_others)
        props = context.scene.temos
        if take is not None and take.track.name in obj.animation_data.nla_tracks:
            props.take_index = list(obj.animation_data.nla_tracks).index(obj.animation_data.nla_tracks[take.track.name])
        self.report(
            {"INFO"}, f"Takes on '{obj.name}' are plain NLA strips now" + (f"; removed {removed}." if removed else ".")
        )
        return {"FINISHED"}


classes = (
    TEMOS_OT_generate,
    TEMOS_OT_cancel,
    TEMOS_OT_add_smpl_armature,
    TEMOS_OT_detect_bone_map,
    TEMOS_OT_edit_prompt,
    TEMOS_OT_take_audition,
    TEMOS_OT_take_rename,
    TEMOS_OT_take_delete,
    TEMOS_OT_take_keep,
    TEMOS_OT_take_regenerate,
    TEMOS_OT_bake_to_nla,
)


def shutdown() -> None:
    """The add-on is being disabled: stop a running generation and let the model's memory go."""
    global _current
    if _current is not None:
        _current.cancel()
        _current = None
    jobs.cancel_all()
    jobs.forget_model()
    worker_client.shutdown()

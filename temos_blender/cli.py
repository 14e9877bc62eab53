"""The command line: ``temos-blender generate`` (prompt → .blend with takes, exports, preview) and ``temos-blender rigs``.

It drives the add-on's own operators through the ``bpy`` module, exactly as the panel does: the add-on is enabled in
a background Blender session, the scene's ``scene.temos`` settings are filled in and ``bpy.ops.temos.generate()``
runs (synchronously, as every operator does in background mode). What the panel would refuse, the command refuses
with the panel's words.

    temos-blender generate "a person walks forward and waves" --takes 4 --duration 6 --seed 7 --out walk
    temos-blender generate --prompts prompts.txt --rig character.fbx --export bvh,fbx,glb --out batch
    temos-blender rigs character.fbx

Every output folder is built in a temporary folder beside ``--out`` and moved into place only when everything in
it was written: a failure leaves no partial output. Exit status: 0 done, 1 internal error, 2 bad arguments or input
(one line on stderr says which and what to do). Blender's own console output is hidden unless ``--verbose``; the
result (a summary, or JSON with ``--json``) is the only thing written to stdout.

This module imports only the standard library at the top: ``--help`` and argument errors never start Blender.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2

RIG_SUFFIXES = (".blend", ".fbx", ".bvh")
EXPORT_FORMATS = ("bvh", "fbx", "glb")
PREVIEW_CHOICES = ("mp4", "gif", "png", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_TAKES = 16
MANIFEST_NAME = "takes.json"
BATCH_MANIFEST_NAME = "batch.json"
BLEND_NAME = "takes.blend"
MANIFEST_FORMAT = 1


class UsageError(Exception):
    """Bad arguments or input: exit status 2 and this one-line message."""


# Arguments -------------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {text}")
    return value


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}; got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="temos-blender",
        description="Text-to-motion takes for Blender armatures (TEMOS), from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"temos-blender {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    gen = commands.add_parser(
        "generate",
        help="generate takes from a prompt: a .blend, one export per take and format, a manifest and a preview",
        description="Generate takes from a prompt onto a rig and write OUTDIR/takes.blend, one export per take "
        "and format, OUTDIR/takes.json and a preview. With --prompts, one subfolder per prompt.",
    )
    gen.add_argument("prompt", nargs="?", help="what the character should do, e.g. 'a person walks forward and waves'")
    gen.add_argument(
        "--prompts",
        metavar="FILE",
        help="a text file with one prompt per line (a batch; blank lines and lines starting with # are skipped)",
    )
    gen.add_argument(
        "--out", metavar="OUTDIR", required=True, help="output folder (must not exist or be empty, unless --overwrite)"
    )
    gen.add_argument("--overwrite", action="store_true", help="replace OUTDIR if it already holds files")
    gen.add_argument("--takes", type=_int_at_least(1), default=4, help=f"number of takes, 1–{MAX_TAKES} (default 4)")
    gen.add_argument(
        "--duration", type=_positive_float, default=5.0, metavar="SECONDS", help="length of every take (default 5)"
    )
    gen.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="seed of take 1; take i uses seed + i - 1 (default 0)"
    )
    gen.add_argument(
        "--diversity",
        type=float,
        default=1.0,
        help="0 = the average motion, 1 = the trained spread (default 1, at most 3)",
    )
    gen.add_argument(
        "--rig",
        default="smpl",
        metavar="smpl|PATH",
        help="'smpl' (a 22-bone SMPL armature) or a rig file: .blend, .fbx or .bvh (default smpl)",
    )
    gen.add_argument(
        "--armature",
        metavar="NAME",
        help="which armature object of the rig file gets the takes (needed when it has several)",
    )
    gen.add_argument(
        "--in-place", action="store_true", help="remove the travel over the ground (the character moves on the spot)"
    )
    gen.add_argument(
        "--fps", type=_positive_float, default=30.0, help="scene frame rate the takes are keyed at (default 30)"
    )
    gen.add_argument(
        "--model", metavar="DIR", help="model folder (config.json + model.safetensors); default: the bundled model"
    )
    gen.add_argument(
        "--text-model", metavar="DIR", help="text-model folder (Hugging Face format); default: the installed MiniLM-L6"
    )
    gen.add_argument(
        "--export",
        default="bvh,fbx,glb",
        metavar="FORMATS",
        help="comma-separated export formats: bvh, fbx, glb, or 'none' (default bvh,fbx,glb)",
    )
    gen.add_argument(
        "--preview",
        choices=PREVIEW_CHOICES,
        default="mp4",
        help="preview of all takes side by side: a video (mp4, gif) or a sheet of six frames (png); default mp4",
    )
    gen.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the model runs (default auto: CUDA, then MPS, then CPU)",
    )
    gen.add_argument("--threads", type=_int_at_least(1), help="CPU threads for the model (default: torch's choice)")
    gen.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    gen.add_argument("--verbose", action="store_true", help="show Blender's console output and tracebacks")

    rigs = commands.add_parser(
        "rigs",
        help="list the bone-map presets, or show the bone map detected for a rig file",
        description="Without PATH: list the bone-map presets. With PATH (.blend, .fbx or .bvh): show, for each "
        "armature in it, which bone follows each SMPL joint as auto-detection finds it.",
    )
    rigs.add_argument("path", nargs="?", metavar="PATH", help="a rig file: .blend, .fbx or .bvh")
    rigs.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    rigs.add_argument("--verbose", action="store_true", help="show Blender's console output and tracebacks")
    return parser


@dataclass(frozen=True)
class GenerateOptions:
    """Checked arguments of ``generate`` (everything that can be checked without Blender or the model)."""

    prompts: tuple[str, ...]
    batch: bool
    """True with --prompts: one subfolder per prompt."""
    out: Path
    overwrite: bool
    takes: int
    duration_s: float
    seed: int
    diversity: float
    rig: str
    """'smpl' or the absolute path of a rig file."""
    armature: str | None
    in_place: bool
    fps: float
    model: str | None
    text_model: str | None
    exports: tuple[str, ...]
    preview: str
    device: str
    threads: int | None
    json: bool
    verbose: bool


def _rig_path(text: str) -> str:
    if text.lower() == "smpl":
        return "smpl"
    path = Path(text).expanduser()
    if path.suffix.lower() not in RIG_SUFFIXES:
        raise UsageError(f"--rig must be 'smpl' or a .blend, .fbx or .bvh file; got '{text}'.")
    if not path.is_file():
        raise UsageError(f"Rig file '{text}' does not exist.")
    return str(path.resolve())


def _read_prompts(path_text: str) -> tuple[str, ...]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UsageError(f"Prompts file '{path_text}' does not exist.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"Cannot read prompts file '{path_text}': {e}.") from None
    prompts = tuple(" ".join(line.split()) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not prompts:
        raise UsageError(f"Prompts file '{path_text}' has no prompts; write one prompt per line.")
    return prompts


def _model_folder(text: str | None, what: str, option: str) -> str | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    if not (path / "config.json").is_file():
        raise UsageError(f"{option}: {what} folder '{text}' has no config.json.")
    return str(path.resolve())


def check_generate_args(args: argparse.Namespace) -> GenerateOptions:
    """Validate ``generate``'s arguments; raises :class:`UsageError` with one line saying what is wrong."""
    if args.prompt is not None and args.prompts is not None:
        raise UsageError("Give either a PROMPT or --prompts FILE, not both.")
    if args.prompts is not None:
        prompts = _read_prompts(args.prompts)
    elif args.prompt is not None and args.prompt.strip():
        prompts = (" ".join(args.prompt.split()),)
    else:
        raise UsageError(
            'The prompt is empty. Give what the character should do, e.g. "a person walks forward and waves".'
        )
    if args.takes > MAX_TAKES:
        raise UsageError(f"--takes must be between 1 and {MAX_TAKES}; got {args.takes}.")
    if not 0.0 <= args.diversity <= 3.0:
        raise UsageError(f"--diversity must be between 0 and 3; got {args.diversity:g}.")
    if args.seed + args.takes > 2**31:
        raise UsageError(f"--seed must be below {2**31 - args.takes} for {args.takes} takes; got {args.seed}.")
    formats = tuple(dict.fromkeys(f.strip().lower() for f in args.export.split(",") if f.strip()))
    if formats == ("none",):
        formats = ()
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise UsageError(f"--export formats must be among {', '.join(EXPORT_FORMATS)} (or 'none'); got '{unknown[0]}'.")
    if args.armature is not None and args.rig.lower() == "smpl":
        raise UsageError("--armature picks an armature in a rig file; it needs --rig PATH.")
    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{args.out}' is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UsageError(f"--out '{args.out}' already holds files; choose a new folder or pass --overwrite.")
    if out.exists() and out == Path.cwd().resolve():
        raise UsageError("--out must not be the current folder; give a new folder.")
    return GenerateOptions(
        prompts=prompts,
        batch=args.prompts is not None,
        out=out,
        overwrite=bool(args.overwrite),
        takes=int(args.takes),
        duration_s=float(args.duration),
        seed=int(args.seed),
        diversity=float(args.diversity),
        rig=_rig_path(args.rig),
        armature=args.armature,
        in_place=bool(args.in_place),
        fps=float(args.fps),
        model=_model_folder(args.model, "model", "--model"),
        text_model=_model_folder(args.text_model, "text-model", "--text-model"),
        exports=formats,
        preview=args.preview,
        device=args.device,
        threads=args.threads,
        json=bool(args.json),
        verbose=bool(args.verbose),
    )


# Output folder ---------------------------------------------------------------------------------------------------


class StagedFolder:
    """A temporary folder beside ``target`` that becomes ``target`` on :meth:`commit`, or vanishes on failure.

    Parent folders that had to be created for it are removed again on failure too.
    """

    def __init__(self, target: Path):
        self.target = target
        missing = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        self._created_parents = missing  # deepest first
        self.path = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))

    def commit(self) -> Path:
        umask = os.umask(0)
        os.umask(umask)
        self.path.chmod(0o777 & ~umask)  # a temporary folder is private; the output is an ordinary folder
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            self.target.rename(old)
        self.path.rename(self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._created_parents = []
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        for folder in self._created_parents:
            with contextlib.suppress(OSError):
                folder.rmdir()


def slug(text: str, max_len: int = 40) -> str:
    """A file-name-safe lower-case stem of ``text``."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:max_len].rstrip("-") or "prompt"


# Blender session -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def console_to(stream_fd: int | None):
    """Send everything written to the process's stdout (Python and Blender's C code) to ``stream_fd`` (None: to
    nowhere) for the duration; stdout is kept for the command's result."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.open(os.devnull, os.O_WRONLY) if stream_fd is None else stream_fd
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        if stream_fd is None:
            os.close(target)


_user_resources: str | None = None
_registered_here = False
_addon_name = __package__
"""Module name of the add-on the command drives: this package, or an installed extension already enabled."""


def addon_module(name: str):
    """The add-on's submodule ``name`` (e.g. ``blender.jobs``) as the running add-on sees it: when an installed
    extension is driven, its modules (and its model cache) are not this package's."""
    return importlib.import_module(f"{_addon_name}.{name}")


def start_blender(register_addon: bool = True) -> str:
    """Import bpy (with Blender's user folders in a temporary folder unless BLENDER_USER_RESOURCES is set) and
    register the add-on from this package; returns the add-on's module name (its preferences' key)."""
    global _user_resources, _registered_here, _addon_name
    if "bpy" not in sys.modules and not os.environ.get("BLENDER_USER_RESOURCES"):
        _user_resources = tempfile.mkdtemp(prefix="temos-blender-user-")
        os.environ["BLENDER_USER_RESOURCES"] = _user_resources
    import bpy

    from . import register

    addons = bpy.context.preferences.addons
    for name in addons.keys():
        if name.endswith(".temos_blender"):
            _addon_name = name  # the installed extension is enabled in the user's own Blender folders: drive it
            return name
    if _registered_here or not register_addon:
        return __package__
    if addons.get(__package__) is None:
        addons.new().module = __package__  # where Blender keeps the add-on's preferences (as enabling would)
    register()
    _registered_here = True
    return __package__


def stop_blender() -> None:
    """Unregister what :func:`start_blender` registered (no timer or handler is left to hold up the exit)."""
    global _registered_here
    if _registered_here:
        from . import unregister

        with contextlib.suppress(Exception):
            unregister()
        _registered_here = False
    if _user_resources is not None:
        shutil.rmtree(_user_resources, ignore_errors=True)


def addon_preferences(module_name: str):
    import bpy

    return bpy.context.preferences.addons[module_name].preferences


def new_empty_scene(fps: float):
    """An empty file whose scene runs at ``fps``."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    if float(fps).is_integer():
        scene.render.fps, scene.render.fps_base = int(fps), 1.0
    else:
        scene.render.fps, scene.render.fps_base = max(1, round(fps * 100)), 100.0
    return scene


# Rigs ------------------------------------------------------------------------------------------------------------


def _armatures(objects) -> list:
    return [o for o in objects if o.type == "ARMATURE"]


def _drop_animation(objects) -> None:
    """Remove the active action and NLA tracks the rig file brought (drivers stay), then the actions nobody uses."""
    import bpy

    for obj in objects:
        ad = obj.animation_data
        if ad is None:
            continue
        ad.action = None
        for track in list(ad.nla_tracks):
            ad.nla_tracks.remove(track)
    for action in list(bpy.data.actions):
        if action.users == 0:
            bpy.data.actions.remove(action)


def _pick_armature(candidates: list, wanted: str | None, path: Path):
    names = sorted(o.name for o in candidates)
    if not candidates:
        raise UsageError(f"Rig file '{path.name}' has no armature.")
    if wanted is not None:
        for obj in candidates:
            if obj.name == wanted:
                return obj
        raise UsageError(f"Rig file '{path.name}' has no armature '{wanted}'; its armatures are: {', '.join(names)}.")
    if len(candidates) > 1:
        raise UsageError(
            f"Rig file '{path.name}' has {len(candidates)} armatures ({', '.join(names)}); pick one with --armature NAME."
        )
    return candidates[0]


def _rig_family(obj, all_objects) -> list:
    """``obj`` and the objects that belong with it: children (recursively) and meshes it deforms."""
    family = [obj]
    for other in all_objects:
        if other is obj:
            continue
        parent = other.parent
        while parent is not None and parent is not obj:
            parent = parent.parent
        deforms = any(m.type == "ARMATURE" and m.object == obj for m in getattr(other, "modifiers", ()))
        if parent is obj or deforms:
            family.append(other)
    return family


def import_rig_file(path: Path, wanted: str | None, all_armatures: bool = False):
    """Bring the rig file into the current (empty) scene; returns its armature object (or all, ``all_armatures``).

    .blend: the armature is appended with its children and the meshes it deforms; .fbx and .bvh go through
    Blender's importers. Animation the file carries is dropped: the output holds only generated takes.
    """
    import bpy

    scene = bpy.context.scene
    suffix = path.suffix.lower()
    before = set(bpy.data.objects)
    try:
        if suffix == ".blend":
            with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                dst.objects = list(src.objects)
            loaded = [o for o in dst.objects if o is not None]
        elif suffix == ".fbx":
            bpy.ops.import_scene.fbx(filepath=str(path), use_anim=False)
            loaded = [o for o in bpy.data.objects if o not in before]
        else:
            bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False, update_scene_duration=False)
            loaded = [o for o in bpy.data.objects if o not in before]
    except (RuntimeError, OSError) as e:
        raise UsageError(f"Cannot read rig file '{path.name}': {str(e).strip().splitlines()[-1]}") from None
    candidates = _armatures(loaded)
    chosen = candidates if all_armatures else [_pick_armature(candidates, wanted, path)]
    if not chosen:
        raise UsageError(f"Rig file '{path.name}' has no armature.")
    if suffix == ".blend":
        keep = {o for obj in chosen for o in _rig_family(obj, loaded)}
        for obj in loaded:
            if obj in keep:
                scene.collection.objects.link(obj)
        for obj in loaded:
            if obj not in keep and obj.users == 0:
                bpy.data.objects.remove(obj)
        _drop_animation(keep)
    else:
        _drop_animation(loaded)
    bpy.context.view_layer.update()
    return chosen if all_armatures else chosen[0]


def add_rig(options: GenerateOptions):
    """The armature that receives the takes, in the current scene."""
    import bpy

    if options.rig == "smpl":
        result = bpy.ops.temos.add_smpl_armature()
        if result != {"FINISHED"}:
            raise RuntimeError(f"Adding the SMPL armature returned {sorted(result)}.")
        return bpy.context.scene.temos.armature
    return import_rig_file(Path(options.rig), options.armature)


# One prompt ------------------------------------------------------------------------------------------------------


@dataclass
class Timings:
    """Wall time of each stage, seconds, summed over the prompts of a batch."""

    stages: dict[str, float] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    """How many times each stage ran."""

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds
        self.runs[name] = self.runs.get(name, 0) + 1

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.stages.items()}


def _progress_hook(on_stage):
    """Patch the add-on's job reporting so each stage of a blocking generation is seen as it starts (for timings
    and the progress bar); returns a function that undoes the patch."""
    jobs = addon_module("blender.jobs")
    original = jobs.Job._report

    def report(self, step, total, label):
        on_stage(label)
        return original(self, step, total, label)

    jobs.Job._report = report

    def undo():
        jobs.Job._report = original

    return undo


def set_model_preferences(module_name: str, options: GenerateOptions) -> None:
    """Point the add-on's preferences at the model, text model, device and threads of the command line."""
    prefs = addon_preferences(module_name)
    prefs.model_dir = options.model or ""
    prefs.text_model_dir = options.text_model or ""
    prefs.device = options.device.upper()
    prefs.cpu_threads = int(options.threads or 0)
    prefs.python_env = ""  # the model runs in this process, which has torch (no worker process)


def ensure_model_loaded(timings: Timings) -> None:
    """Load the model the preferences name into the add-on's model cache, once: the Generate operator reuses it for
    every prompt. A model or text model that cannot be loaded is an input error (exit status 2)."""
    import bpy

    jobs, ops_generate = addon_module("blender.jobs"), addon_module("blender.ops_generate")
    TemosError = addon_module("errors").TemosError  # noqa: N806 (the add-on's class, possibly an extension's)
    settings = ops_generate.model_settings(ops_generate.get_preferences(bpy.context))
    if jobs.model_is_loaded(settings):
        return
    with timings.stage("load"):
        try:
            jobs.cached_generator(settings)
        except TemosError as e:
            raise UsageError(str(e)) from None


def generate_one(prompt: str, options: GenerateOptions, folder: Path, timings: Timings, on_stage=None) -> dict:
    """One prompt → ``folder``/takes.blend, exports, preview and takes.json; returns the manifest."""
    import bpy

    from .blender import export, preview

    bake, ops_generate = addon_module("blender.bake"), addon_module("blender.ops_generate")

    new_empty_scene(options.fps)
    with timings.stage("rig"):
        obj = add_rig(options)
    scene = bpy.context.scene
    props = scene.temos
    props.armature = obj
    props.prompt = prompt
    props.duration_s = options.duration_s
    props.n_takes = options.takes
    props.random_seed = False
    props.seed = options.seed
    props.diversity = options.diversity
    props.in_place = options.in_place
    props.use_current_frame = False
    props.start_frame = 1
    bpy.context.view_layer.objects.active = obj
    blocker = ops_generate.generate_blocker(bpy.context)
    if blocker:
        raise UsageError(blocker)
    warnings = ops_generate.prompt_warnings(bpy.context)
    ensure_model_loaded(timings)

    stage_times: dict[str, float] = {}
    start = time.perf_counter()

    def seen(label: str) -> None:
        stage_times.setdefault(label, time.perf_counter())
        if on_stage is not None:
            on_stage(label)

    undo = _progress_hook(seen)
    try:
        result = bpy.ops.temos.generate()
    except RuntimeError as e:
        raise RuntimeError(f"Generation failed: {str(e).strip()}") from None
    finally:
        undo()
    end = time.perf_counter()
    if result != {"FINISHED"}:
        raise RuntimeError(f"The Generate operator returned {sorted(result)}.")
    bake_start = stage_times.get("retarget", end)
    timings.add("generate", bake_start - start)
    timings.add("retarget+bake", end - bake_start)

    takes = bake.takes_of(obj)[-options.takes :]
    if len(takes) != options.takes:
        raise RuntimeError(f"Generate made {len(takes)} takes; {options.takes} were asked for.")
    first = min(int(round(t.action.frame_range[0])) for t in takes)
    last = max(int(round(t.action.frame_range[1])) for t in takes)
    scene.frame_start, scene.frame_end = first, last

    with timings.stage("save"):
        bpy.ops.wm.save_as_mainfile(filepath=str(folder / BLEND_NAME), check_existing=False)

    entries = []
    with timings.stage("export"):
        for ref in takes:
            number = ref.metadata.take_number
            files = {}
            for fmt in options.exports:
                name = f"take_{number:02d}.{fmt}"
                export.export_take(obj, ref.action, fmt, folder / name)
                files[fmt] = name
            start_frame, end_frame = export.action_frame_range(ref.action)
            entries.append(
                {
                    "take": number,
                    "name": ref.action.name,
                    "seed": ref.metadata.seed,
                    "diversity": ref.metadata.diversity,
                    "duration_s": ref.metadata.duration_s,
                    "frame_start": start_frame,
                    "frame_end": end_frame,
                    "frames": end_frame - start_frame + 1,
                    "files": files,
                }
            )

    preview_name, engine = None, None
    if options.preview != "none":
        preview_name = f"preview.{options.preview}"
        with timings.stage("preview"):
            engine = preview.render_preview_subprocess(folder / BLEND_NAME, obj.name, folder / preview_name)
        if engine != "workbench":
            print(
                "temos-blender: note: Workbench cannot render here (no headless OpenGL), so the preview was rendered "
                "with Cycles, which is slower. On Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri.",
                file=sys.stderr,
            )

    meta = takes[0].metadata
    manifest = {
        "format": MANIFEST_FORMAT,
        "prompt": prompt,
        "model_id": meta.model_id,
        "model": options.model or "bundled",
        "addon_version": __version__,
        "blender_version": bpy.app.version_string,
        "rig": {"source": "smpl" if options.rig == "smpl" else Path(options.rig).name, "armature": obj.name},
        "fps": scene.render.fps / scene.render.fps_base,
        "duration_s": options.duration_s,
        "diversity": options.diversity,
        "in_place": options.in_place,
        "seeds": [e["seed"] for e in entries],
        "blend": BLEND_NAME,
        "preview": preview_name,
        "preview_engine": engine,
        "exports": list(options.exports),
        "warnings": warnings,
        "takes": entries,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def run_generate(options: GenerateOptions) -> dict:
    """The whole ``generate`` command; returns the result printed at the end. Raises UsageError or anything else."""
    from tqdm import tqdm

    timings = Timings()
    if not options.verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the text model's "Loading weights" bar
    staged = StagedFolder(options.out)
    try:
        with console_to(2 if options.verbose else None):
            set_model_preferences(start_blender(), options)
            manifests = []
            total = len(options.prompts)
            bar = tqdm(total=total, desc="prompts", unit="prompt", disable=None if total > 1 else True, file=sys.stderr)
            for i, prompt in enumerate(options.prompts):
                if options.batch:
                    sub = f"{i + 1:03d}_{slug(prompt)}"
                    folder = staged.path / sub
                    folder.mkdir()
                else:
                    sub, folder = "", staged.path
                bar.set_postfix_str(prompt[:40])
                manifest = generate_one(
                    prompt, options, folder, timings, on_stage=lambda label: bar.set_postfix_str(label)
                )
                manifest["folder"] = sub or "."
                manifests.append(manifest)
                bar.update(1)
            bar.close()
            if options.batch:
                batch = {
                    "format": MANIFEST_FORMAT,
                    "addon_version": __version__,
                    "prompts": [
                        {"prompt": m["prompt"], "folder": m["folder"], "manifest": f"{m['folder']}/{MANIFEST_NAME}"}
                        for m in manifests
                    ],
                }
                (staged.path / BATCH_MANIFEST_NAME).write_text(
                    json.dumps(batch, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
                )
        out = staged.commit()
    except BaseException:
        staged.discard()
        raise
    return {
        "ok": True,
        "out": str(out),
        "batch": options.batch,
        "timings_s": timings.rounded(),
        "model_loads": timings.runs.get("load", 0),
        "results": manifests,
    }


def _summary(result: dict) -> str:
    lines = []
    out = Path(result["out"])
    for manifest in result["results"]:
        folder = out / manifest["folder"] if manifest["folder"] != "." else out
        files = [manifest["blend"], *(f for t in manifest["takes"] for f in t["files"].values())]
        if manifest["preview"]:
            files.append(manifest["preview"])
        n = len(manifest["takes"])
        takes = f"{n} take{'s' if n != 1 else ''}"
        lines.append(f'{takes} of "{manifest["prompt"]}" ({manifest["model_id"]}) in {folder}:')
        lines.append("  " + ", ".join(files))
        lines.extend(f"  warning: {text}" for text in manifest["warnings"])
        if manifest["preview"]:
            lines.append(f"  watch: {folder / manifest['preview']}")
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result["timings_s"].items())
    lines.append(f"time: {times}")
    return "\n".join(lines)


# rigs ------------------------------------------------------------------------------------------------------------


def run_rigs(path_text: str | None, verbose: bool) -> dict:
    from .retarget.bone_map import BoneMap, detect_bone_map, list_presets, load_preset

    presets = []
    for name in list_presets():
        data = load_preset(name)
        presets.append({"name": name, "label": data.get("label", name), "description": data.get("description", "")})
    result: dict = {"ok": True, "presets": presets}
    if path_text is None:
        return result
    path = Path(path_text).expanduser()
    if path.suffix.lower() not in RIG_SUFFIXES:
        raise UsageError(f"PATH must be a .blend, .fbx or .bvh file; got '{path_text}'.")
    if not path.is_file():
        raise UsageError(f"Rig file '{path_text}' does not exist.")
    with console_to(2 if verbose else None):
        start_blender(register_addon=False)
        new_empty_scene(30.0)
        armatures = import_rig_file(path.resolve(), None, all_armatures=True)
        from .blender.rig_io import armature_from_object
        from .retarget.armature import RigError

        rigs = []
        for obj in armatures:
            try:
                armature = armature_from_object(obj)
                bone_map: BoneMap = detect_bone_map(armature)
            except RigError as e:
                raise UsageError(f"Armature '{obj.name}' in '{path.name}': {e}") from None
            rigs.append(
                {
                    "armature": obj.name,
                    "bones": len(armature.bone_names),
                    "source": bone_map.source,
                    "status": bone_map.status(),
                    "problems": bone_map.problems(armature),
                    "bone_map": bone_map.to_dict(),
                }
            )
    result["file"] = str(path)
    result["rigs"] = rigs
    return result


def _rigs_summary(result: dict) -> str:
    lines = ["Bone-map presets:"]
    width = max(len(p["name"]) for p in result["presets"]) if result["presets"] else 0
    lines += [f"  {p['name']:<{width}}  {p['label']}: {p['description']}" for p in result["presets"]]
    for rig in result.get("rigs", []):
        lines.append("")
        lines.append(
            f"Armature '{rig['armature']}' in {Path(result['file']).name} ({rig['bones']} bones): {rig['status']}"
        )
        joints = rig["bone_map"]["joints"]
        from .skeleton import SMPL_JOINTS

        w = max(len(j) for j in SMPL_JOINTS)
        lines += [f"  {j:<{w}}  {joints.get(j, '—')}" for j in SMPL_JOINTS]
        if rig["bone_map"]["root_bone"]:
            lines.append(f"  root motion on: {rig['bone_map']['root_bone']}")
        lines += [f"  problem: {p}" for p in rig["problems"]]
    return "\n".join(lines)


# Entry -----------------------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``); returns the exit status, never exits."""
    parser = build_parser()
    wants_json = "--json" in (sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in (sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help / --version
            return int(e.code or 0)
        if args.command == "generate":
            options = check_generate_args(args)
            result = run_generate(options)
            print(json.dumps(result, indent=2, ensure_ascii=False) if options.json else _summary(result))
        else:
            result = run_rigs(args.path, args.verbose)
            print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else _rigs_summary(result))
        return EXIT_OK
    except UsageError as e:
        message = _one_line(e)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        message, code = "Interrupted; nothing was written.", 130
    except Exception as e:
        if verbose:
            traceback.print_exc()
        message = f"internal error: {type(e).__name__}: {_one_line(e)}" + (
            "" if verbose else " (run with --verbose for details)"
        )
        code = EXIT_INTERNAL
    finally:
        stop_blender()
    if wants_json:
        print(json.dumps({"ok": False, "exit_code": code, "error": message}))
    print(f"temos-blender: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Console-script entry. Once bpy is loaded the process ends with ``os._exit`` (bpy 4.5 can hang at exit)."""
    code = run(argv)
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code

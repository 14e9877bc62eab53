"""An exact BVH reader: hierarchy, per-joint channel orders, end sites, frame time, gzip; forward kinematics.

Conventions of the format, as Blender's importer and the Biovision definition read them:
- A joint's rotation channels are Euler angles in degrees, applied in the order listed: ``Zrotation Xrotation
  Yrotation`` is ``R = Rz · Rx · Ry`` acting on column vectors (intrinsic Z, then X, then Y).
- A joint's position channels *replace* its ``OFFSET`` (the translation from the parent joint, in the parent's
  frame); a channel absent from the list keeps the OFFSET component. Roots usually have them; some files (the
  Bandai Namco set) give every joint position channels whose values equal the OFFSET.
- World transform of a joint: ``G_j = G_parent · [R_j | t_j]``; the world position is the translation of ``G_j``.

Units are those of the file (centimetres for most mocap); nothing is converted here.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..retarget.transfer import local_to_global
from ..rotations import euler_to_matrix

_AXES = "XYZ"


class BvhError(ValueError):
    """A BVH file that cannot be read; the message names the file and the problem."""


@dataclass
class BvhMotion:
    """One BVH clip. ``J`` joints (end sites are not joints; their offsets are in ``end_sites``), ``T`` frames."""

    names: list[str]
    """Joint names in file order (parents come before their children)."""
    parents: np.ndarray
    """(J,) int parent index, −1 for a root."""
    offsets: np.ndarray
    """(J, 3) OFFSET of each joint from its parent, in the parent's frame (file units)."""
    channels: list[tuple[str, ...]]
    """Channel names per joint, as listed (e.g. ``("Xposition", …, "Zrotation", "Xrotation", "Yrotation")``)."""
    end_sites: dict[int, np.ndarray]
    """Joint index → OFFSET of its End Site (file units)."""
    frame_time: float
    """Seconds per frame, as declared."""
    local_rotations: np.ndarray
    """(T, J, 3, 3) rotation of each joint relative to its parent (a root's: relative to the world)."""
    local_translations: np.ndarray
    """(T, J, 3) translation of each joint from its parent: the position channels where present, else OFFSET."""
    rotation_orders: list[str] = field(default_factory=list)
    """Euler order per joint (``"ZXY"`` …; empty string for a joint without rotation channels)."""

    @property
    def num_frames(self) -> int:
        return int(self.local_rotations.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} is not in this BVH; it has: {', '.join(self.names)}") from None

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World joint positions (T, J, 3) in file units and world rotations (T, J, 3, 3)."""
        glob = local_to_global(self.local_rotations, self.parents)
        pos = np.zeros(self.local_translations.shape)
        for j, p in enumerate(self.parents):
            if p < 0:
                pos[:, j] = self.local_translations[:, j]
            else:
                pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], self.local_translations[:, j])
        return pos, glob

    def end_site_positions(self, positions: np.ndarray, global_rotations: np.ndarray) -> dict[int, np.ndarray]:
        """World positions (T, 3) of each end site, from the output of :meth:`forward_kinematics`."""
        return {
            j: positions[:, j] + np.einsum("tab,b->ta", global_rotations[:, j], off)
            for j, off in self.end_sites.items()
        }


def _open_text(path: Path) -> str:
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


def read_bvh(path: str | Path) -> BvhMotion:
    """Read a ``.bvh`` or ``.bvh.gz`` file exactly (see the module docstring for the conventions)."""
    return parse_bvh(_open_text(Path(path)), source=str(path))


def parse_bvh(text: str, source: str = "<text>") -> BvhMotion:
    """Parse BVH text. ``source`` names the file in error messages."""
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise BvhError(f"{source}: no MOTION section; is this a BVH file?")
    tokens = head.replace("{", " { ").replace("}", " } ").split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # joint index per open brace; -2 for an End Site block
    i = 0
    pending_end = False
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(next((s for s in reversed(stack) if s >= 0), -1) if tok == "JOINT" else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            i += 2
        elif tok == "End":
            pending_end = True
            i += 2  # "End Site"
        elif tok == "{":
            stack.append(-2 if pending_end else len(names) - 1)
            pending_end = False
            i += 1
        elif tok == "}":
            if not stack:
                raise BvhError(f"{source}: unbalanced braces in HIERARCHY")
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            vals = [float(v) for v in tokens[i + 1 : i + 4]]
            if stack and stack[-1] == -2:
                owner = next((s for s in reversed(stack) if s >= 0), None)
                if owner is None:
                    raise BvhError(f"{source}: End Site outside any joint")
                end_sites[owner] = np.array(vals)
            else:
                offsets[-1 if not stack else stack[-1]] = vals
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels[stack[-1]] = tuple(tokens[i + 2 : i + 2 + n])
            i += 2 + n
        else:
            i += 1  # "HIERARCHY" and anything unknown
    if not names:
        raise BvhError(f"{source}: no joints in HIERARCHY")

    lines = motion.strip().splitlines()
    try:
        n_frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
    except (IndexError, ValueError):
        raise BvhError(f"{source}: MOTION must start with 'Frames: N' and 'Frame Time: s'") from None
    n_channels = sum(len(c) for c in channels)
    data = np.array(" ".join(lines[2:]).split(), dtype=np.float64)
    if data.size != n_frames * n_channels:
        whole = data.size // max(n_channels, 1)
        if data.size % max(n_channels, 1) or whole < 1:
            raise BvhError(f"{source}: {data.size} numbers do not split into frames of {n_channels} channels")
        n_frames = whole  # a truncated or over-long file: trust the data, not the header
    data = data.reshape(n_frames, n_channels)

    J = len(names)
    offsets_a = np.asarray(offsets, dtype=np.float64)
    local_rot = np.broadcast_to(np.eye(3), (n_frames, J, 3, 3)).copy()
    local_trans = np.broadcast_to(offsets_a, (n_frames, J, 3)).copy()
    orders = []
    col = 0
    for j, chans in enumerate(channels):
        order = ""
        rot_cols = []
        for k, ch in enumerate(chans):
            kind = ch[1:].lower()
            axis = _AXES.index(ch[0].upper()) if ch[0].upper() in _AXES else -1
            if axis < 0 or kind not in ("position", "rotation"):
                raise BvhError(f"{source}: joint {names[j]!r} has an unknown channel {ch!r}")
            if kind == "position":
                local_trans[:, j, axis] = data[:, col + k]
            else:
                order += _AXES[axis]
                rot_cols.append(col + k)
        if order:
            local_rot[:, j] = euler_to_matrix(np.deg2rad(data[:, rot_cols]), order)
        orders.append(order)
        col += len(chans)
    return BvhMotion(
        names=names,
        parents=np.asarray(parents, dtype=np.int64),
        offsets=offsets_a,
        channels=channels,
        end_sites=end_sites,
        frame_time=frame_time,
        local_rotations=local_rot,
        local_translations=local_trans,
        rotation_orders=orders,
    )

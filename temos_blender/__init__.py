"""TEMOS Motion: text-to-motion takes for Blender armatures.

The package is both a plain Python package (``import temos_blender.core`` needs torch, never bpy) and a Blender
extension: Blender imports this module as the add-on (``bl_ext.<repo>.temos_blender``) and calls the module-level
:func:`register` / :func:`unregister`. Only those two import the bpy glue in :mod:`.blender`, so nothing here
imports bpy until Blender enables the add-on.
"""

__version__ = "0.1.0"
"""Kept equal to ``version`` in pyproject.toml and blender_manifest.toml (build.py checks)."""


def register() -> None:
    """Called by Blender when the add-on is enabled."""
    from . import blender

    blender.register()


def unregister() -> None:
    """Called by Blender when the add-on is disabled; undoes everything :func:`register` did."""
    from . import blender

    blender.unregister()

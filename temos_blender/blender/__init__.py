"""The bpy glue: add-on preferences and the sidebar panel. The only room that imports bpy.

Lifecycle rule: whatever :func:`register` adds (classes, properties on Blender types, timers, handlers, key maps)
:func:`unregister` removes, in reverse order, so disabling the add-on leaves Blender as it found it.
"""

import bpy

from . import ops_generate, panel, preferences, props

classes = (
    *preferences.classes,
    *props.classes,
    *ops_generate.classes,
    *panel.classes,
)
"""Every Blender class of the add-on, in registration order."""


def register() -> None:
    registered = []
    try:
        for cls in classes:
            bpy.utils.register_class(cls)
            registered.append(cls)
        props.register_properties()
    except Exception:
        # Leave nothing half-registered behind: Blender reports the error and the add-on stays disabled.
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister() -> None:
    ops_generate.shutdown()  # stop a running generation: its worker must not outlive the add-on
    props.unregister_properties()
    for cls in reversed(classes):
        if cls.is_registered:
            bpy.utils.unregister_class(cls)

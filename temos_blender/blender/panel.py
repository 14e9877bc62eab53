"""The TEMOS tab in the 3D Viewport's sidebar (N panel)."""

import bpy

from .. import __version__
from .preferences import ADDON_ID


class TEMOS_PT_main(bpy.types.Panel):
    bl_label = "TEMOS Motion"
    bl_idname = "TEMOS_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "TEMOS"

    def draw(self, context):
        layout = self.layout
        layout.label(text=f"Version {__version__}")
        layout.operator("preferences.addon_show", text="Preferences", icon="PREFERENCES").module = ADDON_ID


classes = (TEMOS_PT_main,)

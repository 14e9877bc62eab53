"""Blender test harness: the PyPI ``bpy`` module in background mode, with the add-on installed the way a user
installs it — the zip that build.py makes, put into the ``user_default`` extension repository by Blender's own
operator, giving the module ``bl_ext.user_default.temos_blender``.

``BLENDER_USER_RESOURCES`` already points at a temporary folder (tests/conftest.py sets it before anything can
import bpy). Without bpy, every test module here skips itself (``pytest.importorskip("bpy")`` at its top) and
nothing in this file touches bpy.

Fixtures:
- ``extension_zip`` (session): the extension built by ``build.build_extension`` into a temporary folder.
- ``addon_module_name`` (session): installs and enables the zip; at the end disables it and fails if anything it
  registered is left (classes, properties, handlers, timers, menu entries, key-map items).
- ``empty_file`` (function): factory settings and an empty file, with no add-on of ours enabled.
- ``addon`` (function): an empty file with the add-on enabled; gives the add-on's top module. After the test the
  add-on is disabled again and the test fails if it left anything behind.
- ``find_leftovers``: ``find_leftovers(module_name) -> list[str]``, what that add-on still has registered.
- ``layout_recorder``: a stand-in for ``UILayout`` so ``draw()`` methods can run headless (see LayoutRecorder).

Background-mode facts that shape this harness: timers never fire, operators run their ``execute``; a timer left
registered hangs bpy 4.5 at exit, so a leaked timer is unregistered here and the test fails; each test runs under a
pytest-timeout of ``BPY_TEST_TIMEOUT_S`` with the thread method, which also ends hangs inside Blender's C code.
"""

from __future__ import annotations

import functools
import sys

import pytest

try:
    import bpy
except ImportError:
    bpy = addon_utils = None
else:
    import addon_utils  # Blender's own module: on sys.path once bpy is imported

EXTENSION_ID = "temos_blender"
EXTENSION_REPO = "user_default"
BPY_TEST_TIMEOUT_S = 120


def pytest_collection_modifyitems(config, items):
    here = str(config.rootpath / "tests" / "blender")
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BPY_TEST_TIMEOUT_S, method="thread"))


# -- what an add-on leaves behind --------------------------------------------------------------------------------


class TimerSpy:
    """Records every function passed to ``bpy.app.timers.register`` while installed (timers cannot be listed)."""

    def __init__(self):
        self.functions: list = []
        self._register = None

    def install(self) -> None:
        self._register = bpy.app.timers.register

        def register(function, *args, **kwargs):
            self.functions.append(function)
            return self._register(function, *args, **kwargs)

        bpy.app.timers.register = register

    def uninstall(self) -> None:
        if self._register is not None:
            bpy.app.timers.register = self._register
            self._register = None

    def registered(self) -> list:
        return [f for f in dict.fromkeys(self.functions) if bpy.app.timers.is_registered(f)]


_timer_spy = TimerSpy()


def _module_of(obj) -> str:
    for candidate in (obj, getattr(obj, "func", None), getattr(obj, "__func__", None)):
        module = getattr(candidate, "__module__", None)
        if module:
            return module
    return ""


def _owned(obj, module_name: str) -> bool:
    module = _module_of(obj)
    return module == module_name or module.startswith(module_name + ".")


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def find_leftovers(module_name: str) -> list[str]:
    """Everything the add-on ``module_name`` still has registered in Blender, described in words."""
    found = []
    if module_name in bpy.context.preferences.addons:
        found.append(f"add-on {module_name} is still enabled")
    for cls in set(_all_subclasses(bpy.types.bpy_struct)):
        if _owned(cls, module_name) and getattr(cls, "is_registered", False):
            found.append(f"class {cls.__name__} is still registered")
    for name in dir(bpy.types):
        if name.upper().startswith("TEMOS_"):
            found.append(f"bpy.types.{name} still exists")
        rna_type = getattr(bpy.types, name)
        rna = getattr(rna_type, "bl_rna", None)
        if rna is not None:
            found += [
                f"property {name}.{p} still exists" for p in rna.properties.keys() if p.lower().startswith("temos")
            ]
        draw_functions = getattr(getattr(rna_type, "draw", None), "_draw_funcs", ())
        found += [f"{name} still draws {f.__name__}" for f in draw_functions if _owned(f, module_name)]
    for name in dir(bpy.app.handlers):
        handlers = getattr(bpy.app.handlers, name)
        if isinstance(handlers, list):
            found += [
                f"handler {f.__name__} still in bpy.app.handlers.{name}" for f in handlers if _owned(f, module_name)
            ]
    found += [f"timer {f!r} still registered" for f in _timer_spy.registered() if _owned(f, module_name)]
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is not None:
        for keymap in keyconfig.keymaps:
            found += [
                f"key-map item {item.idname} still in {keymap.name}"
                for item in keymap.keymap_items
                if item.idname.startswith(("temos.", "TEMOS_"))
            ]
    return found


def _disable_and_check(module_name: str) -> list[str]:
    """Disable the add-on (as the user would) and return what it left. Then remove leaked timers (so bpy can exit),
    handlers and classes, so one leak fails one test rather than every test after it."""
    if module_name in bpy.context.preferences.addons:
        addon_utils.disable(module_name, default_set=True, handle_error=_raise)
    leftovers = find_leftovers(module_name)
    if leftovers:
        for function in _timer_spy.registered():
            if _owned(function, module_name) and bpy.app.timers.is_registered(function):
                bpy.app.timers.unregister(function)
        for name in dir(bpy.app.handlers):
            handlers = getattr(bpy.app.handlers, name)
            if isinstance(handlers, list):
                handlers[:] = [f for f in handlers if not _owned(f, module_name)]
        for cls in set(_all_subclasses(bpy.types.bpy_struct)):
            if _owned(cls, module_name) and getattr(cls, "is_registered", False):
                bpy.utils.unregister_class(cls)
    return leftovers


def _raise(error: BaseException) -> None:
    raise error


# -- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def extension_zip(build_module, tmp_path_factory):
    """Path of the extension zip built by build.py (into a temporary folder, not the repository's dist/)."""
    return build_module.build_extension(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def addon_module_name(extension_zip):
    """Installs the zip into the ``user_default`` repository and enables it; yields the add-on's module name."""
    _timer_spy.install()
    try:
        result = bpy.ops.extensions.package_install_files(
            filepath=str(extension_zip), repo=EXTENSION_REPO, enable_on_install=True
        )
        assert result == {"FINISHED"}, f"installing {extension_zip.name} returned {result}"
        module_name = f"bl_ext.{EXTENSION_REPO}.{EXTENSION_ID}"
        assert module_name in bpy.context.preferences.addons, f"{module_name} was installed but is not enabled"
        yield module_name
        leftovers = _disable_and_check(module_name)
        assert not leftovers, "disabling the add-on left: " + "; ".join(leftovers)
    finally:
        _timer_spy.uninstall()


@pytest.fixture
def empty_file():
    """Factory settings and an empty file. Resetting the preferences also disables every non-default add-on."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert len(bpy.data.objects) == 0


@pytest.fixture
def addon(addon_module_name):
    """An empty file with the add-on enabled; gives its top module. Fails the test if disabling leaves anything."""
    leftovers = _disable_and_check(addon_module_name)  # it is still enabled right after installing
    assert not leftovers, "disabling the add-on left: " + "; ".join(leftovers)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = addon_utils.enable(addon_module_name, default_set=True, handle_error=_raise)
    assert module is sys.modules[addon_module_name]
    yield module
    leftovers = _disable_and_check(addon_module_name)
    assert not leftovers, "disabling the add-on left: " + "; ".join(leftovers)


@pytest.fixture(name="find_leftovers")
def find_leftovers_fixture():
    return find_leftovers


# -- drawing headless --------------------------------------------------------------------------------------------


@functools.cache
def _uilayout_names() -> tuple[frozenset, frozenset]:
    """(method names, attribute names) of the real ``bpy.types.UILayout``."""
    rna = bpy.types.UILayout.bl_rna
    return frozenset(f.identifier for f in rna.functions), frozenset(rna.properties.keys())


class LayoutRecorder:
    """Stands in for ``bpy.types.UILayout``, which background mode never creates, so a ``draw()`` can run in a test.

    Records what would be shown (``lines``: ``("label", text)``, ``("prop", name)``, ``("operator", idname)``, …),
    and fails like Blender would on a method or attribute UILayout lacks, a property the data lacks, an operator
    that does not exist, or an operator property it does not have. Containers (``row()``, ``box()``…) share
    ``lines`` with their parent.
    """

    def __init__(self, lines: list | None = None):
        object.__setattr__(self, "lines", [] if lines is None else lines)

    def __setattr__(self, name, value):
        if name not in _uilayout_names()[1]:
            raise AttributeError(f"UILayout has no attribute {name!r}")
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        if name.startswith("__") or name not in _uilayout_names()[0]:
            raise AttributeError(f"UILayout has no method {name!r}")

        def method(*args, **kwargs):
            self.lines.append((name, *args))
            return LayoutRecorder(self.lines)

        return method

    def record_draw(self, draw, data=None, context=None) -> LayoutRecorder:
        """Run ``draw(self_, context)`` as Blender would, with ``self_.layout`` this recorder and every other
        attribute read from ``data`` (e.g. the real AddonPreferences). Returns this recorder."""
        draw(_DrawSelf(data, self), bpy.context if context is None else context)
        return self

    def texts(self) -> list[str]:
        """The texts of every label drawn, in order."""
        return [line[1] for line in self.lines if line[0] == "label"]

    def label(self, text="", **kwargs):
        self.lines.append(("label", text))

    def prop(self, data, prop_name, **kwargs):
        assert prop_name in data.bl_rna.properties, f"{type(data).__name__} has no property {prop_name!r}"
        self.lines.append(("prop", prop_name))

    def operator(self, operator, **kwargs):
        category, _, name = operator.partition(".")
        rna = getattr(getattr(bpy.ops, category), name).get_rna_type()  # KeyError if there is no such operator
        self.lines.append(("operator", operator))
        return _OperatorPropertiesRecorder(operator, frozenset(rna.properties.keys()))


class _DrawSelf:
    def __init__(self, data, layout):
        self._data = data
        self.layout = layout

    def __getattr__(self, name):
        return getattr(self._data, name)


class _OperatorPropertiesRecorder:
    def __init__(self, idname: str, names: frozenset):
        object.__setattr__(self, "_idname", idname)
        object.__setattr__(self, "_names", names)

    def __setattr__(self, name, value):
        if name not in self._names:
            raise AttributeError(f"operator {self._idname} has no property {name!r}")
        object.__setattr__(self, name, value)


@pytest.fixture
def layout_recorder():
    return LayoutRecorder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight TEMOS saved once per session: fast generations whose motions mean nothing."""
    from tests.blender.generation_fixtures import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tiny_addon(addon, addon_module_name, tiny_model_dir):
    """The enabled add-on with its preferences on the tiny model, on CPU. ``tiny_addon.modules(names)`` imports the
    add-on's modules by dotted name below the package (``"blender.bake"``, ``"core.generate"``)."""
    import importlib

    import bpy

    prefs = bpy.context.preferences.addons[addon_module_name].preferences
    prefs.model_dir = str(tiny_model_dir)
    prefs.device = "CPU"

    def modules(names: dict[str, str]) -> dict:
        return {short: importlib.import_module(f"{addon.__name__}.{name}") for short, name in names.items()}

    return type("TinyAddon", (), {"prefs": prefs, "module_name": addon_module_name, "modules": staticmethod(modules)})


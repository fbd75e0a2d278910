"""A stand-in for ``bpy.types.UILayout`` for running panels' draw() in background mode, where
Blender makes no UILayout (there is no window).

It is not a permissive mock: every call is checked against the real UILayout's RNA (function
names, keyword names, required arguments, icon names, layout properties), every drawn property
against the data's RNA, every operator and menu against what is registered in Blender, and every
operator property set on a button against that operator's RNA. What would be drawn is recorded
as plain tuples for the tests to assert on.
"""

from __future__ import annotations

import bpy

_FUNCTIONS = bpy.types.UILayout.bl_rna.functions
_PROPERTIES = bpy.types.UILayout.bl_rna.properties
_ICONS = {e.identifier for e in _FUNCTIONS["label"].parameters["icon"].enum_items}
_SUBLAYOUTS = {"row", "column", "split", "box", "grid_flow", "column_flow"}


class CheckedOperatorProperties:
    """What ``layout.operator()`` returns: accepts only the operator's own properties."""

    def __init__(self, idname: str, rna, record: dict):
        object.__setattr__(self, "_idname", idname)
        object.__setattr__(self, "_rna", rna)
        object.__setattr__(self, "_record", record)

    def __setattr__(self, name, value):
        if name not in self._rna.properties:
            raise AttributeError(f"operator {self._idname} has no property {name!r}")
        self._record[name] = value


def _operator_rna(idname: str):
    module, _, name = idname.partition(".")
    operator = getattr(getattr(bpy.ops, module, None), name, None)
    if operator is None:
        raise AssertionError(f"no operator {idname!r} is registered")
    try:
        return operator.get_rna_type()
    except KeyError as exc:  # bpy.ops answers any name; the RNA lookup is the real check
        raise AssertionError(f"no operator {idname!r} is registered") from exc


class CheckedLayout:
    """See the module docstring. ``drawn`` is shared by a layout and its sub-layouts."""

    def __init__(self, drawn: list | None = None):
        object.__setattr__(self, "drawn", [] if drawn is None else drawn)

    def __setattr__(self, name, value):
        if name not in _PROPERTIES or _PROPERTIES[name].is_readonly:
            raise AttributeError(f"UILayout has no settable property {name!r}")
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        if name not in _FUNCTIONS:
            raise AttributeError(f"UILayout has no function {name!r}")
        parameters = [p for p in _FUNCTIONS[name].parameters if not p.is_output]
        names = [p.identifier for p in parameters]

        def call(*args, **kwargs):
            if len(args) > len(names):
                raise TypeError(f"UILayout.{name}() takes at most {len(names)} arguments")
            given = dict(zip(names, args, strict=False))
            for key, value in kwargs.items():
                if key not in names:
                    raise TypeError(f"UILayout.{name}() has no keyword {key!r}")
                given[key] = value
            missing = [p.identifier for p in parameters
                       if p.is_required and p.identifier not in given]  # fmt: skip
            if missing:
                raise TypeError(f"UILayout.{name}() misses {missing}")
            if "icon" in given and given["icon"] not in _ICONS:
                raise ValueError(f"UILayout.{name}(): no icon {given['icon']!r}")
            return self._draw(name, given)

        return call

    def _draw(self, name: str, given: dict):
        if name in _SUBLAYOUTS:
            return CheckedLayout(self.drawn)
        if name == "prop":
            data, prop = given["data"], given["property"]
            if prop not in data.bl_rna.properties:
                raise AttributeError(f"{data.bl_rna.identifier} has no property {prop!r}")
            self.drawn.append(("prop", prop, given.get("text")))
        elif name == "operator":
            idname = given["operator"]
            record = {}
            self.drawn.append(("operator", idname, given.get("text"), record))
            return CheckedOperatorProperties(idname, _operator_rna(idname), record)
        elif name == "menu":
            if not hasattr(bpy.types, given["menu"]):
                raise AssertionError(f"no menu {given['menu']!r} is registered")
            self.drawn.append(("menu", given["menu"], given.get("text")))
        elif name == "template_list":
            for key in ("listtype_name",):
                if not hasattr(bpy.types, given[key]):
                    raise AssertionError(f"no UIList {given[key]!r} is registered")
            for data, prop in (("dataptr", "propname"), ("active_dataptr", "active_propname")):
                if given[prop] not in given[data].bl_rna.properties:
                    raise AttributeError(f"no property {given[prop]!r} to list")
            self.drawn.append(("list", given["propname"]))
        else:  # label, separator, progress, ...
            self.drawn.append((name, given.get("text")))
        return None

    # What the tests read.
    def labels(self) -> list[str]:
        return [d[1] for d in self.drawn if d[0] == "label"]

    def operators(self) -> list[tuple[str, dict]]:
        return [(d[1], d[3]) for d in self.drawn if d[0] == "operator"]

    def props(self) -> list[str]:
        return [d[1] for d in self.drawn if d[0] == "prop"]


class PanelSelf:
    """``self`` for calling a Panel's draw() unbound: a checked layout, and the panel class's
    own attributes."""

    def __init__(self, panel_class):
        self.layout = CheckedLayout()
        self._panel_class = panel_class

    def __getattr__(self, name):
        return getattr(self._panel_class, name)


def draw(panel_class, context, method: str = "draw") -> CheckedLayout:
    """Run ``panel_class.<method>`` with a checked layout; returns the layout with what it drew."""
    panel = PanelSelf(panel_class)
    getattr(panel_class, method)(panel, context)
    return panel.layout

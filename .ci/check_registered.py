"""Run in Blender after `extension install-file -e`: is PartDistill enabled and registered?"""

import sys

import bpy

MODULE = "bl_ext.user_default.partdistill"
problems = []
if MODULE not in bpy.context.preferences.addons:
    problems.append(f"{MODULE} is not enabled")
try:
    bpy.ops.partdistill.segment_parts.get_rna_type()
except (AttributeError, KeyError) as exc:
    problems.append(f"operator partdistill.segment_parts is not registered ({exc})")
module = sys.modules.get(MODULE)
print("extension folder:", getattr(module, "__file__", None))
if problems:
    print("PARTDISTILL NOT REGISTERED:", "; ".join(problems))
    sys.exit(1)
print("PARTDISTILL REGISTERED")

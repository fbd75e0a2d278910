"""The compute half of PartDistill: teachers, knowledge extraction, student, distillation, labels.

Never imports bpy. Meets the Blender half through the plain data in ``contracts``.
"""

"""PartDistill for Blender: zero-shot part segmentation of meshes (extension entry point).

Everything that touches bpy lives in ``partdistill_blender``; everything that computes lives in
``backend``. Registration is imported lazily so that ``backend`` can be used without Blender.
"""


def register():
    from .partdistill_blender import registration

    registration.register()


def unregister():
    from .partdistill_blender import registration

    registration.unregister()

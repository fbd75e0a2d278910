"""The Blender half of PartDistill: geometry and views out of Blender, labels back in, UI, batch.

Does no tensor maths: it hands plain arrays to ``backend`` and writes back what comes out.
"""

"""Render the views of an object: RGB images for the teacher and per-pixel polygon maps.

Everything is built in a temporary scene (own world, lights, camera, an object holding the
baked evaluated mesh), so the user's scenes, objects, materials and render settings are never
touched; every temporary datablock and file is removed on exit, also on error.

Polygon map: the baked mesh carries ``polygon index + 1`` as a FLOAT face attribute; an
emission material reading it is applied with the view layer's material override and rendered
by Cycles with one sample, a tiny box filter and no bounces into a 32-bit float EXR, so each
pixel holds the exact index of the polygon seen through its centre (0 = background).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile

import bpy
import numpy as np

from ..backend.config import PartDistillConfig
from ..backend.contracts import MeshGeometry, View
from . import cameras
from .geometry import POLYGON_INDEX_ATTRIBUTE, baked_evaluated_mesh, mesh_geometry
from .temporary_data import TemporaryData

# Background of the RGB views (sRGB 0-255): white, as the views VLMs are prompted with.
BACKGROUND_RGB = (255, 255, 255)
# Lighting of the RGB views: a key sun that follows the camera (from its upper left) plus a
# uniform grey sky, so every side of the object reads with soft shading.
KEY_LIGHT_STRENGTH = 2.0
KEY_LIGHT_OFFSET_DEG = (35.0, -30.0)  # rotation about the camera's x, then y axis
SKY_COLOR = (0.2, 0.2, 0.2)
RGB_LIGHT_BOUNCES = 2
# Box filter width (pixels) of the polygon map: small enough that one sample is the centre.
ID_FILTER_WIDTH = 0.01

_EEVEE_NAMES = ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE")


def set_engine(scene, name: str) -> str:
    """Set ``scene``'s render engine from a configured name; return the identifier used.

    Accepts both EEVEE identifiers (BLENDER_EEVEE_NEXT in 4.2-4.5, BLENDER_EEVEE in 5.0).
    """
    candidates = _EEVEE_NAMES if name in _EEVEE_NAMES else (name,)
    for candidate in candidates:
        try:
            scene.render.engine = candidate
            return candidate
        except TypeError:
            continue
    raise ValueError(f"render engine {name!r} is not available in this Blender")


class ViewRenderer:
    """Context manager rendering the views of one mesh object, one view per call.

    >>> with ViewRenderer(obj, config) as renderer:
    ...     views = [renderer.render_view(i) for i in range(len(renderer))]

    ``geometry`` (MeshGeometry, world space) and ``directions`` ((elevation, azimuth) degrees
    per view) are available inside the block.
    """

    def __init__(self, obj, config: PartDistillConfig | None = None, depsgraph=None):
        self.obj = obj
        self.config = config or PartDistillConfig()
        self.depsgraph = depsgraph
        self.geometry: MeshGeometry | None = None
        self.directions = cameras.view_directions(self.config.num_views, self.config.view_angles)
        self._temporary: TemporaryData | None = None  # what this renderer made, from __enter__
        self._temp_dir: str | None = None
        self._entered = False

    def __len__(self) -> int:
        return len(self.directions)

    # --- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> ViewRenderer:
        self._entered = True
        self._temporary = TemporaryData()
        try:
            self._build()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self._temporary is not None:
            self._temporary.remove_all()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # --- scene construction ---------------------------------------------------------------
    def _build(self) -> None:
        config = self.config
        self._temp_dir = tempfile.mkdtemp(prefix="partdistill_render_")
        baked = self._temporary.add(bpy.data.meshes, baked_evaluated_mesh(self.obj, self.depsgraph))
        num_polygons = len(self.obj.data.polygons)  # after the bake checked it is a mesh
        self.geometry = mesh_geometry(baked, num_polygons)
        self._num_polygons = num_polygons

        centre, radius = cameras.bounding_sphere(self.geometry.vertices.astype(np.float64))
        self._centre = centre
        self._distance = cameras.framing_distance(
            radius, config.camera_fov_deg, config.camera_margin
        )
        self._K = cameras.intrinsics(config.resolution, config.camera_fov_deg)

        shape = self._temporary.add(
            bpy.data.objects, bpy.data.objects.new("PartDistill shape", baked)
        )
        camera_data = self._temporary.add(
            bpy.data.cameras, bpy.data.cameras.new("PartDistill camera")
        )
        camera_data.lens_unit = "FOV"
        camera_data.sensor_fit = "HORIZONTAL"
        camera_data.angle = math.radians(config.camera_fov_deg)
        camera_data.clip_start = max(self._distance - 2.0 * radius, 1e-3 * radius)
        camera_data.clip_end = self._distance + 2.0 * radius
        self._camera = self._temporary.add(
            bpy.data.objects, bpy.data.objects.new("PartDistill camera", camera_data)
        )

        self._rgb_scene = self._new_scene("PartDistill views")
        self._id_scene = self._new_scene("PartDistill polygon map")
        for scene in (self._rgb_scene, self._id_scene):
            scene.collection.objects.link(shape)
            scene.collection.objects.link(self._camera)
            scene.camera = self._camera
        self._setup_rgb_scene()
        self._setup_id_scene()

    def _new_scene(self, name: str):
        scene = self._temporary.add(bpy.data.scenes, bpy.data.scenes.new(name))
        render = scene.render
        render.resolution_x = render.resolution_y = self.config.resolution
        render.resolution_percentage = 100
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        render.use_border = False
        render.film_transparent = True
        render.use_compositing = False
        render.use_sequencer = False
        render.use_persistent_data = True
        render.threads_mode = "AUTO"
        return scene

    def _setup_rgb_scene(self) -> None:
        scene = self._rgb_scene
        self._engine = set_engine(scene, self.config.render_engine)
        world = self._temporary.add(bpy.data.worlds, bpy.data.worlds.new("PartDistill sky"))
        world.color = SKY_COLOR
        scene.world = world
        scene.view_settings.view_transform = "Standard"
        image = scene.render.image_settings
        image.file_format = "PNG"
        image.color_mode = "RGBA"
        image.color_depth = "8"
        image.compression = 0
        if self._engine == "CYCLES":
            cycles = scene.cycles
            cycles.device = "CPU"
            cycles.samples = max(1, int(self.config.render_samples))
            cycles.use_adaptive_sampling = False
            cycles.use_denoising = False
            cycles.max_bounces = RGB_LIGHT_BOUNCES
            cycles.caustics_reflective = cycles.caustics_refractive = False
        elif self._engine == "BLENDER_WORKBENCH":
            shading = scene.display.shading
            shading.light = "STUDIO"
            shading.color_type = "MATERIAL"
        # A key light that moves with the camera: every view is lit from the same side.
        sun_data = self._temporary.add(
            bpy.data.lights, bpy.data.lights.new("PartDistill key", "SUN")
        )
        sun_data.energy = KEY_LIGHT_STRENGTH
        sun = self._temporary.add(
            bpy.data.objects, bpy.data.objects.new("PartDistill key", sun_data)
        )
        sun.parent = self._camera
        sun.rotation_euler = tuple(math.radians(a) for a in (*KEY_LIGHT_OFFSET_DEG, 0.0))
        scene.collection.objects.link(sun)

    def _setup_id_scene(self) -> None:
        scene = self._id_scene
        scene.render.engine = "CYCLES"
        scene.view_settings.view_transform = "Raw"
        scene.view_settings.look = "None"
        scene.view_settings.exposure = 0.0
        scene.view_settings.gamma = 1.0
        scene.display_settings.display_device = "sRGB"
        render = scene.render
        render.filter_size = ID_FILTER_WIDTH
        cycles = scene.cycles
        cycles.device = "CPU"
        cycles.samples = 1
        cycles.use_adaptive_sampling = False
        cycles.use_denoising = False
        cycles.max_bounces = 0
        cycles.pixel_filter_type = "BOX"
        cycles.filter_width = ID_FILTER_WIDTH
        cycles.sample_clamp_direct = cycles.sample_clamp_indirect = 0.0
        image = render.image_settings
        image.file_format = "OPEN_EXR"
        image.color_mode = "RGBA"
        image.color_depth = "32"
        image.exr_codec = "NONE"
        scene.view_layers[0].material_override = self._polygon_index_material()

    def _polygon_index_material(self):
        material = self._temporary.add(
            bpy.data.materials, bpy.data.materials.new("PartDistill polygon index")
        )
        material.use_nodes = True
        # Without this every emissive triangle is a light Cycles samples and builds a light
        # tree over at each render: 7-10 s a view at 1M polygons against 0.7 s. Nothing is lit
        # here (no bounces), so the pixels are the same.
        # (Cycles' material settings since 3.5; looked up defensively for later renames.)
        for owner in (getattr(material, "cycles", None), material):
            if hasattr(owner, "emission_sampling"):
                owner.emission_sampling = "NONE"
                break
        nodes, links = material.node_tree.nodes, material.node_tree.links
        nodes.clear()
        attribute = nodes.new("ShaderNodeAttribute")
        attribute.attribute_type = "GEOMETRY"
        attribute.attribute_name = POLYGON_INDEX_ATTRIBUTE
        emission = nodes.new("ShaderNodeEmission")
        emission.inputs["Strength"].default_value = 1.0
        output = nodes.new("ShaderNodeOutputMaterial")
        links.new(attribute.outputs["Fac"], emission.inputs["Color"])
        links.new(emission.outputs["Emission"], output.inputs["Surface"])
        return material

    # --- rendering ------------------------------------------------------------------------
    def camera(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """K (3, 3) and world_to_camera (4, 4), OpenCV convention, of view ``index``."""
        elevation, azimuth = self.directions[index]
        matrix = cameras.camera_to_world_blender(self._centre, self._distance, elevation, azimuth)
        return self._K.copy(), cameras.world_to_camera_opencv(matrix)

    def _place_camera(self, index: int) -> None:
        from mathutils import Matrix

        elevation, azimuth = self.directions[index]
        matrix = cameras.camera_to_world_blender(self._centre, self._distance, elevation, azimuth)
        self._camera.matrix_world = Matrix(matrix.tolist())

    def _render_to_pixels(self, scene, filename: str) -> np.ndarray:
        """Render ``scene`` to a file, read it back: (H, W, 4) float32, top row first."""
        path = os.path.join(self._temp_dir, filename)
        scene.render.filepath = path
        bpy.ops.render.render(write_still=True, scene=scene.name)
        image = bpy.data.images.load(path, check_existing=False)
        try:
            width, height = image.size
            pixels = np.empty(width * height * 4, dtype=np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
            os.remove(path)
        return pixels.reshape(height, width, 4)[::-1]

    def render_rgb(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of view ``index`` on the white background, top row first."""
        self._check_entered()
        self._place_camera(index)
        pixels = self._render_to_pixels(self._rgb_scene, "view.png")
        alpha = pixels[..., 3:4]
        background = np.array(BACKGROUND_RGB, dtype=np.float32) / 255.0
        rgb = pixels[..., :3] * alpha + background * (1.0 - alpha)
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    def render_polygon_map(self, index: int) -> np.ndarray:
        """(H, W) int32 polygon index of ``self.obj`` seen at each pixel centre, -1 = none."""
        self._check_entered()
        self._place_camera(index)
        pixels = self._render_to_pixels(self._id_scene, "polygons.exr")
        ids = np.rint(pixels[..., 0]).astype(np.int64) - 1
        ids[(pixels[..., 3] < 0.5) | (ids >= self._num_polygons)] = -1
        return ids.astype(np.int32)

    def render_view(self, index: int) -> View:
        """Render view ``index`` (RGB and polygon map) with its cameras."""
        if not 0 <= index < len(self):
            raise IndexError(f"view {index} out of range 0..{len(self) - 1}")
        image = self.render_rgb(index)
        face_ids = self.render_polygon_map(index)
        K, world_to_camera = self.camera(index)
        return View(image=image, face_ids=face_ids, K=K, world_to_camera=world_to_camera)

    def _check_entered(self) -> None:
        if not self._entered or self.geometry is None:
            raise RuntimeError("use ViewRenderer as a context manager: with ViewRenderer(...) as r")


def iter_views(obj, config: PartDistillConfig | None = None, depsgraph=None):
    """Generator: renders one view of ``obj`` per next(), yielding (renderer, view); the
    renderer's ``geometry`` and ``len()`` stay readable after the last. Closing it early
    removes the renderer's temporary data as finishing does."""
    with ViewRenderer(obj, config, depsgraph) as renderer:
        for index in range(len(renderer)):
            yield renderer, renderer.render_view(index)


def render_views(
    obj, config: PartDistillConfig | None = None, progress=None, depsgraph=None
) -> tuple[MeshGeometry, list[View]]:
    """Geometry and all views of ``obj``; ``progress(stage="render", fraction)`` per view."""
    views = []
    for renderer, view in iter_views(obj, config, depsgraph):
        views.append(view)
        if progress is not None:
            progress("render", len(views) / len(renderer))
    return renderer.geometry, views

"""The pixel-wise CLIP teacher (the paper's P-VLM, as PointCLIPv2 builds it).

Per view: dense patch embeddings (see clip_encoders), ``config.clip_logit_scale`` x cosine with
each part's text embedding (the mean over ``config.prompt_templates`` of "the {part} of a
{object}"), a box filter over the patch grid, bilinear upsampling of the logits to the view,
a softmax over the parts, and zeros off the object (``face_ids < 0``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import PartDistillConfig
from ..contracts import ObjectInfo, View
from .models import OPEN_CLIP_PREFIX, model_for_teacher, resolve_model
from .preprocess import views_to_pixels


def prompts_for(part: str, category: str, templates) -> list[str]:
    """The prompts of one part: every template filled with the part and the object's name."""
    obj = category.strip() or "object"
    return [t.format(part=part, object=obj) for t in templates]


def part_text_embeddings(encoder, parts: list[str], category: str, templates) -> torch.Tensor:
    """(R, D) unit text embeddings: per part, the mean over templates, renormalised."""
    prompts = [p for part in parts for p in prompts_for(part, category, templates)]
    embeddings = encoder.encode_text(prompts).reshape(len(parts), len(templates), -1)
    return F.normalize(embeddings.mean(dim=1), dim=-1)


class ClipTeacher:
    """kind "pixel": ``predict(views)`` -> per view (H, W, R) float32 probabilities.

    Probabilities sum to 1 over the R parts on object pixels and are 0 on background pixels.
    ``bind(info)`` sets the object's category used in the prompts ("object" when unknown).
    """

    kind = "pixel"

    def __init__(self, part_names: list[str], encoder, config: PartDistillConfig):
        if not part_names:
            raise ValueError("the CLIP teacher needs at least one part name")
        self.parts = list(part_names)
        self.encoder = encoder
        self.config = config
        self.category = ""
        self._text_by_category: dict[str, torch.Tensor] = {}

    def bind(self, info: ObjectInfo) -> None:
        self.category = (info.category or "").strip()

    def text_embeddings(self, category: str | None = None) -> torch.Tensor:
        """(R, D) text embeddings for ``category`` (the bound one by default), cached."""
        category = self.category if category is None else category
        if category not in self._text_by_category:
            templates = tuple(self.config.prompt_templates)
            self._text_by_category[category] = part_text_embeddings(
                self.encoder, self.parts, category, templates
            )
        return self._text_by_category[category]

    def patch_embeddings(self, views: list[View]) -> torch.Tensor:
        """(V, gh, gw, D) unit patch embeddings of the views, in forward passes of at most
        ``config.teacher_batch_views`` views (all views of an object in one by default)."""
        batch = max(1, int(self.config.teacher_batch_views))
        chunks = []
        for start in range(0, len(views), batch):
            pixels = views_to_pixels(
                [v.image for v in views[start : start + batch]],
                self.encoder.image_size,
                self.encoder.mean,
                self.encoder.std,
                self.encoder.device,
                self.encoder.dtype,
            )
            chunks.append(self.encoder.encode_patches(pixels, self.config.clip_dense_mode))
        return torch.cat(chunks, 0)

    def predict(self, views: list[View]) -> list[np.ndarray]:
        if not views:
            return []
        return self._probabilities(views, self.patch_embeddings(views), self.text_embeddings())

    def predict_objects(self, objects: list[tuple[list[View], ObjectInfo]]) -> list[list]:
        """Batch mode: the views of several objects through the image model together, each
        object scored against its own category's prompts. Returns per object what ``predict``
        returns; the teacher stays bound to the last object."""
        all_views = [v for views, _ in objects for v in views]
        if not all_views:
            return [[] for _ in objects]
        patches = self.patch_embeddings(all_views)
        results, start = [], 0
        for views, info in objects:
            self.bind(info)
            chunk = patches[start : start + len(views)]
            start += len(views)
            results.append(self._probabilities(views, chunk, self.text_embeddings()))
        return results

    def _probabilities(self, views, patches: torch.Tensor, text: torch.Tensor) -> list:
        logits = self.config.clip_logit_scale * torch.einsum("vhwd,rd->vrhw", patches, text)
        width = int(self.config.clip_smoothing)
        if width > 1:
            # Box filter over the patch grid; border patches average only real neighbours.
            logits = F.avg_pool2d(
                logits, width, stride=1, padding=width // 2, count_include_pad=False
            )[..., : logits.shape[2], : logits.shape[3]]
        out = []
        for i, view in enumerate(views):
            height, width_px = view.face_ids.shape
            up = F.interpolate(
                logits[i : i + 1], size=(height, width_px), mode="bilinear", align_corners=False
            )
            probs = torch.softmax(up[0], dim=0).permute(1, 2, 0)
            on_object = torch.from_numpy(np.asarray(view.face_ids) >= 0).to(probs.device)
            probs = probs * on_object.unsqueeze(-1)
            out.append(probs.cpu().numpy().astype(np.float32, copy=False))
        return out


def clip_teacher(part_names: list[str], config: PartDistillConfig | None = None, **overrides):
    """Factory of the "clip" teacher: ``config.model`` names a transformers CLIP/SigLIP model
    (hub id or directory) or an open_clip one ("open_clip:ViT-B-16/openai"). Keyword
    overrides replace configuration fields (e.g. model=..., device=...)."""
    config = (config or PartDistillConfig()).replace(**overrides)
    name = model_for_teacher("clip", config)
    if name.startswith(OPEN_CLIP_PREFIX):
        from .open_clip_loader import load_open_clip_encoder

        encoder = load_open_clip_encoder(name, config)
    else:
        from .clip_encoders import load_transformers_encoder

        encoder = load_transformers_encoder(resolve_model(name, config), config)
    return ClipTeacher(part_names, encoder, config)

"""Box-wise teachers (the paper's B-VLM): OWLv2 and Grounding DINO through transformers.

``predict(views)`` returns per view a list of ``(box, probs)``: ``box`` = (x0, y0, x1, y1) in
pixels of the view, ``probs`` an (R,) float32 array of the detector's per-part scores in
[0, 1] (independent sigmoid scores, as these detectors and GLIP produce them). The box's part
is ``argmax(probs)`` and its confidence ``max(probs)``, the score the paper's Fig. 3 shows for a
box. Per view: boxes whose best score is under ``config.box_score_threshold`` are dropped,
boxes of one part overlapping more than ``config.box_nms_iou`` are merged into the best one,
and at most ``config.max_boxes_per_part`` boxes per part are kept.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import PartDistillConfig
from ..contracts import ObjectInfo, TeacherUnavailable, View
from ..device import resolve_device, use_half_precision
from .clip import prompts_for
from .models import (
    ResolvedModel,
    from_pretrained,
    load_once,
    model_for_teacher,
    resolve_model,
)
from .preprocess import normalisation, read_preprocessor_config, views_to_pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, B) intersection over union of xyxy boxes (A, 4) and (B, 4)."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def select_boxes(
    boxes: torch.Tensor, scores: torch.Tensor, config: PartDistillConfig
) -> list[tuple[tuple[float, float, float, float], np.ndarray]]:
    """Threshold, per-part non-maximum suppression and per-part limit.

    boxes (N, 4) xyxy pixels; scores (N, R) in [0, 1]. Returns [(box, probs (R,))], best first.
    """
    boxes, scores = boxes.float().cpu(), scores.float().cpu()
    best, part = scores.max(dim=1)
    chosen: list[int] = []
    for r in range(scores.shape[1]):
        candidates = torch.nonzero((part == r) & (best >= config.box_score_threshold)).flatten()
        candidates = candidates[torch.argsort(best[candidates], descending=True)]
        kept: list[int] = []
        for i in candidates.tolist():
            if len(kept) >= config.max_boxes_per_part:
                break
            if kept and box_iou(boxes[i : i + 1], boxes[kept]).max() > config.box_nms_iou:
                continue
            kept.append(i)
        chosen.extend(kept)
    chosen.sort(key=lambda i: -float(best[i]))
    return [
        (tuple(float(c) for c in boxes[i]), scores[i].numpy().astype(np.float32)) for i in chosen
    ]


def _clip_to_view(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    limits = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return torch.minimum(boxes.clamp(min=0), limits)


def _cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    centre, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


class _Loaded:
    """A detection model with its tokenizer and preprocessing, on one device."""

    def __init__(self, model, tokenizer, preprocessor: dict, device, dtype):
        self.model, self.tokenizer = model, tokenizer
        self.preprocessor = preprocessor
        self.device, self.dtype = device, dtype


def _load_detector(cls, resolved: ResolvedModel, config: PartDistillConfig, model_type: str):
    device = resolve_device(config.device)
    half = use_half_precision(config.half_precision, device)

    def load():
        from transformers import AutoConfig, AutoTokenizer

        found = getattr(from_pretrained(AutoConfig, resolved, config), "model_type", "")
        if found != model_type:
            raise TeacherUnavailable(
                f"model {resolved.name!r} is a {found or 'unknown'!r} model, not {model_type!r}"
            )
        dtype = torch.float16 if half else torch.float32
        model = from_pretrained(cls, resolved, config, dtype=dtype).to(device).eval()
        tokenizer = from_pretrained(AutoTokenizer, resolved, config)
        preprocessor = read_preprocessor_config(resolved, config)
        return _Loaded(model, tokenizer, preprocessor, device, dtype)

    return load_once(("detector", model_type, resolved.location, str(device), half), load)


class BoxTeacher:
    """Common part of the box teachers: binding, batching views, selecting boxes."""

    kind = "box"

    def __init__(self, part_names: list[str], loaded: _Loaded, config: PartDistillConfig):
        if not part_names:
            raise ValueError("a box teacher needs at least one part name")
        self.parts = list(part_names)
        self.loaded = loaded
        self.config = config
        self.category = ""

    def bind(self, info: ObjectInfo) -> None:
        self.category = (info.category or "").strip()

    def predict(self, views: list[View]) -> list[list]:
        batch = max(1, int(self.config.teacher_batch_views))
        out = []
        for start in range(0, len(views), batch):
            chunk = views[start : start + batch]
            boxes, scores = self._detect(chunk)
            for view, b, s in zip(chunk, boxes, scores, strict=True):
                height, width = view.face_ids.shape
                out.append(select_boxes(_clip_to_view(b, height, width), s, self.config))
        return out

    def _detect(self, views: list[View]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per view: (Q, 4) xyxy pixel boxes and (Q, R) part scores in [0, 1]."""
        raise NotImplementedError


class Owlv2Teacher(BoxTeacher):
    """OWLv2: every patch proposes a box; its class head scores the box against each part's
    text embedding (the mean over ``config.prompt_templates``)."""

    def __init__(self, part_names, loaded, config):
        super().__init__(part_names, loaded, config)
        self._queries: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def _text_queries(self) -> torch.Tensor:
        if self.category not in self._queries:
            templates = tuple(self.config.prompt_templates)
            prompts = [
                p for part in self.parts for p in prompts_for(part, self.category, templates)
            ]
            loaded = self.loaded
            length = int(loaded.model.config.text_config.max_position_embeddings)
            tokens = loaded.tokenizer(
                prompts, padding="max_length", truncation=True, max_length=length,
                return_tensors="pt",
            )  # fmt: skip
            features = loaded.model.owlv2.get_text_features(
                input_ids=tokens["input_ids"].to(loaded.device),
                attention_mask=tokens["attention_mask"].to(loaded.device),
            )
            features = getattr(features, "pooler_output", features).float()
            features = torch.nn.functional.normalize(features, dim=-1)
            features = features.reshape(len(self.parts), len(templates), -1).mean(1)
            self._queries[self.category] = features
        return self._queries[self.category]

    @torch.inference_mode()
    def _detect(self, views):
        loaded, model = self.loaded, self.loaded.model
        size = int(model.config.vision_config.image_size)
        mean, std = normalisation(loaded.preprocessor)
        pixels = views_to_pixels(
            [v.image for v in views], (size, size), mean, std, loaded.device, loaded.dtype,
            pad_to_square=True,
        )  # fmt: skip
        feature_map, _ = model.image_embedder(pixel_values=pixels)
        batch, grid_h, grid_w, dim = feature_map.shape
        image_feats = feature_map.reshape(batch, grid_h * grid_w, dim)
        queries = self._text_queries().to(image_feats.dtype)
        queries = queries.unsqueeze(0).expand(batch, -1, -1)
        mask = torch.ones(queries.shape[:2], dtype=torch.bool, device=queries.device)
        logits, _ = model.class_predictor(image_feats, queries, mask)
        boxes = model.box_predictor(image_feats, feature_map)  # cxcywh in the padded square
        scores = torch.sigmoid(logits.float())
        out_boxes = []
        for view, b in zip(views, boxes, strict=True):
            side = float(max(view.face_ids.shape))  # the square the view was padded to
            out_boxes.append(_cxcywh_to_xyxy(b.float()) * side)
        return out_boxes, list(scores)


class GroundingDinoTeacher(BoxTeacher):
    """Grounding DINO: one caption "part one . part two ." per view; a part's score for a box
    is the highest sigmoid score over the caption tokens of that part's name."""

    def _caption(self) -> tuple[str, list[tuple[int, int]]]:
        spans, caption = [], ""
        for part in self.parts:
            spans.append((len(caption), len(caption) + len(part)))
            caption += part.lower() + " . "
        return caption.strip(), spans

    @torch.inference_mode()
    def _detect(self, views):
        loaded, model = self.loaded, self.loaded.model
        caption, spans = self._caption()
        tokens = loaded.tokenizer(
            [caption] * len(views), return_tensors="pt", return_offsets_mapping=True
        )
        offsets = tokens.pop("offset_mapping")[0]
        token_part = torch.full((offsets.shape[0],), -1, dtype=torch.long)
        for r, (begin, end) in enumerate(spans):
            inside = (offsets[:, 0] >= begin) & (offsets[:, 1] <= end) & (offsets[:, 1] > 0)
            token_part[inside] = r
        pixels, mask = self._pixels(views)
        outputs = model(
            pixel_values=pixels,
            pixel_mask=mask,
            **{k: v.to(loaded.device) for k, v in tokens.items()},
        )
        token_scores = torch.sigmoid(outputs.logits.float())[:, :, : offsets.shape[0]]
        scores = torch.zeros(*token_scores.shape[:2], len(self.parts), device=token_scores.device)
        for r in range(len(self.parts)):
            columns = torch.nonzero(token_part == r).flatten().to(token_scores.device)
            if len(columns):
                scores[..., r] = token_scores[..., columns].max(dim=-1).values
        out_boxes = []
        for view, b in zip(views, outputs.pred_boxes.float(), strict=True):
            height, width = view.face_ids.shape
            scale = torch.tensor([width, height, width, height], device=b.device)
            out_boxes.append(_cxcywh_to_xyxy(b) * scale)
        return out_boxes, list(scores)

    def _pixels(self, views) -> tuple[torch.Tensor, torch.Tensor]:
        """Each view resized so its short side is the processor's shortest edge (long side
        capped), padded bottom-right to the batch's largest; the pixel mask marks real pixels."""
        loaded = self.loaded
        size = loaded.preprocessor.get("size") or {}
        short = int(size.get("shortest_edge", 800))
        longest = int(size.get("longest_edge", 1333))
        mean = tuple(loaded.preprocessor.get("image_mean") or IMAGENET_MEAN)
        std = tuple(loaded.preprocessor.get("image_std") or IMAGENET_STD)
        resized = []
        for view in views:
            height, width = view.image.shape[:2]
            scale = min(short / min(height, width), longest / max(height, width))
            target = (max(1, round(height * scale)), max(1, round(width * scale)))
            resized.append(
                views_to_pixels([view.image], target, mean, std, loaded.device, loaded.dtype)[0]
            )
        full_h = max(p.shape[1] for p in resized)
        full_w = max(p.shape[2] for p in resized)
        device = loaded.device
        pixels = torch.zeros(len(views), 3, full_h, full_w, dtype=loaded.dtype, device=device)
        mask = torch.zeros(len(views), full_h, full_w, dtype=torch.long, device=device)
        for i, p in enumerate(resized):
            pixels[i, :, : p.shape[1], : p.shape[2]] = p
            mask[i, : p.shape[1], : p.shape[2]] = 1
        return pixels, mask


def owlv2_teacher(part_names: list[str], config: PartDistillConfig | None = None, **overrides):
    """Factory of the "owlv2" teacher (default model google/owlv2-base-patch16-ensemble)."""
    from transformers import Owlv2ForObjectDetection

    config = (config or PartDistillConfig()).replace(**overrides)
    resolved = resolve_model(model_for_teacher("owlv2", config), config)
    loaded = _load_detector(Owlv2ForObjectDetection, resolved, config, "owlv2")
    return Owlv2Teacher(part_names, loaded, config)


def grounding_dino_teacher(
    part_names: list[str], config: PartDistillConfig | None = None, **overrides
):
    """Factory of the "grounding-dino" teacher (default IDEA-Research/grounding-dino-base)."""
    from transformers import GroundingDinoForObjectDetection

    config = (config or PartDistillConfig()).replace(**overrides)
    resolved = resolve_model(model_for_teacher("grounding-dino", config), config)
    loaded = _load_detector(GroundingDinoForObjectDetection, resolved, config, "grounding-dino")
    return GroundingDinoTeacher(part_names, loaded, config)

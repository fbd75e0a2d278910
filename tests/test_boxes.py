"""Box teachers (OWLv2, Grounding DINO) on tiny real models saved like real checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_teachers import (
    make_view,
    save_tiny_clip,
    save_tiny_grounding_dino,
    save_tiny_owlv2,
)
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import ObjectInfo, TeacherUnavailable
from partdistill.backend.teachers import build_teacher
from partdistill.backend.teachers.boxes import box_iou, select_boxes

PARTS = ["leg", "seat", "back"]


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory):
    return save_tiny_owlv2(tmp_path_factory.mktemp("tiny-owlv2"))


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory):
    return save_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-gdino"), PARTS)


def _config(model_dir, **changes) -> PartDistillConfig:
    return PartDistillConfig(model=str(model_dir), device="cpu", **changes)


def _check_boxes(predictions, views, config):
    assert len(predictions) == len(views)
    for view, boxes in zip(views, predictions, strict=True):
        height, width = view.face_ids.shape
        per_part = np.zeros(len(PARTS), int)
        for (x0, y0, x1, y1), probs in boxes:
            assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
            assert probs.shape == (len(PARTS),) and probs.dtype == np.float32
            assert np.all((probs >= 0) & (probs <= 1))
            assert probs.max() >= config.box_score_threshold
            per_part[int(probs.argmax())] += 1
        assert np.all(per_part <= config.max_boxes_per_part)
        confidences = [float(p.max()) for _, p in boxes]
        assert confidences == sorted(confidences, reverse=True)


def test_select_boxes_threshold_nms_and_limit():
    config = PartDistillConfig(box_score_threshold=0.3, box_nms_iou=0.5, max_boxes_per_part=2)
    boxes = torch.tensor(
        [
            [0, 0, 10, 10],  # part 0, 0.9
            [1, 1, 10, 10],  # part 0, 0.8, IoU 0.81 with the first: suppressed
            [20, 20, 30, 30],  # part 0, 0.7
            [40, 40, 50, 50],  # part 0, 0.6: over the limit of 2
            [0, 0, 10, 10],  # part 1, 0.5: same place as box 0 but another part: kept
            [5, 5, 9, 9],  # part 1, 0.2: under the threshold
        ],
        dtype=torch.float32,
    )
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.1], [0.7, 0.2], [0.6, 0.1], [0.1, 0.5], [0.1, 0.2]])
    chosen = select_boxes(boxes, scores, config)
    assert [box for box, _ in chosen] == [(0, 0, 10, 10), (20, 20, 30, 30), (0, 0, 10, 10)]
    np.testing.assert_allclose(chosen[2][1], [0.1, 0.5])
    iou = box_iou(boxes[:2], boxes[:2])
    assert iou[0, 1] == pytest.approx(81 / 100)


def test_owlv2_boxes_shapes_limits_and_batching(owl_dir):
    config = _config(owl_dir, box_score_threshold=0.0, max_boxes_per_part=2)
    teacher = build_teacher("owlv2", PARTS, config=config)
    assert teacher.kind == "box"
    views = [make_view(0, 48, 40), make_view(1, 32, 32), make_view(2, 40, 56)]
    together = teacher.predict(views)
    _check_boxes(together, views, config)
    assert sum(len(b) for b in together) > 0
    alone = [teacher.predict([v])[0] for v in views]
    for a, b in zip(together, alone, strict=True):
        assert len(a) == len(b)
        for (box_a, p_a), (box_b, p_b) in zip(a, b, strict=True):
            np.testing.assert_allclose(box_a, box_b, atol=1e-3)
            np.testing.assert_allclose(p_a, p_b, atol=1e-5)


def test_owlv2_matches_the_models_own_forward(owl_dir):
    """Our split (text once, images once) equals Owlv2ForObjectDetection.forward."""
    template = ("a photo of a {part}.",)
    config = _config(owl_dir, prompt_templates=template, box_score_threshold=0.0)
    teacher = build_teacher("owlv2", PARTS, config=config)
    view = make_view(4, 64, 64)  # square at the model's size: no padding, no resize
    boxes, scores = teacher._detect([view])
    model, tokenizer = teacher.loaded.model, teacher.loaded.tokenizer
    tokens = tokenizer(
        [template[0].format(part=p) for p in PARTS],
        padding="max_length", max_length=16, return_tensors="pt",
    )  # fmt: skip
    mean = torch.tensor(teacher.loaded.preprocessor["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(teacher.loaded.preprocessor["image_std"]).view(1, 3, 1, 1)
    pixels = torch.from_numpy(view.image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        out = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            pixel_values=(pixels - mean) / std,
        )
    np.testing.assert_allclose(scores[0].numpy(), torch.sigmoid(out.logits[0]).numpy(), atol=1e-4)
    cx, cy, w, h = out.pred_boxes[0].unbind(-1)
    theirs = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * 64
    np.testing.assert_allclose(boxes[0].numpy(), theirs.numpy(), atol=1e-3)


def test_owlv2_queries_depend_on_the_category(owl_dir):
    teacher = build_teacher("owlv2", PARTS, config=_config(owl_dir))
    teacher.bind(ObjectInfo(category="chair"))
    chair = teacher._text_queries().clone()
    teacher.bind(ObjectInfo(category="table"))
    assert chair.shape == (len(PARTS), 32)
    assert not torch.allclose(chair, teacher._text_queries())


def test_grounding_dino_parts_map_to_their_caption_tokens(dino_dir):
    config = _config(dino_dir, box_score_threshold=0.0)
    teacher = build_teacher("grounding-dino", PARTS, config=config)
    caption, spans = teacher._caption()
    assert caption == "leg . seat . back ."
    assert [caption[a:b] for a, b in spans] == PARTS
    views = [make_view(0, 48, 40), make_view(1, 32, 32)]
    boxes, scores = teacher._detect(views)
    tokens = teacher.loaded.tokenizer([caption] * 2, return_tensors="pt")
    pixels, mask = teacher._pixels(views)
    assert pixels.shape[2:] == (77, 64) and mask[1].sum() == 64 * 64  # short side 64
    with torch.inference_mode():
        out = teacher.loaded.model(pixel_values=pixels, pixel_mask=mask, **tokens)
    token_scores = torch.sigmoid(out.logits)
    # [CLS] leg . seat . back . [SEP]: the parts are tokens 1, 3 and 5.
    np.testing.assert_allclose(scores[0].numpy(), token_scores[0][:, [1, 3, 5]].numpy(), atol=1e-5)
    _check_boxes(teacher.predict(views), views, config)


def test_grounding_dino_batched_equals_one_at_a_time(dino_dir):
    teacher = build_teacher("grounding-dino", PARTS, config=_config(dino_dir))
    views = [make_view(5, 40, 40), make_view(6, 40, 40)]
    together = teacher.predict(views)
    for view, boxes in zip(views, together, strict=True):
        alone = teacher.predict([view])[0]
        assert len(alone) == len(boxes)
        for (box_a, p_a), (box_b, p_b) in zip(boxes, alone, strict=True):
            np.testing.assert_allclose(box_a, box_b, atol=1e-3)
            np.testing.assert_allclose(p_a, p_b, atol=1e-4)


def test_a_clip_model_is_not_a_detector(tmp_path):
    clip_dir = save_tiny_clip(tmp_path / "clip")
    with pytest.raises(TeacherUnavailable, match="is a 'clip' model, not 'owlv2'"):
        build_teacher("owlv2", PARTS, config=_config(clip_dir))

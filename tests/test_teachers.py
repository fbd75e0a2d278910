"""The pixel-wise CLIP teacher on tiny real CLIP / SigLIP models saved like real checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures_teachers import (
    clip_bpe_file,
    make_view,
    save_tiny_clip,
    save_tiny_siglip,
    write_clip_tokenizer,
)
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import ObjectInfo, TeacherUnavailable
from partdistill.backend.teachers import build_teacher
from partdistill.backend.teachers.clip import clip_teacher, prompts_for
from partdistill.backend.teachers.open_clip_loader import import_open_clip

PARTS = ["leg", "seat", "back"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    return save_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


def _config(model_dir, **changes) -> PartDistillConfig:
    return PartDistillConfig(model=str(model_dir), device="cpu", **changes)


def test_real_clip_token_ids_offline(tmp_path):
    if clip_bpe_file() is None:
        pytest.skip("open_clip_torch's bpe_simple_vocab_16e6.txt.gz is not installed")
    from transformers import AutoTokenizer

    assert write_clip_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    ids = tokenizer("a photo of the leg of a chair")["input_ids"]
    assert ids == [49406, 320, 1125, 539, 518, 4924, 539, 320, 4269, 49407]


def test_probabilities_shape_sum_and_background(clip_dir):
    teacher = build_teacher("clip", PARTS, config=_config(clip_dir))
    assert teacher.kind == "pixel"
    views = [make_view(0, 48, 40), make_view(1, 32, 32)]
    out = teacher.predict(views)
    assert len(out) == 2
    for view, probs in zip(views, out, strict=True):
        assert probs.shape == (*view.face_ids.shape, len(PARTS))
        assert probs.dtype == np.float32
        on = view.face_ids >= 0
        np.testing.assert_allclose(probs[on].sum(-1), 1.0, atol=1e-5)
        assert np.all(probs[~on] == 0.0)
        assert np.all(probs >= 0.0)


def test_batched_equals_one_view_at_a_time(clip_dir):
    teacher = clip_teacher(PARTS, _config(clip_dir))
    views = [make_view(i) for i in range(4)]
    together = teacher.predict(views)
    alone = [teacher.predict([v])[0] for v in views]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    small_batches = clip_teacher(PARTS, _config(clip_dir, teacher_batch_views=3)).predict(views)
    for a, b in zip(together, small_batches, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_model_loaded_once_per_process(clip_dir):
    first = clip_teacher(PARTS, _config(clip_dir))
    second = clip_teacher(["wing"], _config(clip_dir))
    assert first.encoder is second.encoder


def test_prompts_use_the_category_and_average_templates(clip_dir):
    templates = ("the {part} of a {object}.", "a photo of the {part} of a {object}.")
    assert prompts_for("leg", "chair", templates) == [
        "the leg of a chair.",
        "a photo of the leg of a chair.",
    ]
    assert prompts_for("leg", "", templates)[0] == "the leg of a object."
    teacher = clip_teacher(PARTS, _config(clip_dir, prompt_templates=templates))
    text = teacher.text_embeddings("chair")
    encoder = teacher.encoder
    manual = encoder.encode_text(prompts_for("seat", "chair", templates)).mean(0)
    np.testing.assert_allclose(text[1].numpy(), F.normalize(manual, dim=0).numpy(), atol=1e-5)
    assert not torch.allclose(text, teacher.text_embeddings(""))
    view = make_view(3)
    teacher.bind(ObjectInfo(category="chair"))
    as_chair = teacher.predict([view])[0]
    teacher.bind(ObjectInfo(category="table"))
    as_table = teacher.predict([view])[0]
    assert not np.allclose(as_chair, as_table)


def test_predict_objects_matches_bind_then_predict(clip_dir):
    teacher = clip_teacher(PARTS, _config(clip_dir))
    objects = [
        ([make_view(10), make_view(11)], ObjectInfo(name="a", category="chair")),
        ([make_view(12, 32, 32)], ObjectInfo(name="b", category="table")),
    ]
    together = teacher.predict_objects(objects)
    for (views, info), got in zip(objects, together, strict=True):
        teacher.bind(info)
        for a, b in zip(got, teacher.predict(views), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_standard_mode_equals_the_models_own_patch_tokens(clip_dir):
    teacher = clip_teacher(PARTS, _config(clip_dir, clip_dense_mode="standard"))
    encoder = teacher.encoder
    pixels = torch.randn(2, 3, 64, 64)
    ours = encoder.encode_patches(pixels, "standard")
    model = encoder.model
    with torch.inference_mode():
        hidden = model.vision_model(pixel_values=pixels).last_hidden_state[:, 1:]
        theirs = F.normalize(
            model.visual_projection(model.vision_model.post_layernorm(hidden)), dim=-1
        )
    assert ours.shape == (2, 4, 4, 24)
    np.testing.assert_allclose(ours.reshape(2, 16, 24).numpy(), theirs.numpy(), atol=1e-5)
    value = encoder.encode_patches(pixels, "value")
    assert not torch.allclose(ours, value, atol=1e-3)
    with pytest.raises(ValueError, match="clip_dense_mode"):
        encoder.encode_patches(pixels, "sideways")


def test_value_mode_last_block_keeps_patches_local(clip_dir):
    """In "value" mode a patch's feature depends on the others only through earlier blocks:
    with a 1-block model, changing one patch leaves every other patch's feature unchanged."""
    from transformers import CLIPModel

    teacher = clip_teacher(PARTS, _config(clip_dir))
    encoder = teacher.encoder
    one_block = CLIPModel(encoder.model.config).eval()
    one_block.load_state_dict(encoder.model.state_dict())
    one_block.vision_model.encoder.layers = one_block.vision_model.encoder.layers[-1:]
    saved = encoder.model
    encoder.model = one_block
    try:
        pixels = torch.randn(1, 3, 64, 64)
        changed = pixels.clone()
        changed[:, :, :16, :16] += 1.0  # patch (0, 0) only
        for mode, local in (("value", True), ("standard", False)):
            a = encoder.encode_patches(pixels, mode)[0].reshape(16, -1)
            b = encoder.encode_patches(changed, mode)[0].reshape(16, -1)
            assert not torch.allclose(a[0], b[0], atol=1e-4)
            assert torch.allclose(a[1:], b[1:], atol=1e-5) == local
    finally:
        encoder.model = saved


def test_smoothing_averages_each_patch_with_its_grid_neighbours(clip_dir):
    view = make_view(5)
    teacher = clip_teacher(PARTS, _config(clip_dir, clip_smoothing=3))
    got = teacher.predict([view])[0]
    logits = 100.0 * torch.einsum(
        "hwd,rd->rhw", teacher.patch_embeddings([view])[0], teacher.text_embeddings()
    )
    smoothed = torch.zeros_like(logits)
    for i in range(4):
        for j in range(4):  # mean over the 3 x 3 neighbours that exist (4 at a corner)
            smoothed[:, i, j] = logits[:, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].mean((1, 2))
    up = F.interpolate(smoothed[None], size=view.face_ids.shape, mode="bilinear")[0]
    expected = torch.softmax(up, 0).permute(1, 2, 0).numpy() * (view.face_ids >= 0)[..., None]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    sharp = clip_teacher(PARTS, _config(clip_dir, clip_smoothing=1)).predict([view])[0]
    assert not np.allclose(sharp, got, atol=1e-3)


def test_siglip_checkpoint_through_the_same_loader(siglip_dir):
    teacher = clip_teacher(PARTS, _config(siglip_dir))
    assert teacher.encoder.is_siglip
    views = [make_view(20), make_view(21)]
    out = teacher.predict(views)
    on = views[0].face_ids >= 0
    np.testing.assert_allclose(out[0][on].sum(-1), 1.0, atol=1e-5)
    alone = teacher.predict(views[1:])[0]
    np.testing.assert_allclose(out[1], alone, atol=1e-5)


def test_not_a_clip_model_is_refused_with_a_reason(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            vocab_size=100,
        )
    ).save_pretrained(tmp_path)
    with pytest.raises(TeacherUnavailable, match="'bert' model.*CLIP or SigLIP"):
        clip_teacher(PARTS, _config(tmp_path))


def test_open_clip_model_where_open_clip_cannot_import(tmp_path):
    try:
        import_open_clip("open_clip:ViT-B-16/openai")
    except TeacherUnavailable as exc:
        message = str(exc)
        assert "open_clip:ViT-B-16/openai" in message
        assert "cannot be imported here" in message
        assert "--model openai/clip-vit-base-patch16" in message
        with pytest.raises(TeacherUnavailable, match="cannot be imported here"):
            clip_teacher(PARTS, PartDistillConfig(model="open_clip:ViT-B-16/openai"))
        pytest.skip(f"open_clip cannot import here, so only its error was tested: {message}")
    # open_clip imports: a random ViT-B-32 saved as a checkpoint file, through the teacher.
    import open_clip

    checkpoint = tmp_path / "vit-b-32.pt"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), checkpoint)
    teacher = clip_teacher(PARTS, PartDistillConfig(model=f"open_clip:ViT-B-32/{checkpoint}"))
    views = [make_view(30), make_view(31)]
    out = teacher.predict(views)
    on = views[0].face_ids >= 0
    np.testing.assert_allclose(out[0][on].sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(out[1], teacher.predict(views[1:])[0], atol=1e-4)

"""Dense (per-patch) image features and text features from CLIP-family models.

PointCLIPv2's recipe: the vision transformer's patch tokens after its final layer norm, through
the visual projection, L2-normalised, so that each patch can be compared with text embeddings
by cosine. Plain patch tokens of the last block ("standard") mix the whole image through the
last attention; "value" replaces that attention by its value path (each token attends to
itself only: out_proj(v_proj(ln1(x))), the rest of the block unchanged), which keeps the
features local (MaskCLIP, Zhou et al. 2022).

Supported: transformers ``CLIPModel`` (ViT-B/32, B/16, L/14, ...) and ``SiglipModel`` (no CLS
token; its attention-pooling head is applied per patch through the head's value path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import PartDistillConfig
from ..contracts import TeacherUnavailable
from ..device import resolve_device, use_half_precision
from .models import ResolvedModel, from_pretrained, load_once
from .preprocess import normalisation, read_preprocessor_config

DENSE_MODES = ("value", "standard")


def check_dense_mode(mode: str) -> None:
    """ValueError unless ``mode`` is one of DENSE_MODES (config.clip_dense_mode)."""
    if mode not in DENSE_MODES:
        raise ValueError(f"clip_dense_mode must be one of {', '.join(DENSE_MODES)}, not {mode!r}")


class TransformersDenseEncoder:
    """Patch and text embeddings of a transformers CLIP or SigLIP model, on one device.

    encode_patches(pixels (B, 3, S, S)) -> (B, gh, gw, D) float32, unit length;
    encode_text(prompts: N strings) -> (N, D) float32, unit length.
    """

    def __init__(self, model, tokenizer, mean, std, device: torch.device, dtype: torch.dtype):
        self.model = model
        self.tokenizer = tokenizer
        self.mean, self.std = mean, std
        self.device, self.dtype = device, dtype
        vision = model.config.vision_config
        self.image_size = (int(vision.image_size), int(vision.image_size))
        self.grid = (vision.image_size // vision.patch_size,) * 2
        self.is_siglip = not hasattr(model, "visual_projection")
        # SigLIP was trained on texts padded to the full length; CLIP pads to the batch maximum.
        self.text_padding = "max_length" if self.is_siglip else True
        self.text_length = int(model.config.text_config.max_position_embeddings)

    @torch.inference_mode()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts,
            padding=self.text_padding,
            truncation=True,
            max_length=self.text_length,
            return_tensors="pt",
        )
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k != "token_type_ids"}
        if self.is_siglip:
            tokens.pop("attention_mask", None)  # SigLIP's text tower attends to the padding
        features = self.model.get_text_features(**tokens)
        features = getattr(features, "pooler_output", features)
        return F.normalize(features.float(), dim=-1)

    @torch.inference_mode()
    def encode_patches(self, pixels: torch.Tensor, mode: str) -> torch.Tensor:
        check_dense_mode(mode)
        vision = self.model.vision_model
        hidden = vision.embeddings(pixels.to(self.device, self.dtype))
        if hasattr(vision, "pre_layrnorm"):
            hidden = vision.pre_layrnorm(hidden)
        layers = vision.encoder.layers
        for layer in layers[:-1]:
            hidden = layer(hidden, None)
        last = layers[-1]
        if mode == "standard":
            hidden = last(hidden, None)
        else:
            attn = last.self_attn
            hidden = hidden + attn.out_proj(attn.v_proj(last.layer_norm1(hidden)))
            hidden = hidden + last.mlp(last.layer_norm2(hidden))
        patches = hidden[:, -self.grid[0] * self.grid[1] :]  # drops CLIP's CLS token
        patches = vision.post_layernorm(patches)
        if self.is_siglip:
            patches = _siglip_head_per_patch(vision.head, patches)
        else:
            patches = self.model.visual_projection(patches)
        patches = F.normalize(patches.float(), dim=-1)
        return patches.reshape(patches.shape[0], *self.grid, patches.shape[-1])


def _siglip_head_per_patch(head, patches: torch.Tensor) -> torch.Tensor:
    """SigLIP's attention-pooling head applied to every patch through its value path."""
    dim = patches.shape[-1]
    attention = head.attention
    weight = attention.in_proj_weight[2 * dim :]
    bias = attention.in_proj_bias[2 * dim :] if attention.in_proj_bias is not None else None
    pooled = attention.out_proj(F.linear(patches, weight, bias))
    return pooled + head.mlp(head.layernorm(pooled))


def load_transformers_encoder(
    resolved: ResolvedModel, config: PartDistillConfig
) -> TransformersDenseEncoder:
    """Load (once per process, per model, device and precision) a CLIP-family model."""
    device = resolve_device(config.device)
    half = use_half_precision(config.half_precision, device)
    key = ("dense", resolved.location, str(device), half)
    return load_once(key, lambda: _load(resolved, config, device, half))


def _load(resolved, config, device, half) -> TransformersDenseEncoder:
    from transformers import AutoConfig, AutoTokenizer, CLIPModel, SiglipModel

    model_config = from_pretrained(AutoConfig, resolved, config)
    model_type = getattr(model_config, "model_type", "")
    classes = {"clip": CLIPModel, "siglip": SiglipModel}
    if model_type not in classes:
        raise TeacherUnavailable(
            f"model {resolved.name!r} is a {model_type or 'unknown'!r} model; the CLIP teacher "
            "takes CLIP or SigLIP models (pass one with --model, or use --teacher owlv2 / "
            "grounding-dino for detection models)"
        )
    dtype = torch.float16 if half else torch.float32
    model = from_pretrained(classes[model_type], resolved, config, dtype=dtype)
    model = model.to(device).eval()
    tokenizer = from_pretrained(AutoTokenizer, resolved, config)
    preprocessor = read_preprocessor_config(resolved, config)
    mean, std = normalisation(preprocessor)
    return TransformersDenseEncoder(model, tokenizer, mean, std, device, dtype)

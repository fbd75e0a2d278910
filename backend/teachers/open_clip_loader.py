"""The CLIP teacher over open_clip models: "open_clip:ARCH/TAG" or "open_clip:ARCH/FILE".

open_clip is imported only here and only when such a model is asked for: it imports
torchvision, which is not always importable beside the installed torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import PartDistillConfig
from ..contracts import TeacherUnavailable
from ..device import resolve_device, use_half_precision
from .clip_encoders import check_dense_mode
from .models import OPEN_CLIP_PREFIX, downloads_allowed, hub_cache_dir, load_once
from .preprocess import CLIP_MEAN, CLIP_STD


def parse_open_clip_name(name: str) -> tuple[str, str]:
    """ "open_clip:ViT-B-16/openai" -> ("ViT-B-16", "openai"); the tag may be a file path."""
    body = name[len(OPEN_CLIP_PREFIX) :] if name.startswith(OPEN_CLIP_PREFIX) else name
    arch, sep, pretrained = body.partition("/")
    if not arch or not sep or not pretrained:
        raise TeacherUnavailable(
            f"open_clip model {name!r} must be written open_clip:ARCH/TAG "
            "(e.g. open_clip:ViT-B-16/openai) or open_clip:ARCH/path/to/checkpoint.pt"
        )
    return arch, pretrained


def import_open_clip(name: str):
    """Import open_clip or raise TeacherUnavailable saying why it cannot be imported."""
    try:
        import open_clip
    except Exception as exc:  # ImportError, or a torchvision that fails to load its operators
        raise TeacherUnavailable(
            f"model {name!r} needs the open_clip_torch package, which cannot be imported here "
            f"({type(exc).__name__}: {exc}); open_clip needs a torchvision build that matches "
            "the installed torch. Install both, or use a transformers CLIP model instead: "
            "--model openai/clip-vit-base-patch16 or --model DIR."
        ) from exc
    return open_clip


def check_open_clip(name: str, config: PartDistillConfig) -> None:
    """Cheap check that an open_clip model can be built: the package, then its weights."""
    arch, pretrained = parse_open_clip_name(name)
    open_clip = import_open_clip(name)
    if arch not in open_clip.list_models():
        raise TeacherUnavailable(f"open_clip has no architecture {arch!r} (model {name!r})")
    if _is_file_reference(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise TeacherUnavailable(
                f"open_clip checkpoint {Path(pretrained).expanduser()} (model {name!r}) "
                "does not exist"
            )
        return
    cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise TeacherUnavailable(f"open_clip {arch} has no weights tagged {pretrained!r}: {tags}")
    if downloads_allowed(config) or _open_clip_cached(cfg, config):
        return
    repo = (cfg.get("hf_hub") or "").rstrip("/")
    raise TeacherUnavailable(
        f"open_clip weights {arch}/{pretrained} (model {name!r}) are not in the cache "
        f"{hub_cache_dir(config)} and downloads are off.",
        f"On a machine that is online, run `python scripts/download_models.py {name}`"
        + (f" (or `hf download {repo}`)" if repo else "")
        + ", copy the cache here, or pass a checkpoint file: open_clip:{arch}/FILE.pt; "
        "or use --model DIR, --teacher package.module:factory, or --teacher simulated.",
    )


def _is_file_reference(pretrained: str) -> bool:
    return "/" in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))


def _open_clip_cached(cfg: dict, config: PartDistillConfig) -> bool:
    from huggingface_hub import try_to_load_from_cache

    repo = (cfg.get("hf_hub") or "").rstrip("/")
    if not repo:
        return False
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir(config))
        if isinstance(found, str):
            return True
    return False


class OpenClipDenseEncoder:
    """Same interface as clip_encoders.TransformersDenseEncoder, over an open_clip ViT."""

    def __init__(self, model, tokenizer, mean, std, device, dtype):
        visual = model.visual
        if not hasattr(visual, "transformer") or getattr(visual, "attn_pool", None) is not None:
            raise TeacherUnavailable(
                "the CLIP teacher needs an open_clip ViT without attention pooling"
            )
        self.model, self.tokenizer = model, tokenizer
        self.mean, self.std = mean, std
        self.device, self.dtype = device, dtype
        self.image_size = tuple(visual.image_size)
        self.grid = tuple(visual.grid_size)

    @torch.inference_mode()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    @torch.inference_mode()
    def encode_patches(self, pixels: torch.Tensor, mode: str) -> torch.Tensor:
        check_dense_mode(mode)
        visual = self.model.visual
        x = visual._embeds(pixels.to(self.device, self.dtype))
        transformer = visual.transformer
        blocks = transformer.resblocks
        if not getattr(transformer, "batch_first", True):
            x = x.transpose(0, 1)
        for block in blocks[:-1]:
            x = block(x)
        last = blocks[-1]
        if mode == "standard":
            x = last(x)
        else:
            # Value path of the last attention: each token attends to itself only.
            attn = last.attn
            dim = x.shape[-1]
            bias = attn.in_proj_bias[2 * dim :] if attn.in_proj_bias is not None else None
            values = F.linear(last.ln_1(x), attn.in_proj_weight[2 * dim :], bias)
            x = x + last.ls_1(attn.out_proj(values))
            x = x + last.ls_2(last.mlp(last.ln_2(x)))
        if not getattr(transformer, "batch_first", True):
            x = x.transpose(0, 1)
        patches = visual.ln_post(x[:, -self.grid[0] * self.grid[1] :])
        if visual.proj is not None:
            patches = patches @ visual.proj
        patches = F.normalize(patches.float(), dim=-1)
        return patches.reshape(patches.shape[0], *self.grid, patches.shape[-1])


def load_open_clip_encoder(name: str, config: PartDistillConfig) -> OpenClipDenseEncoder:
    """Load (once per process) an open_clip model as a dense encoder."""
    check_open_clip(name, config)
    device = resolve_device(config.device)
    half = use_half_precision(config.half_precision, device)
    key = ("open_clip", name, str(device), half)
    return load_once(key, lambda: _load(name, config, device, half))


def _load(name, config, device, half) -> OpenClipDenseEncoder:
    open_clip = import_open_clip(name)
    arch, pretrained = parse_open_clip_name(name)
    if _is_file_reference(pretrained):
        pretrained = str(Path(pretrained).expanduser())
    model = open_clip.create_model(
        arch,
        pretrained=pretrained,
        precision="fp16" if half else "fp32",
        device=device,
        cache_dir=str(hub_cache_dir(config)),
        require_pretrained=True,  # never a randomly initialised teacher by mistake
    ).eval()
    tokenizer = open_clip.get_tokenizer(arch)
    preprocess = open_clip.get_model_preprocess_cfg(model)
    mean = tuple(preprocess.get("mean") or CLIP_MEAN)
    std = tuple(preprocess.get("std") or CLIP_STD)
    dtype = torch.float16 if half else torch.float32
    return OpenClipDenseEncoder(model, tokenizer, mean, std, device, dtype)

"""Tiny real teacher models for tests: built from transformers configs, saved like real weights.

The CLIP tokenizer is the real one: OpenAI's BPE merges ship inside the open_clip_torch wheel
(``open_clip/bpe_simple_vocab_16e6.txt.gz``), readable without importing open_clip (which needs
torchvision). Without that file a byte-level tokenizer with no merges stands in (a valid
CLIPTokenizer; only the token-id test needs the real merges and skips).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
from partdistill.backend.contracts import View

CLIP_VOCAB_SIZE = 49408
# open_clip's SimpleTokenizer keeps this many merges of the file (49152 - 256 - 2).
CLIP_NUM_MERGES = 49152 - 256 - 2


def clip_bpe_file() -> Path | None:
    """The BPE merges file inside the installed open_clip_torch wheel, or None."""
    spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    return path if path.is_file() else None


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 bytes to printable characters (CLIP uses it too)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def write_clip_tokenizer(directory: Path, real: bool = True) -> bool:
    """Save a transformers CLIPTokenizer into ``directory``; True when it has the real merges."""
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = clip_bpe_file() if real else None
    merges: list[tuple[str, str]] = []
    if bpe is not None:
        lines = gzip.open(bpe, "rt", encoding="utf-8").read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : CLIP_NUM_MERGES + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    vocab_file = directory / "vocab.json"
    merges_file = directory / "merges.txt"
    vocab_file.write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    # Loaded from the two files as a real checkpoint's would be, then saved in today's format.
    CLIPTokenizer.from_pretrained(directory, local_files_only=True).save_pretrained(directory)
    return bpe is not None


def tiny_text_config(**changes) -> dict:
    cfg = dict(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
    )
    cfg.update(changes)
    return cfg


def tiny_vision_config(**changes) -> dict:
    cfg = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=16,
    )
    cfg.update(changes)
    return cfg


def save_preprocessor(directory: Path, mean, std, size: int) -> None:
    (Path(directory) / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": list(mean), "image_std": list(std), "size": size})
    )


def save_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A 2-layer CLIP (hidden 32, 64 px, 16 px patches: a 4 x 4 grid) with the CLIP tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    text = tiny_text_config(**_special_tokens(directory))
    config = CLIPConfig(text_config=text, vision_config=tiny_vision_config(), projection_dim=24)
    CLIPModel(config).eval().save_pretrained(directory)
    save_preprocessor(directory, (0.48, 0.45, 0.40), (0.27, 0.26, 0.28), 64)
    return Path(directory)


def save_tiny_siglip(directory: Path, seed: int = 0) -> Path:
    """A 2-layer SigLIP (attention-pooling head, no CLS token) sharing the CLIP tokenizer."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(seed)
    text = tiny_text_config(max_position_embeddings=16, **_special_tokens(directory))
    config = SiglipConfig(text_config=text, vision_config=tiny_vision_config())
    SiglipModel(config).eval().save_pretrained(directory)
    save_preprocessor(directory, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 64)
    return Path(directory)


def _special_tokens(directory: Path) -> dict:
    """Write the tokenizer into ``directory``; its special ids for the text config."""
    from transformers import AutoTokenizer

    write_clip_tokenizer(directory)
    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return dict(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )


def make_view(seed: int, height: int = 48, width: int = 40) -> View:
    """A view with a random image and an object (a filled ellipse of polygon ids) in the middle."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    inside = ((rows - height / 2) / (height * 0.4)) ** 2 + (
        (cols - width / 2) / (width * 0.35)
    ) ** 2
    face_ids = np.where(inside <= 1.0, (rows * width + cols) % 97, -1).astype(np.int32)
    K = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    return View(image=image, face_ids=face_ids, K=K, world_to_camera=np.eye(4))


def save_tiny_owlv2(directory: Path, seed: int = 0) -> Path:
    """A 2-layer OWLv2 (64 px, a 4 x 4 grid of box proposals) with the CLIP tokenizer."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection

    torch.manual_seed(seed)
    text = tiny_text_config(max_position_embeddings=16, **_special_tokens(directory))
    # The class head compares patches with text embeddings in the text width, as OWLv2 base
    # (projection 512 = text width 512) does.
    config = Owlv2Config(text_config=text, vision_config=tiny_vision_config(), projection_dim=32)
    Owlv2ForObjectDetection(config).eval().save_pretrained(directory)
    save_preprocessor(directory, (0.48, 0.45, 0.40), (0.27, 0.26, 0.28), 64)
    return Path(directory)


def write_word_tokenizer(directory: Path, words: list[str]) -> None:
    """A BERT word-piece tokenizer knowing ``words`` (Grounding DINO's text side is BERT)."""
    from transformers import BertTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."]
    (directory / "vocab.txt").write_text("\n".join(specials + sorted(set(words))) + "\n")
    BertTokenizer.from_pretrained(directory, local_files_only=True).save_pretrained(directory)


def save_tiny_grounding_dino(directory: Path, words: list[str], seed: int = 0) -> Path:
    """A tiny Grounding DINO (Swin backbone 2 stages, 1-layer BERT, 12 queries)."""
    import torch
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        SwinConfig,
    )

    torch.manual_seed(seed)
    write_word_tokenizer(directory, words)
    backbone = SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 1],
        window_size=4, out_features=["stage1", "stage2"],
    )  # fmt: skip
    text = BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, num_queries=12,
        encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=2,
        encoder_n_points=2, decoder_n_points=2, max_text_len=32,
    )  # fmt: skip
    GroundingDinoForObjectDetection(config).eval().save_pretrained(directory)
    (Path(directory) / "preprocessor_config.json").write_text(
        json.dumps({"size": {"shortest_edge": 64, "longest_edge": 96}})
    )
    return Path(directory)

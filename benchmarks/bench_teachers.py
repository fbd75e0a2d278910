"""Seconds per object of the teachers at full size (random weights: the real models' compute).

    python benchmarks/bench_teachers.py                      # CLIP ViT-B/16 and OWLv2 base
    python benchmarks/bench_teachers.py --box grounding-dino --repeats 1

One object = 10 views of 224 x 224 px (an ellipse of object pixels on each), one predict call
(all views in one forward pass); text embeddings are computed once per object category and
timed apart. On CUDA, fp32 and fp16 are timed and the fp16 labels (argmax part per object
pixel) compared with the fp32 ones. Models are built in memory from transformers configs:
CLIP ViT-B/16 (CLIPConfig defaults, patch 16), OWLv2 base/16 at 960 px, Grounding DINO base
(Swin-B backbone, BERT base, 900 queries).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["back", "seat", "leg", "arm"]


def _repo_package():
    sys.path.insert(0, str(ROOT))
    import load_repo

    load_repo.load()
    sys.path.insert(0, str(ROOT / "tests"))


def make_views(count: int, size: int):
    from fixtures_teachers import make_view

    return [make_view(seed, size, size) for seed in range(count)]


def clip_teacher_full_size(device: torch.device, half: bool, tokenizer_dir: Path):
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.teachers.clip import ClipTeacher
    from partdistill.backend.teachers.clip_encoders import TransformersDenseEncoder
    from partdistill.backend.teachers.preprocess import CLIP_MEAN, CLIP_STD
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    torch.manual_seed(0)
    dtype = torch.float16 if half else torch.float32
    model = CLIPModel(CLIPConfig(vision_config={"patch_size": 16}))
    model = model.to(device=device, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    encoder = TransformersDenseEncoder(model, tokenizer, CLIP_MEAN, CLIP_STD, device, dtype)
    return ClipTeacher(PARTS, encoder, PartDistillConfig())


def owlv2_teacher_full_size(device, half, tokenizer_dir):
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.teachers.boxes import Owlv2Teacher, _Loaded
    from transformers import AutoTokenizer, Owlv2Config, Owlv2ForObjectDetection

    torch.manual_seed(0)
    dtype = torch.float16 if half else torch.float32
    config = Owlv2Config(vision_config={"image_size": 960, "patch_size": 16})
    model = Owlv2ForObjectDetection(config).to(device=device, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    loaded = _Loaded(model, tokenizer, {}, device, dtype)
    return Owlv2Teacher(PARTS, loaded, PartDistillConfig())


def grounding_dino_teacher_full_size(device, half, tokenizer_dir):
    from fixtures_teachers import write_word_tokenizer
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.teachers.boxes import GroundingDinoTeacher, _Loaded
    from transformers import (
        AutoTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        SwinConfig,
    )

    torch.manual_seed(0)
    dtype = torch.float16 if half else torch.float32
    swin_b = SwinConfig(
        embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12,
        out_features=["stage2", "stage3", "stage4"],
    )  # fmt: skip
    model = GroundingDinoForObjectDetection(GroundingDinoConfig(backbone_config=swin_b))
    model = model.to(device=device, dtype=dtype).eval()
    write_word_tokenizer(tokenizer_dir / "bert", PARTS)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir / "bert", local_files_only=True)
    loaded = _Loaded(model, tokenizer, {}, device, dtype)
    return GroundingDinoTeacher(PARTS, loaded, PartDistillConfig())


BUILDERS = {
    "clip": ("CLIP ViT-B/16", clip_teacher_full_size),
    "owlv2": ("OWLv2 B/16 960px", owlv2_teacher_full_size),
    "grounding-dino": ("Grounding DINO Swin-B", grounding_dino_teacher_full_size),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_teacher(teacher, views, device, repeats: int) -> tuple[float, float, list]:
    """(seconds of text encoding, median seconds of predict, last predictions)."""
    from partdistill.backend.contracts import ObjectInfo

    teacher.bind(ObjectInfo(category="chair"))
    start = time.perf_counter()
    if hasattr(teacher, "text_embeddings"):
        teacher.text_embeddings()
    elif hasattr(teacher, "_text_queries"):
        teacher._text_queries()
    _sync(device)
    text_seconds = time.perf_counter() - start
    teacher.predict(views[:2])  # warm-up (kernels, allocator)
    seconds = []
    predictions = None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        predictions = teacher.predict(views)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return text_seconds, float(np.median(seconds)), predictions


def label_agreement(a: list, b: list, views) -> float:
    """Fraction of object pixels whose argmax part is the same in two pixel predictions."""
    same = total = 0
    for pa, pb, view in zip(a, b, views, strict=True):
        on = view.face_ids >= 0
        same += int((pa.argmax(-1) == pb.argmax(-1))[on].sum())
        total += int(on.sum())
    return same / max(total, 1)


def main(argv=None) -> int:
    _repo_package()
    from fixtures_teachers import write_clip_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--box", default="owlv2", choices=["owlv2", "grounding-dino", "none"])
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    views = make_views(args.views, args.size)
    teachers = ["clip"] + ([args.box] if args.box != "none" else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = Path(tmp)
        real = write_clip_tokenizer(tokenizer_dir)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
              f"CLIP tokenizer: {'real BPE' if real else 'byte-level stand-in'}")  # fmt: skip
        for name in teachers:
            label, build = BUILDERS[name]
            runs = [(torch.device("cpu"), False)]
            if torch.cuda.is_available():
                runs += [(torch.device("cuda"), False), (torch.device("cuda"), True)]
            fp32_predictions = None
            for device, half in runs:
                teacher = build(device, half, tokenizer_dir)
                repeats = args.repeats if device.type == "cuda" or name == "clip" else 1
                text_s, predict_s, predictions = time_teacher(teacher, views, device, repeats)
                agreement = ""
                if device.type == "cuda" and not half:
                    fp32_predictions = predictions
                if device.type == "cuda" and half and name == "clip":
                    agreement = f"{label_agreement(predictions, fp32_predictions, views):.4f}"
                precision = "fp16" if half else "fp32"
                rows.append((label, device.type, precision, text_s, predict_s, agreement))
                del teacher
            if not torch.cuda.is_available():
                rows.append((label, "cuda", "fp16/fp32", None, None, "no CUDA device"))

    print(f"\n{args.views} views of {args.size} x {args.size} px per object")
    header = (
        f"{'teacher':<24}{'device':<8}{'precision':<11}{'text s':>8}{'s/object':>10}  agreement"
    )
    print(header)
    print("-" * len(header))
    for label, device, precision, text_s, predict_s, agreement in rows:
        text = f"{text_s:8.3f}" if text_s is not None else f"{'-':>8}"
        predict = f"{predict_s:10.3f}" if predict_s is not None else f"{'-':>10}"
        print(f"{label:<24}{device:<8}{precision:<11}{text}{predict}  {agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One configuration for every entry point (UI, batch, benchmarks), with the paper's defaults.

Section numbers refer to the PartDistill paper (CVPR 2024), ``shared/docs/partdistill-paper.txt``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MODES = ("direct", "forward", "distill")
ENCODERS = ("geometric", "edgeconv")
# Blender 5.0 renamed BLENDER_EEVEE_NEXT back to BLENDER_EEVEE; both are accepted.
RENDER_ENGINES = ("CYCLES", "BLENDER_WORKBENCH", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKWARD_SCORES = ("eq4", "consensus", "both")

# (elevation, azimuth) in degrees of the 10 views PartSLIP renders, also used by PartDistill.
PARTSLIP_VIEWS = (
    (10.0, 0.0), (10.0, 90.0), (10.0, 180.0), (10.0, 270.0),
    (40.0, 0.0), (40.0, 120.0), (40.0, 240.0),
    (-20.0, 60.0), (-20.0, 180.0), (-20.0, 300.0),
)  # fmt: skip

# Prompt templates averaged by CLIP teachers; "{object}" falls back to "object" when unknown.
PROMPT_TEMPLATES = (
    "the {part} of a {object}.",
    "a photo of the {part} of a {object}.",
    "a rendering of the {part} of a {object}.",
    "a {part} of a {object}.",
)


@dataclass
class PartDistillConfig:
    # --- views (paper Sec. 3.5: 10 views, as the methods it compares with) ---
    num_views: int = 10
    resolution: int = 224  # pixels, square views
    render_engine: str = "CYCLES"
    render_samples: int = 16  # Cycles samples of the RGB view; the polygon map always uses 1
    camera_fov_deg: float = 35.0
    camera_margin: float = 1.05  # bounding sphere radius multiplier when framing the object
    view_angles: tuple = PARTSLIP_VIEWS  # used as is when num_views == len(view_angles)

    # --- points (Sec. 3.5: 2048 points sampled uniformly on the surface) ---
    num_points: int = 2048

    # --- teacher ---
    teacher: str = (
        "clip"  # "clip", "owlv2", "grounding-dino", "simulated" or "package.module:factory"
    )
    model: str = "openai/clip-vit-base-patch16"
    prompt_templates: tuple = PROMPT_TEMPLATES
    clip_dense_mode: str = (
        "value"  # "value": value path of the last block; "standard": patch tokens
    )
    clip_logit_scale: float = 100.0
    clip_smoothing: int = 3  # box filter width on the patch grid, in patches; 1 disables it
    box_score_threshold: float = 0.2
    max_boxes_per_part: int = 3
    box_nms_iou: float = 0.5  # boxes of one part overlapping more than this are one detection
    teacher_batch_views: int = 32  # views per forward pass of the teacher (an object's 10 in one)
    half_precision: str = "auto"  # "auto": fp16 on CUDA only; "on"; "off"
    allow_downloads: bool = False
    cache_dir: str = ""  # "" = the Hugging Face default cache

    # --- knowledge extraction (Sec. 3.2, Eq. 1-2) ---
    min_component_pixels: int = 8  # smaller connected components are teacher noise, not knowledge
    # A point counts as visible on the plane of the polygon seen at its pixel within this share
    # of the object's bounding radius (sub-pixel polygons); occluded points lie much farther.
    visibility_tolerance: float = 0.01
    # Weigh each unit's points by |cos| of the angle between normal and viewing ray (floored):
    # grazing views admit many nearly edge-on points, each with a full vote otherwise. Off:
    # measured worse on the robustness benchmark (46.4 against 48.7 mIoU over 6 profiles and
    # 10 shapes, worse in every profile's mean), as it mutes well-seen points of thin parts too.
    incidence_weighting: bool = False
    incidence_floor: float = 0.1

    # --- student (Sec. 3.2, 3.4, 3.5) ---
    mode: str = "distill"  # "direct" (no student), "forward", "distill" (forward + backward)
    encoder: str = "geometric"  # fixed per-shape features (TTA) or a learnable EdgeConv encoder
    knn: int = 16
    feature_scales: tuple = (16, 32, 64)  # neighbourhood sizes of the geometric descriptors
    spectral_dims: int = 16  # Laplacian eigenvectors of the point graph used as features
    # Above this many polygons, the local-shape descriptors of the polygons are interpolated
    # from those of the sampled points (as the spectral features are) instead of computed
    # from each polygon's own neighbourhood: on a million polygons the exact descriptors took
    # 19 s of 63 s and 2.3 GB. bench_million.py prints both paths' labels on Chair 101.
    exact_descriptors_max_polygons: int = 200_000
    head_hidden: int = 256
    head_layers: int = 4  # Sec. 3.5: a 4-layer MLP distillation head
    epochs: int = 25  # Sec. 3.5
    steps_per_epoch: int = 10  # full-batch steps per epoch for one shape
    learning_rate: float = 1e-3  # Sec. 3.5 (the official code uses up to 3e-3)
    weight_decay: float = 0.0
    collection_batch_size: int = 16  # shapes per step in pre-alignment (Sec. 3.5)

    # --- class balance (official code: log10(w)/log10(4) + 1, clipped to [1, 4]) ---
    # "collection": on for pre-alignment, where part frequencies come from many shapes; off for
    # one shape, where they come from that shape's noisy units. Measured on the PSB dev meshes
    # (simulated teacher, distill, 2 shapes per category): 65.5 mIoU off vs 63.0 on, per shape.
    class_balance: str = "collection"  # "collection", "always" or "never"
    class_weight_base: float = 4.0
    class_weight_max: float = 4.0

    # A view is one opinion: its units of one part count once per point (their maximum) in the
    # student's targets and the fused votes. Matters for box teachers only, whose boxes of a
    # part overlap (one leaking box per leg of a table, each over the whole top).
    one_vote_per_view: bool = True
    # Trust in a unit falls from 1 when it takes whole_view_start of its view's points to
    # whole_view_floor when it takes all of them (rescore.whole_view_weights); 1 = off. Off:
    # at 0.7 / 0.25 it fixed parts missed in many views (worst shape -11.9 -> +1.4) but broke
    # objects one part dominates (a table top, a fish's body: bleeding worst -3.8 -> -26.2),
    # 49.8 against 51.1 mIoU over 13 profiles x 10 shapes.
    # Starting later (0.95 / 0.2, 0.9 / 0.3; 6 profiles x 10 shapes, seed 0) lifted the mean
    # gain over direct from +10.3 to +12.2 / +12.3 and missed's worst shape from -12.4 to +0.8,
    # but bleeding's Table 141 fell from +12.5 to -27: blur left leg units of 84-89 % of two
    # views undiscounted while whole-view top units in three were, and the top went to "leg".
    # Scaling a view's units of a part by the part's median share over the views / its share
    # in that view was worse still (+7.4 against +10.3 on 4 profiles x 20 shapes; Cup 21
    # -25.5: a handle's visible share varies from view to view).
    whole_view_start: float = 1.0
    whole_view_floor: float = 0.3
    # The same for a box teacher's units, on, but only for a box that takes at least
    # box_whole_view_gap more of its view than its part's boxes do in the median view
    # (rescore.whole_view_weights): a box around everything localises nothing, unless its
    # part fills every view (a cup's body, whose box holds the handle too). Measured on the
    # robustness benchmark's default matrix (20 shapes, 2 seeds; gain over direct / worst
    # shape), against off: box-default +18.0 / +1.2 (+18.7 / +2.3), box-leaking +28.9 / +11.2
    # (+26.0 / +9.4), box-mix +17.6 / +5.9 (+14.8 / -4.0: Table 142, two of whose views come back
    # as one "leg" box around the whole table). Without the gap (0.9 / 0.3): box-default
    # +16.7 / -5.1 and box-leaking's worst +3.2 (Cup 22's body boxes, each over its whole
    # view, lost to the handle's); starting at 0.7 (floor 0.25), box-default's Cup 22 -9.1.
    # With --full (38 shapes, 3 seeds), on / off: box-default +19.8 / +3.4 against +20.3 /
    # +6.5, box-leaking +29.5 / +10.5 against +26.2 / +9.3, box-mix +17.3 / -3.0 (Table 143,
    # -2.2 off) against +13.6 / -2.5 (Table 144).
    # Pixel units keep it off (figures above); the gap was not measured with them.
    box_whole_view_start: float = 0.9
    box_whole_view_floor: float = 0.3
    box_whole_view_gap: float = 0.3

    # Student targets read through a confusion matrix per view (view_reliability.py, Dawid and
    # Skene), blended with the vote's targets by reliability_weight; backward distillation then
    # re-estimates the confusions against the student (reliability_backward_rounds) beside the
    # Eq. 4 scores. A view that says one part over everything it sees then moves nothing.
    # Measured on the robustness benchmark's default matrix (20 shapes, 2 teacher seeds, gain
    # over direct / worst shape): 12 of 13 profiles meet the bar against 8 of 13
    # without it: missed +16.6 / -1.6 (was -8.1 on Table 141), bleeding +12.1 (was +8.5),
    # mix-strong +12.2 (was +7.8), box-mix +14.8 / -4.0 (was -7.0; Table 142, still failing).
    # It costs the project's own teacher 2.4 points in bench_segmentation (66.1 against 68.5).
    # Re-reading in forward distillation only (reliability_backward_weight 0): 9 of 13
    # (missed -5.3, bleeding +10.0, mix-strong +9.8, box-mix -6.2), the same mean (+16.1
    # against +16.2), Cup, Fish and Airplane 2-4 points better, Chair, Human, Teddy and Octopus
    # 3-4 points worse; bench_segmentation 68.1. At weight 1 (the confusions alone):
    # box-default's Cup 22 fell to -16.2 and whole-view's Fish 222 to -9.8 on seed 0
    # (overlapping boxes split a view's say; a handle inside the body's box reads as body),
    # and test_pipeline's speckled chair lost 0.08 of the leg's IoU. Reading the polygons'
    # votes in vote fusion through the confusions too: bleeding's Table 141 -30.4.
    view_reliability: bool = True
    reliability_weight: float = 0.5  # share of the confusions' posterior in the targets
    reliability_rounds: int = 1  # confusions from the vote, then the posterior from them
    reliability_backward_rounds: int = 1  # ... from the student's probabilities
    reliability_backward_weight: float = 0.5  # reliability_weight in backward distillation
    # Points' worth of a right view (and as many of a guessing one) each confusion row starts
    # from: a part a view hardly sees keeps a trusting row, and no label is impossible.
    # 10 and 50 measured alike (+15.4 and +15.1 on 4 profiles x 20 shapes, weight 1).
    reliability_smoothing: float = 10.0

    # --- backward distillation (Sec. 3.3, Eq. 4) ---
    tau: float = 0.01
    backward_min_epochs: int = 5
    loss_average_window: int = 3  # epochs in the moving average of the epoch loss
    # How units are scored: "eq4" (the student's agreement, as the paper), "consensus" (the
    # other views' agreement, rescore.py), "both" (their geometric mean). "eq4": "both" gave
    # 47.7 and "consensus" from the first epoch 45.6 against 48.7 (6 profiles, 10 shapes).
    backward_scores: str = "eq4"
    consensus_rounds: int = 3
    consensus_prior: float = 0.5  # agreement assumed on points no other view covers
    # Weigh units by their consensus score from the first epoch on (forward too), not only
    # after the backward trigger.
    consensus_forward: bool = False

    # --- polygon labels (labels.py, refine.py) ---
    # Blend the student with each polygon's own votes (labels.fuse_with_votes): the student
    # fills what no view sees, the views keep thin parts the student's points blur.
    vote_fusion: bool = True
    vote_prior_mass: float = 2.0  # vote mass at which votes and student weigh the same
    # Labels that follow the mesh: diffusion within crease-bounded regions, then a CRF over
    # the polygon adjacency graph. Measured +0.6 to +2.5 mIoU per profile on the robustness
    # benchmark after vote fusion, never more than 0.8 worse on a profile's mean.
    refine: bool = True
    # Diffusion of the probabilities over the surface, as wide as this share of the object's
    # bounding radius (0 = none); creases and folds stop it.
    refine_reach: float = 0.1
    # Before that, blend each polygon's probabilities with the mean over its surface segment:
    # the pieces creases sharper than refine_crease_deg bound, cut by a grid of refine_cell x
    # the bounding radius (organic surface has no creases). A segment is one part far more
    # often than a view is right: a wrong view or speckle is outvoted by its segment.
    refine_segment_weight: float = 0.5
    # First, the same with the clusters of the points' spectral embedding
    # (spectral_segments.py), which end where the shape narrows: at the joints of organic
    # shapes, which have no creases. Measured alone (13 profiles x 20 shapes, seed 0, the same
    # students): +2.1 mIoU on average and every profile's mean up (speckle +3.9), but thin parts
    # merge into their cluster's majority (bleeding's worst shape -3.8 -> -8.0) until the part
    # floor below keeps them.
    # The cluster means stop at crease pieces (refine.py). Across them, a table top's two faces
    # share their clusters' evidence: +10.6 against +10.3 over direct on missed, bleeding,
    # mix-strong and box-mix (20 shapes, seed 0), each of the four better (missed's worst shape
    # -12.4 -> -6.5, mix-strong's -4.9 -> -1.4), but test_pipeline's chair, whose arm the
    # teacher misses where it is partly seen, lost the arm to the seat (IoU 0.47 direct, 0.41),
    # also with a polygon's nearest point taken on its own piece (0.40) or with concave creases
    # alone cutting the clusters (0.41): the cluster spans arm and seat.
    refine_spectral_weight: float = 0.5
    refine_spectral_clusters: int = 32
    refine_crease_deg: float = 20.0
    # Only concave creases bound segments (the minima rule: parts meet at concave creases; a
    # convex crease is more often the rim of one part). Off: with the spectral clusters and
    # the part floor it took box-mix's worst shape from -8.8 to -1.5, but on test_pipeline's
    # chair, whose arm the teacher misses where it is partly seen, the arm's IoU fell from
    # 0.51 to 0.41, below direct voting's 0.47.
    refine_concave_creases_only: bool = False
    refine_cell: float = 0.15
    # The CRF may not shrink a part's area (over the polygons views see) below this share of
    # its area in the evidence (student and votes) before smoothing (part_floor.py); 0 = off.
    # Smoothing erodes small and weakly voted parts, and mean IoU loses a whole part when one
    # vanishes. With the spectral clusters (13 profiles x 20 shapes, seed 0): +0.7 mIoU on
    # average, worst shapes bleeding -8.0 -> -1.0, confusion -7.8 -> -1.7, whole-view
    # -5.7 -> +0.4. Floors of 0.7 and 1.0 left more profiles with a shape below direct - 3.
    refine_part_floor: float = 0.85
    refine_floor_rounds: int = 6
    # A part with no connected region of this share of the area is islands: it gets no floor.
    refine_floor_min_region: float = 0.01
    refine_strength: float = 3.0  # CRF: weight of the neighbours' agreement, log-probability
    refine_iterations: int = 10  # CRF mean-field iterations (0 = no CRF)
    refine_concave_weight: float = 1.0  # angular distance scale across concave edges
    refine_convex_weight: float = 0.2  # ... and convex ones (Katz and Tal)

    # --- known labels: a user's corrections (Refine) and few-shot examples (paper Sec. 4.3) ---
    # Weight of the cross-entropy on labelled polygons beside Eq. 3 (supervision.py).
    # Measured with bench_correction.py (10 categories, default and mix profiles, seed 0; gain
    # over zero-shot after three rounds): 1 / 3 gave +13.5 / +14.2 and +12.7 / +14.3.
    label_loss_weight: float = 3.0
    label_samples: int = 2048  # labelled polygons per shape the cross-entropy reads, by area
    # A correction spreads to the faces it points at: in each surface segment that holds
    # corrected faces, the segment's other faces with the label they replaced
    # (supervision.spread_corrections). Off: bench_correction.py (10 categories, one shape
    # each, seed 0; gain over zero-shot after three rounds, default / mix): +7.4 / +8.4
    # against +13.8 / +14.4 without, as a segment that crosses a part boundary hands the
    # correction to faces of the replaced part that were right.
    spread_corrections: bool = False
    # Units lose their say on points whose known label is another part. Off: +13.2 / +13.4.
    trim_contradicted_units: bool = False
    # Refine goes on from the last run's student for this many epochs (no render, no teacher).
    # 6 and 10 measured alike (+13.8 / +13.5 over zero-shot, default profile) at 2.0 / 3.0 s
    # (one torch thread per shape, two shapes at once).
    refine_epochs: int = 6
    # When a Refine re-scores the units (Eq. 4): "start", against the kept student, or
    # "midway", against the student that has half learnt the corrections (which then pull
    # the units of their part up). bench_correction.py (10 categories, one shape each, seed 0;
    # gain over zero-shot after three rounds / worst shape, default and mix): start +15.2 /
    # +1.1 and +14.8 / +2.4, midway +13.6 / +0.5 and +13.4 / +3.0.
    refine_rescore: str = "start"
    # Few-shot examples: "transfer" (each lends its labels by nearest neighbours as one more
    # view of units, example_transfer.py) or "joint" (the paper's: one student over the
    # examples, with a cross-entropy on their labels, and the objects).
    # Measured with bench_correction.py (10 categories, one shape each, default profile, k = 3,
    # mIoU against zero-shot 71.0): joint 69.0; transfer without choosing the example's turn
    # 63.3 (a table example upside down: -66.9); with it 78.9 at confidence 0.9, 79.9 at 1.
    few_shot: str = "transfer"
    example_confidence: float = 1.0  # a lent unit's confidence, times its agreement
    example_fit_steps: int = 3  # affine ICP steps that fit an example to the object
    example_reach: float = 0.1  # distance to the example (box half-widths) where trust is 1/e

    # --- run ---
    collection: bool = False  # one student over all objects (pre-alignment) instead of one each
    device: str = "auto"
    seed: int = 0
    low_confidence: float = 0.5  # faces below this are "low confidence" in the UI

    def validate(self) -> None:
        """Raise ValueError with a message a user can act on."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {self.encoder!r}")
        if self.class_balance not in ("collection", "always", "never"):
            raise ValueError(
                f"class_balance must be collection, always or never, not {self.class_balance!r}"
            )
        if self.backward_scores not in BACKWARD_SCORES:
            raise ValueError(
                f"backward_scores must be one of {', '.join(BACKWARD_SCORES)}, "
                f"not {self.backward_scores!r}"
            )
        if self.refine_rescore not in ("start", "midway"):
            raise ValueError(f"refine_rescore must be start or midway, not {self.refine_rescore!r}")
        if self.few_shot not in ("transfer", "joint"):
            raise ValueError(f"few_shot must be transfer or joint, not {self.few_shot!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.render_engine not in RENDER_ENGINES:
            raise ValueError(
                f"render engine must be one of {', '.join(RENDER_ENGINES)}, "
                f"not {self.render_engine!r}"
            )
        for name in ("num_views", "resolution", "num_points", "epochs", "steps_per_epoch", "knn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.resolution < 32:
            raise ValueError(f"resolution must be at least 32 pixels, not {self.resolution}")
        if self.num_points < 64:
            raise ValueError(f"num_points must be at least 64, not {self.num_points}")

    def replace(self, **changes) -> PartDistillConfig:
        return dataclasses.replace(self, **changes)


def parse_part_names(text: str) -> list[str]:
    """ "back, seat,leg ,, arm" -> ["back", "seat", "leg", "arm"]; raises on duplicates or none."""
    names = [p.strip() for p in text.replace("\n", ",").split(",")]
    names = [n for n in names if n]
    if not names:
        raise ValueError(
            "no part names given: type them separated by commas, e.g. 'back, seat, leg'"
        )
    seen = set()
    for n in names:
        if n.lower() in seen:
            raise ValueError(f"part name {n!r} is given twice")
        seen.add(n.lower())
    return names


# Each choice of the method beyond the paper, turned off alone: the robustness benchmark's
# ablations (``bench_robustness.py --ablate``). Name -> PartDistillConfig changes.
METHOD_ABLATIONS: dict[str, dict] = {
    "no-fusion": {"vote_fusion": False},
    "no-refine": {"refine": False},
    "no-segments": {"refine_segment_weight": 0.0},
    "no-view-opinion": {"one_vote_per_view": False},
    "no-spectral": {"refine_spectral_weight": 0.0},
    "no-part-floor": {"refine_part_floor": 0.0},
    "no-view-reliability": {"view_reliability": False},
    "no-box-whole-view": {"box_whole_view_start": 1.0},
}

# Alternatives measured and kept off by default, each with its figures above: the robustness
# benchmark runs them beside distill with ``--candidates``. Name -> PartDistillConfig changes.
METHOD_CANDIDATES: dict[str, dict] = {
    "forward-only-reliability": {"reliability_backward_weight": 0.0},
}

# The paper's plain student: every choice of METHOD_ABLATIONS off at once.
PAPER_STUDENT: dict = {k: v for changes in METHOD_ABLATIONS.values() for k, v in changes.items()}

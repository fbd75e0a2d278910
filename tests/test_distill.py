"""Forward and backward distillation (Eq. 3-4) on cases with a known answer."""

import math

import numpy as np
import torch
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import KnowledgeUnits, ObjectInfo
from partdistill.backend.distill import (
    backward_due,
    backward_rescore,
    class_weights,
    distillation_loss,
    unit_targets,
)
from partdistill.backend.pipeline import segment
from partdistill.backend.rescore import prior_trust, whole_view_weights
from synthetic import grid_planes, polygon_centres_x, top_view


def _tiny_units():
    """3 points, 2 parts; unit 0 (part 0) covers points 0, 1; unit 1 (part 1) covers 1, 2."""
    probs = np.zeros((2, 3, 2), np.float32)
    probs[0, 0] = [0.8, 0.2]
    probs[0, 1] = [0.6, 0.4]
    probs[1, 1] = [0.3, 0.7]
    probs[1, 2] = [0.1, 0.9]
    mask = np.array([[1, 1, 0], [0, 1, 1]], bool)
    return KnowledgeUnits(probs=probs, mask=mask, part=np.array([0, 1]), view=np.array([0, 0]))


def test_loss_equals_hand_computed_value():
    units = _tiny_units()
    q = np.array([[0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])  # the student's probabilities
    w = np.array([1.0, 2.0])  # class weights
    targets, coverage = unit_targets(units, 2)
    loss = distillation_loss(
        torch.tensor(np.log(q)), torch.tensor(targets), torch.tensor(coverage), torch.tensor(w)
    )
    # point 0: one unit (part 0, C = 0.8); point 1: two units, so their sum is halved;
    # point 2: one unit (part 1, C = 0.9); then the mean over the three covered points.
    point0 = 0.8 * 1.0 * -math.log(0.7)
    point1 = (0.6 * 1.0 * -math.log(0.5) + 0.7 * 2.0 * -math.log(0.5)) / 2
    point2 = 0.9 * 2.0 * -math.log(0.8)
    assert abs(float(loss) - (point0 + point1 + point2) / 3) < 1e-6


def test_uncovered_points_do_not_count():
    units = _tiny_units()
    units.mask[:, 2] = False
    targets, coverage = unit_targets(units, 2)
    q = torch.log(torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.01, 0.99]]))
    loss = distillation_loss(q, torch.tensor(targets), torch.tensor(coverage), torch.ones(2))
    point1 = (0.6 * -math.log(0.5) + 0.7 * -math.log(0.5)) / 2
    expected = (0.8 * -math.log(0.7) + point1) / 2  # point 2 is covered by no unit
    assert abs(float(loss) - expected) < 1e-6


def test_class_weights_follow_the_official_rule():
    units = _tiny_units()
    units.mask[1, 1] = False  # part 0 taught on 2 points, part 1 on 1: frequencies 2/3, 1/3
    weights = class_weights([units], 3, PartDistillConfig())
    assert abs(weights[0] - max(1.0, math.log(1.5, 4) + 1)) < 1e-6
    assert abs(weights[1] - (math.log(3, 4) + 1)) < 1e-6
    rare = class_weights([units], 2, PartDistillConfig(class_weight_max=1.5))
    assert rare[1] == 1.5, "clipped to the maximum"


def test_rescore_is_the_agreement_with_the_student():
    units = _tiny_units()
    scores = backward_rescore(units, np.array([0, 1, 1]))
    np.testing.assert_allclose(scores, [0.5, 1.0])
    targets, _ = unit_targets(units, 2, scores)
    np.testing.assert_allclose(targets, [[0.5, 0], [0.5, 1.0], [0, 1.0]])


def test_backward_fires_when_the_moving_average_settles():
    config = PartDistillConfig(epochs=25, backward_min_epochs=5, loss_average_window=3, tau=0.01)
    falling = [1.0, 0.8, 0.6, 0.4, 0.3, 0.2]
    assert not backward_due(falling, config)
    settled = falling + [0.2, 0.2, 0.2]
    assert backward_due(settled, config)
    assert not backward_due([0.2] * 4, config), "never before backward_min_epochs"
    assert backward_due([1.0, 0.5] * 10, config), "forced with backward_min_epochs left"


class _PlantedTeacher:
    """Perfect halves in three views of the same top camera; a wrong blob in the fourth."""

    kind = "pixel"

    def predict(self, views):
        out = []
        for i, view in enumerate(views):
            h, w = view.face_ids.shape
            probs = np.zeros((h, w, 2), np.float32)
            probs[:, : w // 2] = [0.9, 0.1]
            probs[:, w // 2 :] = [0.1, 0.9]
            if i == 3:
                probs[20:60, 80:120] = [0.95, 0.05]  # "part 0" planted on part 1's side
            probs[view.face_ids < 0] = 0
            out.append(probs)
        return out


def _four_top_views_of_a_plane():
    """A plane of 24 x 24 quads seen by the same top camera four times; part a is x < 0.5.
    Returns geometry, views, truth (P,) and a small student's config."""
    planes = [(0.0, 1.0, 1.0, 0.0)]
    geometry = grid_planes(24, planes)
    views = [top_view(24, planes, 128)] * 4
    truth = (polygon_centres_x(geometry) > 0.5).astype(int)
    config = PartDistillConfig(num_points=1024, epochs=15, steps_per_epoch=8, seed=0)
    return geometry, views, truth, config


def test_planted_wrong_unit_is_scored_down_and_overruled():
    geometry, views, truth, config = _four_top_views_of_a_plane()
    result = segment(geometry, views, _PlantedTeacher(), ["a", "b"], config, ObjectInfo())
    before, after = result.unit_scores_before, result.unit_scores_after
    planted = int(np.argmax(before))  # the most confident unit (0.95) is the planted one
    assert before[planted] > 0.9
    assert after[planted] < 0.3, after
    others = np.delete(after, planted)
    assert (others > 0.9).all(), after
    assert result.info["backward_epoch"] is not None
    assert (result.face_labels == truth).mean() > 0.95


def _halves_case(cells=16):
    planes = [(0.0, 1.0, 1.0, 0.0)]
    geometry = grid_planes(cells, planes)
    view = top_view(cells, planes, 96)
    truth = (polygon_centres_x(geometry) > 0.5).astype(int)
    return geometry, [view] * 2, truth


class _HalvesTeacher(_PlantedTeacher):
    def predict(self, views):
        return super().predict(views[:3])[: len(views)]


def test_learnable_edgeconv_encoder_learns_the_halves():
    geometry, views, truth = _halves_case()
    config = PartDistillConfig(encoder="edgeconv", num_points=512, epochs=8, steps_per_epoch=5)
    result = segment(geometry, views, _HalvesTeacher(), ["a", "b"], config)
    assert (result.face_labels == truth).mean() > 0.95


def test_collection_trains_one_student_over_all_shapes():
    from partdistill.backend.pipeline import ObjectInput, segment_collection

    geometry, views, truth = _halves_case()
    objects = [ObjectInput(geometry, views, ObjectInfo(name=n)) for n in ("one", "two")]
    config = PartDistillConfig(collection=True, num_points=512, epochs=8, steps_per_epoch=5)
    results = segment_collection(objects, _HalvesTeacher(), ["a", "b"], config)
    assert len(results) == 2
    for result in results:
        assert (result.face_labels == truth).mean() > 0.95
    # One student: both shapes share its loss curve and its backward-distillation epoch.
    assert results[0].info is results[1].info


def test_a_view_is_one_opinion_however_many_boxes_of_a_part_it_returns():
    # View 0 returns three overlapping "leg" boxes over points 0-2 and one "top" box over 0-1;
    # view 1 one "top" box over 0-1. Summed, leg would win points 0-1 (3 x 0.9 against 2 x 0.8).
    mask = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 0]], bool)
    probs = np.zeros((5, 3, 2), np.float32)
    probs[:3, :, 1] = 0.9
    probs[3:, :2, 0] = 0.8
    units = KnowledgeUnits(probs=probs, mask=mask, part=np.array([1, 1, 1, 0, 0]),
                           view=np.array([0, 0, 0, 0, 1]))  # fmt: skip
    summed, _ = unit_targets(units, 2)
    assert summed[0].argmax() == 1
    targets, coverage = unit_targets(units, 2, one_per_view=True)
    np.testing.assert_allclose(targets, [[1.6, 0.9], [1.6, 0.9], [0, 0.9]], rtol=1e-6)
    np.testing.assert_array_equal(coverage, [3, 3, 1])
    # Pixel units of a view are disjoint: counting per view changes nothing for them.
    pixel = _tiny_units()
    pixel.view[:] = [0, 1]
    np.testing.assert_array_equal(
        unit_targets(pixel, 2)[0], unit_targets(pixel, 2, None, None, True)[0]
    )


def test_a_unit_over_its_whole_view_is_trusted_less():
    mask = np.zeros((3, 10), bool)
    mask[0, :9], mask[1, 9], mask[2, :3] = True, True, True  # view 0: 9 + 1 points; view 1: 3
    units = KnowledgeUnits(probs=np.ones((3, 10, 2), np.float32), mask=mask,
                           part=np.array([0, 1, 0]), view=np.array([0, 0, 1]))  # fmt: skip
    weights = whole_view_weights(units, start=0.6, floor=0.3)
    # 90 % of its view: 1 - 0.7 x (0.9 - 0.6) / 0.4; 10 %: untouched; the whole view: floor.
    np.testing.assert_allclose(weights, [1 - 0.7 * 0.75, 1.0, 0.3], rtol=1e-6)


class _TwoViewsFailWhole(_PlantedTeacher):
    """Views 0 and 1 say "b" over the whole plane, confidently; views 2 and 3 are right but
    less sure. Summed, "b" wins part a's half (2 x 0.95 against 2 x 0.7)."""

    def predict(self, views):
        out = []
        for i, view in enumerate(views):
            probs = np.zeros((*view.face_ids.shape, 2), np.float32)
            if i < 2:
                probs[:] = [0.05, 0.95]
            else:
                right = np.arange(view.face_ids.shape[1]) >= view.face_ids.shape[1] // 2
                probs[:, ~right] = [0.7, 0.3]
                probs[:, right] = [0.3, 0.7]
            probs[view.face_ids < 0] = 0
            out.append(probs)
        return out


def test_views_that_say_one_part_everywhere_are_read_through_their_confusions():
    geometry, views, truth, config = _four_top_views_of_a_plane()
    plain = segment(geometry, views, _TwoViewsFailWhole(), ["a", "b"],
                    config.replace(view_reliability=False))  # fmt: skip
    read = segment(geometry, views, _TwoViewsFailWhole(), ["a", "b"],
                   config.replace(view_reliability=True))  # fmt: skip
    # Baseline, the views' summed votes as targets: part a is painted "b"; about half the
    # faces are wrong.
    assert (plain.face_labels == truth).mean() < 0.75
    # The polygons' own summed votes still enter in vote fusion and take the faces along the
    # boundary, where the student is least sure (0.92 measured).
    assert (read.face_labels == truth).mean() > 0.9


def test_a_box_over_its_whole_view_is_trusted_less_unless_its_part_fills_every_view():
    # Views 0-2: part 1 boxes of a quarter of the view; view 3: a part 1 box over all of it.
    # Part 0 fills every view (a cup's body).
    mask = np.zeros((8, 8), bool)
    mask[0, :2], mask[1, 2:4], mask[2, 4:6], mask[3, :] = True, True, True, True
    mask[4:, :] = True
    units = KnowledgeUnits(probs=np.ones((8, 8, 2), np.float32), mask=mask,
                           part=np.array([1, 1, 1, 1, 0, 0, 0, 0]),
                           view=np.array([0, 1, 2, 3, 0, 1, 2, 3]))  # fmt: skip
    config = PartDistillConfig()
    trust = prior_trust(units, "box", config)
    # Only the whole-view box of part 1 (share 1, its part's median 0.25): the floor.
    np.testing.assert_allclose(trust, [1, 1, 1, config.box_whole_view_floor, 1, 1, 1, 1])
    # Pixel units keep their full say by default (whole_view_start 1: off).
    assert prior_trust(units, "pixel", config) is None


class _BoxesAroundEverything(_PlantedTeacher):
    """Six top views of the plane of halves a (x < 0.5) and b, as boxes. Views 0-3 return one
    sure "b" box around the whole plane; views 4 and 5 one "a" box over the left half and two
    "b" boxes over the right half's quarters, less sure. Summed, "b" wins half a (4 x 0.95
    against 2 x 0.7)."""

    kind = "box"

    def predict(self, views):
        out = []
        for i, view in enumerate(views):
            h, w = view.face_ids.shape
            if i < 4:
                out.append([((0, 0, w, h), np.array([0.05, 0.95], np.float32))])
            else:
                a, b = np.array([0.7, 0.3], np.float32), np.array([0.3, 0.7], np.float32)
                out.append([((0, 0, w / 2, h), a), ((w / 2, 0, w, h / 2), b),
                            ((w / 2, h / 2, w, h), b)])  # fmt: skip
        return out


def test_boxes_around_the_whole_object_in_half_the_views_do_not_paint_it():
    geometry, views, truth, config = _four_top_views_of_a_plane()
    views = views + views[:2]
    plain = segment(geometry, views, _BoxesAroundEverything(), ["a", "b"],
                    config.replace(box_whole_view_start=1.0))  # fmt: skip
    trusted = segment(geometry, views, _BoxesAroundEverything(), ["a", "b"], config)
    # Baseline, every box with its full say: half a is painted "b" (0.5 of the faces right).
    assert (plain.face_labels == truth).mean() < 0.75
    # The whole-view boxes of "b" (its boxes' median share is 0.625) fall to the floor: the
    # two right views win half a (0.94 measured; the boundary faces are the rest).
    assert (trusted.face_labels == truth).mean() > 0.9

"""Check a batch run's labels file against the scene's truth: every face labelled, and right.

python .ci/check_labels.py labels.json scene_truth.json
"""

import json
import sys

import numpy as np

# The simulated teacher errs as VLMs do (misses, confusions), so not every face can be right;
# 0.8 is well above always answering the largest part ("leg": 384 of 576 faces = 0.67).
MIN_ACCURACY = 0.8

labels_path, truth_path = sys.argv[1:3]
truth = json.load(open(truth_path))
objects = {o["name"]: o for o in json.load(open(labels_path))["objects"]}
if truth["object"] not in objects:
    sys.exit(f"{labels_path} has no object {truth['object']!r} (it has {sorted(objects)})")
result = objects[truth["object"]]
labels = np.asarray(result["face_labels"])
expected = np.asarray(truth["labels"])
if len(labels) != len(expected):
    sys.exit(f"{len(labels)} face labels for {len(expected)} faces")
if result["parts"] != truth["parts"]:
    sys.exit(f"parts {result['parts']} differ from {truth['parts']}")
unlabelled = int(np.sum((labels < 0) | (labels >= len(truth["parts"]))))
if unlabelled:
    sys.exit(f"{unlabelled} of {len(labels)} faces have no part")
accuracy = float(np.mean(labels == expected))
print(f"every face labelled ({len(labels)}); accuracy vs truth {accuracy:.3f}")
if accuracy < MIN_ACCURACY:
    sys.exit(f"accuracy {accuracy:.3f} below {MIN_ACCURACY}")

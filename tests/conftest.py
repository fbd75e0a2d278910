"""Load the repository as the package ``partdistill`` (its directory name may be anything)."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT))
import load_repo  # noqa: E402

load_repo.load()

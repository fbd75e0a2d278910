"""Load the repository as the package ``partdistill`` (its directory name may be anything)."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _load_repo_package():
    if "partdistill" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "partdistill", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["partdistill"] = module
    spec.loader.exec_module(module)


_load_repo_package()

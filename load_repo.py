"""Load this checkout as the package ``partdistill``, whatever its directory is called.

Installed, the extension is the package ``bl_ext.<repository>.partdistill``; in a checkout
(tests, benchmarks, the batch script) the same relative imports need a package name too.
"""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent


def load(name: str = "partdistill"):
    """Import the repository root as package ``name`` (once) and return it."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]

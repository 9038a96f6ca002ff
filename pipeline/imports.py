"""Load one module of a big package without running the package's `__init__`.

`import nltk` and `import datasketch` run package `__init__`s that import most of the
package and scipy (0.4-1.1 s of CPU in every process), where the pipeline needs one small
module of each (Punkt; MinHash). `submodule("nltk.tokenize.punkt")` loads just that module:
while it loads, each package level above it is a bare package with the real folder as its
path, and afterwards every module of the package loaded meanwhile leaves `sys.modules`
again, so a later plain `import nltk` in the same process gets the whole, normal package.
The module returned is the package's own code, unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def submodule(name: str) -> types.ModuleType:
    """The module `name` ("package.sub.module"), loaded without its packages' `__init__`s
    (or from `sys.modules` when its top package is loaded already)."""
    top = name.split(".")[0]
    if top in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{top} is not installed (needed for {name})")
    before = set(sys.modules)
    folders = list(spec.submodule_search_locations)
    levels = name.split(".")[:-1]
    for depth in range(1, len(levels) + 1):
        package = types.ModuleType(".".join(levels[:depth]))
        package.__path__ = ["/".join([folder, *levels[1:depth]]) for folder in folders]
        sys.modules[package.__name__] = package
    try:
        return importlib.import_module(name)
    finally:
        for loaded in set(sys.modules) - before:
            if loaded == top or loaded.startswith(top + "."):
                del sys.modules[loaded]

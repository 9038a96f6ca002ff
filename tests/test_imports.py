"""pipeline/imports.py: one module of a package, without the package's __init__."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> list[str]:
    """Lines printed by `code` in a fresh interpreter (this test session may hold the packages)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split("\n")[:-1]


def test_a_submodule_loads_without_its_package_and_leaves_no_trace() -> None:
    lines = _run(
        "import sys\n"
        "from pipeline.imports import submodule\n"
        "minhash = submodule('datasketch.minhash')\n"
        "print(hasattr(minhash, 'MinHash'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('datasketch', 'scipy')))\n"
        "import datasketch\n"  # the whole package afterwards, as usual
        "print(hasattr(datasketch, 'MinHashLSH'), datasketch.minhash is not minhash)\n"
    )
    assert lines == ["True", "[]", "True True"]


def test_a_loaded_package_is_used_as_it_is() -> None:
    lines = _run(
        "import datasketch.minhash\n"
        "from pipeline.imports import submodule\n"
        "print(submodule('datasketch.minhash') is datasketch.minhash)\n"
    )
    assert lines == ["True"]


def test_dedup_permutations_are_datasketchs_own() -> None:
    lines = _run(
        "from pipeline.stages import dedup\n"
        "a, b = dedup._permutations(64, 7)\n"
        "from datasketch import MinHash\n"
        "pa, pb = MinHash(num_perm=64, seed=7, hashfunc=int, scheme='affine32').permutations\n"
        "print((a.ravel() == pa).all() and (b.ravel() == pb).all())\n"
    )
    assert lines == ["True"]


def test_a_missing_package_is_named() -> None:
    lines = _run(
        "from pipeline.imports import submodule\n"
        "try:\n"
        "    submodule('no_such_package_here.module')\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert lines == ["no_such_package_here is not installed (needed for no_such_package_here.module)"]

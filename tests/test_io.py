"""pipeline.io's YAML loader: libyaml's where PyYAML has it, with the pure-Python loader's data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.io import YAML_LOADER, load_yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs").rglob("*.yaml"))


def test_every_shipped_config_is_found() -> None:
    assert len(SHIPPED) >= 8 and REPO / "configs" / "default.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.relative_to(REPO).as_posix())
def test_shipped_yaml_loads_to_the_same_data_with_either_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - a safe loader


def test_edge_cases_load_as_the_safe_loader_does() -> None:
    text = ('a: "caf\\u00e9 \\t"\nb: [1, 2.5, .inf, null, ~, yes, no, on, 0x1F, 0o17, 1_000]\n'
            "c: 2016-01-13\nd: |\n  two\n  lines\ne: 'it''s'\nf: !!str 12\n")
    assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506


def test_errors_are_yaml_errors_with_a_line() -> None:
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        load_yaml("a: 1\nb: [unclosed\n")
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line >= 1


def test_no_python_objects() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")
    assert YAML_LOADER in (getattr(yaml, "CSafeLoader", None), yaml.SafeLoader)

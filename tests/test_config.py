from pathlib import Path

import pytest

from pipeline.config import load_config, resolved_config, section_fingerprint
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_loads() -> None:
    config = load_config(REPO / "configs" / "default.yaml")
    assert config.corpus.version == "0.1.0"
    assert config.dedup.mode == "drop"


def test_missing_sections_get_typed_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "corpus: {version: '2'}\n"))
    assert config.langid.min_chars == 40
    assert config.corpus.version == "2"


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "langid:\n  min_char: 10\n"))
    message = str(err.value)
    assert "c.yaml" in message and "'langid.min_char'" in message
    assert "did you mean 'langid.min_chars'?" in message


def test_unknown_section_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'dedup'"):
        load_config(write(tmp_path, "dedupe: {}\n"))


def test_wrong_type_names_path_and_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "dedup:\n  num_perm: many\n"))
    assert "dedup.num_perm" in str(err.value) and "integer" in str(err.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml:3: not valid YAML"):
        load_config(write(tmp_path, "dedup:\n  mode: [drop\n"))


def test_set_overrides_and_validates(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n")
    assert load_config(path, ["dedup.mode=mark"]).dedup.mode == "mark"
    assert load_config(path, ["langid.min_chars=5"]).langid.min_chars == 5
    with pytest.raises(ConfigError, match="dedup.mode"):
        load_config(path, ["dedup.mode=delete"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        load_config(path, ["mode"])


def test_pattern_file_missing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="split.comment_formats"):
        load_config(write(tmp_path, "split:\n  comment_formats: nowhere.yaml\n"))


def test_fingerprint_follows_pattern_file_content(tmp_path: Path) -> None:
    formats = tmp_path / "formats.yaml"
    formats.write_text((REPO / "configs/comments/formats.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    path = write(tmp_path, "split:\n  comment_formats: formats.yaml\n")
    before = section_fingerprint(load_config(path).split)
    formats.write_text(formats.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert section_fingerprint(load_config(path).split) != before


def test_report_section_is_typed_and_left_out_of_the_manifest(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "{}\n")).report.max_pages == 1000
    config = load_config(write(tmp_path, "report:\n  max_pages: 5\n"))
    assert config.report.max_pages == 5
    assert "report" not in resolved_config(config) and "corpus" in resolved_config(config)
    with pytest.raises(ConfigError, match="did you mean 'report.max_pages'"):
        load_config(write(tmp_path, "report:\n  max_page: 5\n"))
    with pytest.raises(ConfigError, match="report.max_pages"):
        load_config(write(tmp_path, "report:\n  max_pages: -1\n"))

"""The pipeline's configuration: one YAML file, a section per stage, over typed defaults.

Every value is validated here, before any stage runs: an unknown key names the
key and the nearest valid one, a wrong type names the path and the expected type.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from pipeline.errors import ConfigError
from pipeline.io import load_yaml
from pipeline.report import ReportConfig
from pipeline.stage import StageConfig
from pipeline.stages import STAGES


class CorpusConfig(BaseModel):
    """Names the corpus version written by the export stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "news-corpus"
    version: str = "0.1.0"  # a folder name under <output>/corpus/
    description: str = "News articles and reader comments extracted from scraped pages."
    license: str = "other"  # the licence of the source pages decides; say it here

    @field_validator("version", "name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or value in {".", ".."} or any(c in value for c in '/\\\0'):
            raise ValueError("must be a plain folder name (no slashes)")
        return value


class ConfigBase(BaseModel):
    """The corpus and report sections; the stage sections are added from the STAGES table below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)  # the HTML audit report (pipeline/report.py)

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)  # type: ignore[no-any-return]


# One section per entry of the STAGES table, so a new stage needs no edit here.
PipelineConfig = create_model(
    "PipelineConfig",
    __base__=ConfigBase,
    __doc__="All sections; a stage section left out gets its typed defaults.",
    **{name: (module.Config, Field(default_factory=module.Config)) for name, module in STAGES.items()},
)


def load_config(path: Path | None, overrides: list[str] | None = None) -> ConfigBase:
    """Read `path` (YAML), apply `--set SECTION.KEY=VALUE` overrides, validate."""
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    source = "<defaults>"
    if path is not None:
        source = str(path)
        base_dir = path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config ({err.strerror})") from err
        try:
            loaded = load_yaml(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    for override in overrides or []:
        _apply_override(data, override)
    return validate_config(data, source, base_dir)


def validate_config(data: dict[str, Any], source: str, base_dir: Path) -> ConfigBase:
    """Validate a plain mapping; stage sections left out get their defaults."""
    data = dict(data)
    for name in STAGES:
        if data.get(name) is None:
            data[name] = {}
    try:
        return PipelineConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(_explain(err, source)) from None


def _apply_override(data: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set {override!r}: expected SECTION.KEY=VALUE")
    *sections, leaf = key.split(".")
    node = data
    for section in sections:
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {section} is not a section")
        node = child
    try:
        node[leaf] = load_yaml(raw)
    except yaml.YAMLError:
        node[leaf] = raw


def _explain(err: ValidationError, source: str) -> str:
    """The first validation error as one line a user can act on."""
    first = err.errors()[0]
    loc = [str(part) for part in first["loc"]]
    path = ".".join(loc)
    if first["type"] == "extra_forbidden":
        valid = _valid_keys(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], valid, n=1)
        suggestion = f" (did you mean '{'.'.join(loc[:-1] + [hint[0]])}'?)" if hint else ""
        return f"{source}: unknown key '{path}'{suggestion}; valid keys: {', '.join(valid)}"
    given = first.get("input")
    shown = json.dumps(given, ensure_ascii=False, default=str)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {path}: {first['msg']}, got {shown}{more}"


def _valid_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = PipelineConfig
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def section_fingerprint(section: BaseModel) -> str:
    """sha256 of a section's values and of the content of every file it names."""
    digest = hashlib.sha256(section.model_dump_json().encode("utf-8"))
    for value in section.model_dump().values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, Path):
                digest.update(item.read_bytes())
    return digest.hexdigest()


def resolved_config(config: ConfigBase) -> dict[str, Any]:
    """The config as plain JSON (paths as strings), for the manifest: every section but
    `report`, which shapes the audit report, not the corpus, so changing it leaves a
    released version as it is."""
    return json.loads(config.model_dump_json(exclude={"report"}))

"""Export: the corpus rows, in a fixed schema, and the dataset card that loads them.

Rows are built here from the final records; the folder mechanics (temp folder,
manifest, version check, LATEST) are the runner's (pipeline/corpus.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.stage import Record, StageConfig
from pipeline.textstats import count_sentences, count_words

NAME = "export"
REASONS: frozenset[str] = frozenset()

# Column name -> Hugging Face dtype. The order is the order of the JSON keys.
ARTICLE_FIELDS: dict[str, Any] = {
    "id": "string",
    "source": "string",
    "source_sha256": "string",
    "role": "string",
    "title": "string",
    "subtitle": "string",
    "authors": ["string"],
    "published": "string",
    "site": "string",
    "language": "string",
    "language_score": "float64",
    "text": "string",
    "n_words": "int64",
    "n_sentences": "int64",
    "n_comments": "int64",
    "duplicate_of": "string",
    "dup_cluster": "string",
    "dup_similarity": "float64",
    "truncated": "bool",
    "via": "string",
    "source_lines": ["int64"],  # first and last line (1-based) of the text in the source file
    "source_offsets": ["int64"],  # character offsets of those lines' start and end in the decoded source
}
COMMENT_FIELDS: dict[str, Any] = {
    "id": "string",
    "article_id": "string",
    "source": "string",
    "parent_id": "string",
    "depth": "int64",
    "position": "int64",
    "number": "string",
    "author": "string",
    "posted": "string",
    "posted_raw": "string",
    "reply_to": ["string"],
    "text": "string",
    "language": "string",
    "language_score": "float64",
    "duplicate_of": "string",
    "dup_cluster": "string",
    "dup_similarity": "float64",
    "quotes": [{"comment_id": "string", "start": "int64", "end": "int64"}],  # earlier comments quoted verbatim
    "source_lines": ["int64"],
    "source_offsets": ["int64"],
}
DEFAULTS: dict[str, Any] = {"authors": [], "reply_to": [], "quotes": [], "role": "main", "truncated": False}


# (column, default) in row order: a row is one pass over these, then its computed columns.
ARTICLE_COLUMNS = tuple((name, DEFAULTS.get(name)) for name in ARTICLE_FIELDS)
COMMENT_COLUMNS = tuple((name, DEFAULTS.get(name)) for name in COMMENT_FIELDS)


class Config(StageConfig):
    paragraph_separator: str = "\n\n"  # paragraphs (lines) of a text are joined with this


def paragraphs(text: str, separator: str) -> str:
    return separator.join(filter(None, map(str.strip, text.split("\n"))))


def article_row(record: Record, n_comments: int, config: Config) -> dict[str, Any]:
    text = paragraphs(record.get("text", ""), config.paragraph_separator)
    row = {name: record.get(name, default) for name, default in ARTICLE_COLUMNS}
    row["text"] = text
    row["n_words"] = count_words(text)
    row["n_sentences"] = count_sentences(record.get("text", ""))
    row["n_comments"] = n_comments
    return row


def comment_row(record: Record, config: Config) -> dict[str, Any]:
    row = {name: record.get(name, default) for name, default in COMMENT_COLUMNS}
    row["text"] = paragraphs(record.get("text", ""), config.paragraph_separator)
    if record.get("quotes"):
        from pipeline.stages.dedup import rebase_quotes

        # Dedup found the quotes in the stage text; the corpus text has its paragraphs re-joined.
        row["quotes"] = rebase_quotes(record.get("text", ""), record["quotes"], config.paragraph_separator)
    return row


def _features(fields: dict[str, Any]) -> list[dict[str, Any]]:
    features = []
    for name, dtype in fields.items():
        if isinstance(dtype, list) and isinstance(dtype[0], dict):
            features.append({"name": name, "list": [{"name": k, "dtype": v} for k, v in dtype[0].items()]})
        elif isinstance(dtype, list):
            features.append({"name": name, "list": dtype[0]})
        else:
            features.append({"name": name, "dtype": dtype})
    return features


def dataset_card(name: str, version: str, description: str, license_id: str,
                 counts: dict[str, int]) -> str:
    """A Hugging Face dataset card: YAML front matter declaring both configs."""
    front = {
        "pretty_name": name,
        "license": license_id,
        "configs": [
            {"config_name": "articles", "data_files": [{"split": "train", "path": "articles.jsonl"}],
             "default": True},
            {"config_name": "comments", "data_files": [{"split": "train", "path": "comments.jsonl"}]},
        ],
        "dataset_info": [
            {"config_name": "articles", "features": _features(ARTICLE_FIELDS),
             "splits": [{"name": "train", "num_examples": counts["articles"]}]},
            {"config_name": "comments", "features": _features(COMMENT_FIELDS),
             "splits": [{"name": "train", "num_examples": counts["comments"]}]},
        ],
    }
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return (
        f"---\n{header}---\n\n# {name} {version}\n\n{description}\n\n"
        f"- articles: {counts['articles']} (main and related)\n"
        f"- comments: {counts['comments']}\n\n"
        "```python\n"
        "from datasets import load_dataset\n"
        "articles = load_dataset(\"path/to/this/folder\")            # config \"articles\"\n"
        "comments = load_dataset(\"path/to/this/folder\", \"comments\")\n"
        "```\n\n"
        "`manifest.json` lists every input file and its fate, the resolved config and the\n"
        "checksums of these files; `python -m pipeline verify <this folder>` checks them.\n"
    )

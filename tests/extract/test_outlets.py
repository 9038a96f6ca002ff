"""Site names from the known-outlets list: masthead lines, domains, input folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.extract.outlets import OUTLETS_CONFIG, from_host, from_masthead, load_outlets, name_site
from pipeline.stages import metadata

OUTLETS = load_outlets()

BODY = ("The assault by government forces on the eastern districts continued on Monday, and "
        "officials said the fighting would go on until the last armed groups had left the city.")


@pytest.mark.parametrize(("line", "expected"), [
    ("Moon of Alabama Brecht quote", "Moon of Alabama"),  # a logo's alt text: name + description
    ("MOON OF ALABAMA", "Moon of Alabama"),
    ("The Duran", "The Duran"),
    ("Reuters logo", "Reuters"),
    ("Time | Politics", "Time"),
    ("The Huffington Post", "HuffPost"),  # an alias gives the recorded name
    ("The Times of Israel - Breaking News", "The Times of Israel"),  # the longest name wins
    ("www.rt.com", "RT"),
    ("Read it at https://edition.cnn.com/world", "CNN"),
    ("Antiwar.com", "Antiwar.com"),
])
def test_masthead_lines_that_name_an_outlet(line: str, expected: str) -> None:
    assert from_masthead(line, OUTLETS) == expected


@pytest.mark.parametrize("line", [
    "Time to act on Syria",  # a one-word name must stand alone
    "The Duran brothers speak out",
    "Le Monde diplomatique publishes a special issue",
    "The National Guard was deployed",  # "The National" is one word without its article
    "Timeline of the siege",  # a name is matched on whole words
    "Breaking news from Aleppo",
    "reuters.com.example.org",  # a domain inside another host is not that domain
])
def test_lines_that_only_look_like_a_name(line: str) -> None:
    assert from_masthead(line, OUTLETS) is None


def test_hosts_and_their_parent_domains() -> None:
    assert from_host("uk.reuters.com", OUTLETS) == "Reuters"
    assert from_host("www.theduran.com", OUTLETS) == "The Duran"
    assert from_host("example.org", OUTLETS) is None
    assert from_host("com", OUTLETS) is None


def test_site_from_masthead_first_then_folder() -> None:
    assert name_site(["Skip to content", "The Duran"], "moonofalabama.org", OUTLETS) == "The Duran"
    assert name_site(["Skip to content"], "moonofalabama.org", OUTLETS) == "Moon of Alabama"
    assert name_site([], "site-a", OUTLETS) is None
    assert name_site([], "", OUTLETS) is None


def test_metadata_names_the_site_from_the_masthead_only_when_widgets_do_not() -> None:
    body = f"Aleppo falls: {BODY} After four years of war the city is quiet."
    text = f"Moon of Alabama Brecht quote\nAleppo falls after four years of war\n{body}\n{body}"
    record = {"id": "a", "kind": "article", "role": "main", "bytes": 5001, "text": text}
    assert metadata.process(record, metadata.Config()).records[0]["title"] == "Aleppo falls after four years of war"
    assert metadata.process(record, metadata.Config()).records[0]["site"] == "Moon of Alabama"
    markers = [[3, "donation", "Liked it? Take a second to support The Duran on Patreon!"]]
    widget = metadata.process({**record, "page_markers": markers}, metadata.Config()).records[0]
    assert widget["site"] == "The Duran"


def test_metadata_names_the_site_from_a_folder_named_after_a_domain() -> None:
    record = {"id": "a", "kind": "article", "role": "main", "bytes": 5001, "text": f"{BODY}\n{BODY}",
              "site_key": "www.globalresearch.ca"}
    assert metadata.process(record, metadata.Config()).records[0]["site"] == "Global Research"
    assert metadata.process({**record, "site_key": "batch-7"}, metadata.Config()).records[0]["site"] is None


def test_body_mentions_never_name_the_site() -> None:
    text = f"Aleppo falls after four years of war\n{BODY} Reuters and the BBC reported it.\n{BODY}"
    record = {"id": "a", "kind": "article", "role": "main", "bytes": 5001, "text": text}
    assert metadata.process(record, metadata.Config()).records[0]["site"] is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outlets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("outlets: {name: X}", "expected a mapping with an 'outlets' list"),
    ("outlets:\n  - {aliases: [X]}", "outlets[1]: each outlet needs a 'name'"),
    ("outlets:\n  - {name: X, domain: [x.com]}", "unknown keys ['domain']"),
    ("outlets:\n  - {name: X, domains: [not a host]}", "'not a host' is not a host name"),
    ("outlets:\n  - {name: X, domains: x.com}", "'domains' must be a list of strings"),
    ("outlets:\n  - {name: X}\n  - {name: Y, aliases: [x]}", "outlets[2]: 'x' already names 'X'"),
    ("outlets:\n  - {name: X, domains: [x.com]}\n  - {name: Y, domains: [x.com]}", "domain 'x.com' already belongs"),
])
def test_bad_outlet_files_are_refused_with_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_outlets(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_the_shipped_list_loads_and_every_name_is_found_as_a_masthead() -> None:
    assert OUTLETS_CONFIG.is_file()
    for folded, name in OUTLETS.names.items():
        assert from_masthead(folded, OUTLETS) == name
    for host, name in OUTLETS.domains.items():
        assert from_host(host, OUTLETS) == name

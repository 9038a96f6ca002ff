import random
from pathlib import Path

import pytest
import yaml

from pipeline.document import Span, apply_spans
from pipeline.stages import clean

CASES = yaml.safe_load((Path(__file__).parent / "clean_cases.yaml").read_text(encoding="utf-8"))


def rebuild(output: str, passes: list[list[Span]]) -> str:
    """Undo the passes, last first: the input must come back exactly."""
    text = output
    for spans in reversed(passes):
        shift = 0
        inverse = []
        for span in sorted(spans, key=lambda s: s.start):
            start = span.start + shift
            inverse.append(Span(start, start + len(span.replacement), span.reason,
                                span.replacement, span.original))
            shift += len(span.replacement) - (span.end - span.start)
        text = apply_spans(text, inverse)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_clean_case(case: dict) -> None:
    outcome = clean.process({"id": "x", "text": case["input"]}, clean.Config())
    assert outcome.records[0]["text"] == case["output"]
    reasons = [span.reason for spans in outcome.passes for span in spans]
    assert reasons == case["reasons"]
    assert rebuild(outcome.records[0]["text"], outcome.passes) == case["input"]


def test_switches_turn_fixes_off() -> None:
    config = clean.Config(fix_mojibake=False, unescape_entities=False, remove_artifacts=False)
    text = "Syriaâ€™s &amp; [email protected]"
    assert clean.process({"id": "x", "text": text}, config).records[0]["text"] == text


@pytest.mark.parametrize("seed", sorted((Path(__file__).parents[2] / "seeds").glob("*.txt")))
def test_seed_lines_keep_their_count_and_indentation(seed: Path) -> None:
    text = seed.read_text(encoding="utf-8")
    out = clean.process({"id": "x", "text": text}, clean.Config()).records[0]["text"]
    assert out.count("\n") == text.count("\n")
    for before, after in zip(text.split("\n"), out.split("\n")):
        assert len(before) - len(before.lstrip()) == len(after) - len(after.lstrip()) or not after.strip()


@pytest.mark.parametrize("fold_spaces", [True, False])
def test_space_tokens_found_where_they_can_start(fold_spaces: bool) -> None:
    """Trying the space pattern only where `_SPACE_STARTS` finds a token can start gives
    the tokens of trying it at every character."""
    pattern = clean._space_pattern(clean.Config(fold_spaces=fold_spaces))
    generator = random.Random(0)
    alphabet = "ab.  \t\n\xa0\u200b\x01\x85\u2003\u3000"
    for _ in range(20000):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 14)))
        starts = (found.start() for found in clean._SPACE_STARTS.finditer(text))
        assert clean._token_spans_at(text, pattern, starts) == clean._token_spans(text, pattern), repr(text)

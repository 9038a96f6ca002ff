import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "default.yaml")


@pytest.mark.parametrize("command", [[], ["run"], ["audit"], ["verify"]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(command + ["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_help_imports_no_stage() -> None:
    # The stage modules take ~0.5 s to import (pipeline.stages): the parser needs their names only.
    code = ("import sys; from pipeline.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeline.stages.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["[]"]


def test_stage_names_are_those_of_the_stages_table() -> None:
    from pipeline.stages import NAMES, STAGES

    assert tuple(STAGES) == NAMES
    assert all(module.NAME == name for name, module in STAGES.items())


def test_config_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("boilerplate:\n  template_min_page: 3\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(bad),
                             "--input", str(REPO / "seeds"), "--output", str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "bad.yaml" in result.stderr and "boilerplate.template_min_page" in result.stderr


def test_until_stops_after_the_stage(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["run", "--config", CONFIG, "--input", str(REPO / "seeds"), "--output", str(out),
                 "--until", "clean", "--quiet"]) == 0
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["01-ingest", "02-clean"]
    assert not (out / "corpus").exists()


def test_output_inside_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Some page text.", encoding="utf-8")
    code = main(["run", "--config", CONFIG, "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "in" / "out")])
    assert code == 2 and "must not be inside the input" in capsys.readouterr().err


def test_foreign_output_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("do not delete", encoding="utf-8")
    code = main(["run", "--config", CONFIG, "--output", str(tmp_path / "mine")])
    assert code == 2 and "not a pipeline output" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_second_concurrent_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / ".pipeline-output").touch()
    with (out / ".lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code = main(["run", "--config", CONFIG, "--input", str(REPO / "seeds"), "--output", str(out)])
    assert code == 2 and "another run is writing here" in capsys.readouterr().err


def test_audit_summarises_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["run", "--config", CONFIG, "--input", str(REPO / "seeds"), "--output", str(out),
                 "--until", "boilerplate", "--quiet"]) == 0
    assert main(["audit", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "boilerplate" in text and "most frequent removals, boilerplate:" in text


def test_audit_without_a_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--output", str(tmp_path)]) == 2
    assert "no stage outputs" in capsys.readouterr().err


def test_strict_fails_on_quarantine_but_the_corpus_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "good.txt").write_text("A title\n\n" + "The council met on Monday and voted to close the bridge. " * 5,
                                  encoding="utf-8")
    (inp / "image.txt").write_bytes(b"\x89PNG\x00\x00\x00binary")
    args = ["run", "--config", CONFIG, "--input", str(inp), "--output", str(tmp_path / "o")]
    assert main(args) == 0
    assert "quarantined: image.txt: binary" in capsys.readouterr().out
    assert main(args + ["--strict"]) == 1
    assert "--strict: 1 input file(s) quarantined: image.txt" in capsys.readouterr().err
    assert (tmp_path / "o" / "corpus" / "0.1.0" / "articles.jsonl").read_text(encoding="utf-8").count("\n") == 1


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--workers", "0"])
    assert exit_info.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_no_report_leaves_the_html_out_and_audit_html_writes_it_later(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with_report, without = tmp_path / "a" / "data", tmp_path / "b" / "data"  # same folder name: the index shows it
    for out, flags in ((with_report, []), (without, ["--no-report"])):
        assert main(["run", "--config", CONFIG, "--input", str(REPO / "seeds"), "--output", str(out),
                     "--quiet", "--workers", "1", *flags]) == 0
    assert (with_report / "audit" / "index.html").is_file()
    assert not (without / "audit").exists() and (without / "corpus" / "LATEST").is_file()
    assert main(["audit", "--output", str(without), "--html", "--workers", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(without / "audit" / "index.html")

    def pages(root: Path) -> dict[str, bytes]:  # the index also shows each run's stage timings
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "audit" / "pages").glob("*.html")}

    assert (without / "audit" / "index.html").is_file()
    assert len(pages(without)) == 5 and pages(without) == pages(with_report)


def test_audit_html_without_a_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--output", str(tmp_path), "--html"]) == 2
    assert "no stage folders here" in capsys.readouterr().err


def test_audit_writes_any_page_on_demand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["run", "--config", CONFIG, "--input", str(REPO / "seeds"), "--output", str(out), "--quiet",
                 "--set", "report.max_pages=2"]) == 0
    pages = out / "audit" / "pages"
    rendered = {p.name for p in pages.glob("*.html")}
    assert len(rendered) == 2
    missing = next(p.stem for p in sorted((REPO / "seeds").glob("*.txt")) if f"{p.stem}.html" not in rendered)
    capsys.readouterr()
    assert main(["audit", "--output", str(out), "--page", missing]) == 0
    assert capsys.readouterr().out.strip() == str(pages / f"{missing}.html")
    assert len(list(pages.glob("*.html"))) == 3
    assert main(["audit", "--output", str(out), "--page", "no-such-page"]) == 2
    assert "--page no-such-page: no such input page" in capsys.readouterr().err
    assert main(["audit", "--output", str(out), "--html", "--max-pages", "0"]) == 0
    assert len(list(pages.glob("*.html"))) == 5

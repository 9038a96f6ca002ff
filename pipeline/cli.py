"""Command line: `python -m pipeline run | audit | verify | diff`.

Errors are one line naming the file or key, with a non-zero exit code;
`--debug` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from pipeline import __version__
from pipeline.errors import InputError, PipelineError
from pipeline.stages import NAMES as STAGE_NAMES  # (not STAGES: --help imports no stage)

DEFAULT_CONFIG = Path("configs/default.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Turn scraped news pages into a versioned JSONL corpus of articles and comments.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run the stages and write the corpus",
                              description="Run the pipeline stages over a folder of pages.")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help="YAML config (default: %(default)s)")
    run.add_argument("--input", type=Path, default=Path("seeds"),
                     help="folder of *.txt pages, read recursively (default: %(default)s)")
    run.add_argument("--output", type=Path, default=Path("data"),
                     help="output folder (default: %(default)s)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one config value; repeatable")
    run.add_argument("--until", choices=list(STAGE_NAMES), metavar="STAGE",
                     help=f"stop after this stage ({', '.join(STAGE_NAMES)})")
    run.add_argument("--force", action="store_true",
                     help="replace an existing corpus version whose content differs")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    run.add_argument("--strict", action="store_true",
                     help="exit 1 when any input file was quarantined (the run still completes)")
    run.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, metavar="N",
                     help="processes for the per-record work; the output is the same for any N "
                          "(default: one per core, %(default)s)")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: this machine; ray: Ray Data (pip install '.[ray]') (default: %(default)s)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="Ray cluster to join, e.g. ray://head:10001 (default: $RAY_ADDRESS, "
                          "else a local Ray with --workers CPUs)")
    run.add_argument("--no-cache", dest="cache", action="store_false",
                     help="recompute every record instead of reusing OUTPUT/cache")
    run.add_argument("--no-report", dest="report", action="store_false",
                     help="leave out the HTML audit report (about a third of a run's time on large "
                          "inputs); the stage folders keep every span, and `audit --html` writes it later")

    audit = commands.add_parser("audit", parents=[common], help="summarise what each stage removed and why",
                                description="Summarise the stage outputs of a run.")
    audit.add_argument("--output", type=Path, default=Path("data"),
                       help="output folder of a run (default: %(default)s)")
    audit.add_argument("--top", type=int, default=10, help="most frequent removed lines to show")
    audit.add_argument("--doc", metavar="ID",
                       help="print one input page line by line: its final label, the stage that decided "
                            "and the reason (a page id, a record id such as PAGE#c3, or a source path)")
    audit.add_argument("--html", action="store_true",
                       help="write the HTML audit report OUTPUT/audit/ (as a run does unless --no-report)")
    audit.add_argument("--page", dest="pages", action="append", default=[], metavar="ID",
                       help="write OUTPUT/audit/pages/<page>.html for this page (a page id, or a record id "
                            "such as PAGE#c3), whether the report rendered it or not; repeatable")
    audit.add_argument("--max-pages", type=_not_negative, metavar="N",
                       help="for --html: pages that get a file of their own, plus every page with a problem; "
                            "0: all (default: the report.max_pages default)")
    audit.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, metavar="N",
                       help="processes for --html (default: one per core, %(default)s)")

    verify = commands.add_parser("verify", parents=[common], help="check a corpus version against its manifest",
                                 description="Recompute checksums and record counts of a corpus "
                                             "version; exit 1 on any mismatch.")
    verify.add_argument("corpus_dir", type=Path, metavar="CORPUS_DIR",
                        help="a corpus version folder, e.g. data/corpus/0.1.0 "
                             "(with --reconstruct: the run's output folder, e.g. data)")
    verify.add_argument("--reconstruct", action="store_true",
                        help="rebuild every input page from the final records and the stages' spans "
                             "and report the first page and offset that fails (CORPUS_DIR is then "
                             "the run's output folder)")

    diff = commands.add_parser("diff", parents=[common], help="compare two corpus versions",
                               description="Articles and comments added, removed or changed between "
                                           "two corpus version folders, and the config differences "
                                           "per stage.")
    diff.add_argument("version_a", type=Path, metavar="VERSION_A", help="a corpus version folder")
    diff.add_argument("version_b", type=Path, metavar="VERSION_B", help="another corpus version folder")
    diff.add_argument("--limit", type=int, default=20, help="ids to list per category (default: %(default)s)")
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return number


def _not_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "audit":
            if args.html or args.pages:
                from pipeline.report import ReportConfig, write_pages, write_report

                if not (args.output / "stages").is_dir():
                    raise InputError(f"{args.output}: no stage folders here; run the pipeline first")
                config = ReportConfig() if args.max_pages is None else ReportConfig(max_pages=args.max_pages)
                if args.html:
                    print(write_report(args.output, workers=args.workers, config=config))
                if args.pages:
                    for path in write_pages(args.output, args.pages, workers=args.workers, config=config):
                        print(path)
                return 0
            if args.doc is not None:
                from pipeline.audit import describe_page

                print(describe_page(args.output, args.doc))
                return 0
            from pipeline.audit import summarize

            print(summarize(args.output, args.top))
            return 0
        if args.command == "diff":
            from pipeline.diff import diff_versions

            print(diff_versions(args.version_a, args.version_b, args.limit))
            return 0
        if args.reconstruct:
            return _verify_reconstruct(args)
        return _verify(args)
    except PipelineError as err:
        if args.debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if args.debug:
            traceback.print_exc()
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.runner import run

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    config = load_config(args.config, args.overrides)
    result = run(config, args.input, args.output, until=args.until, force=args.force,
                 progress=not args.quiet, workers=args.workers, executor=args.executor,
                 ray_address=args.ray_address, cache=args.cache, report=args.report)
    if not args.quiet:
        print(f"stages run: {', '.join(result.stages_run) or 'none'}; "
              f"cached: {', '.join(result.stages_cached) or 'none'}")
        included = sum(1 for fate in result.fates if fate["status"] == "included")
        print(f"inputs: {len(result.fates)} files, {included} included")
        for fate in result.fates:
            if fate["status"] != "included":
                print(f"  {fate['status']}: {fate['source']}: {fate.get('reason')} "
                      f"({fate.get('message', '')})")
        if result.corpus_dir is not None:
            print(f"corpus: {result.corpus_dir} ({result.corpus_status})")
    quarantined = [fate["source"] for fate in result.fates if fate["status"] == "quarantined"]
    if args.strict and quarantined:
        print(f"error: --strict: {len(quarantined)} input file(s) quarantined: {', '.join(quarantined[:5])}",
              file=sys.stderr)
        return 1
    return 0


def _verify_reconstruct(args: argparse.Namespace) -> int:
    from pipeline.ledger import rebuild_run, stage_folders, summary

    if not stage_folders(args.corpus_dir):
        raise InputError(f"{args.corpus_dir}: no stage outputs; --reconstruct takes a run's output folder")
    results = rebuild_run(args.corpus_dir)
    problems = [result.problem for result in results if result.problem is not None]
    for problem in problems:
        print(problem)
    if problems:
        print(f"verify: {len(problems)} of {len(results)} page(s) cannot be rebuilt from the ledger "
              f"in {args.corpus_dir}", file=sys.stderr)
        return 1
    print(f"verify: {summary(results)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pipeline.corpus import verify

    problems = verify(args.corpus_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"verify: {len(problems)} problem(s) in {args.corpus_dir}", file=sys.stderr)
        return 1
    print(f"verify: {args.corpus_dir} matches its manifest")
    return 0

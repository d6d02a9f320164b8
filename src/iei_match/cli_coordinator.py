"""The coordinator's commands of ``iei-match``: batch, allocate, gap.

:func:`add_commands` adds them to the parser that :mod:`iei_match.cli` builds; errors are
reported by ``cli.main`` like every other command's.
"""

from __future__ import annotations

import argparse
import sys

from tqdm.auto import tqdm

__all__ = ["add_commands"]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None


def _fit(value: str) -> float:
    x = _number(value)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {x}")
    return x


def cmd_batch(args) -> int:
    from .batch import run_batch
    from .io import load_needs, load_programs

    needs, programs = load_needs(args.needs), load_programs(args.programs)
    directions = ("need", "program") if args.direction == "both" else (args.direction,)
    bar = tqdm(total=0, unit="partition", desc="batch", disable=args.quiet)

    def progress(p) -> None:
        if p.stage == "running" and p.direction is None:
            bar.reset(total=p.total)
            if p.reused:
                _say(f"job resumed: {p.reused} of {p.total} partitions were done")
        bar.n = p.done
        bar.set_postfix(rows=p.rows, refresh=False)
        bar.refresh()

    try:
        result = run_batch(args.model_dir, needs, programs, args.output, args.top_k,
                           directions=directions, partners_output=args.partners_output,
                           job_id=args.job_id, work_dir=args.work_dir, scheduler=args.scheduler,
                           n_workers=args.workers, partition_size=args.partition_size,
                           explain=0 if args.no_explain else args.explain_top,
                           min_fit=args.min_fit,
                           progress=progress, cleanup=args.cleanup)
    finally:
        bar.close()
    for direction, path in result.outputs.items():
        _say(f"wrote {result.rows[direction]} rows ({direction} direction) to {path}")
    _say(f"job {result.job_id}: {result.partitions} partitions ({result.reused} reused) in "
         f"{result.seconds:.1f} s; partitions kept in {result.job_dir}"
         if not args.cleanup else f"job {result.job_id} done in {result.seconds:.1f} s")
    return 0


def cmd_allocate(args) -> int:
    from .allocation import allocate
    from .io import write_table

    plan, report = allocate(args.scores, args.needs, args.programs, bases=args.bases,
                            max_partners_per_college=args.max_partners_per_college,
                            min_score=args.min_score, time_limit=args.time_limit,
                            min_fit=args.min_fit)
    write_table(plan, args.output)
    print(report.summary())
    _say(f"wrote {len(plan)} rows to {args.output}")
    return 0


def cmd_gap(args) -> int:
    from .gap import gap_report
    from .gap_plot import write_gap_plot
    from .io import write_table

    table = gap_report(args.needs, args.programs, scores=args.scores,
                       prefix_length=args.prefix_length, min_score=args.min_score,
                       catalog=args.catalog)
    write_table(table, args.output)
    if args.plot:
        write_gap_plot(table, args.plot)
    print(f"demand {int(table['demand'].sum())} people, supply {int(table['supply'].sum())} "
          f"graduates/year, {len(table)} cells; largest shortfalls:")
    print(table[table["shortfall"] > 0].head(10).to_string(index=False))
    _say(f"wrote {len(table)} rows to {args.output}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def add_commands(sub, positive) -> None:
    """Add ``batch``, ``allocate`` and ``gap`` to the subparsers ``sub``.

    ``positive`` is the argument type for whole numbers of at least 1.
    """
    b = sub.add_parser("batch", help="rank every need against every program (and back) on "
                       "Dask, in resumable partitions")
    b.add_argument("--model-dir", required=True, help="model directory or models root")
    b.add_argument("--needs", required=True)
    b.add_argument("--programs", required=True)
    b.add_argument("--top-k", type=positive, default=10)
    b.add_argument("--output", required=True, help=".parquet, .csv or .xlsx; with both "
                   "directions it holds the need direction")
    b.add_argument("--partners-output", help="the program direction's file (default: the "
                   "output's name with .partners before the extension)")
    b.add_argument("--direction", choices=("both", "need", "program"), default="both",
                   help="need: best programs per need; program: best needs per program")
    b.add_argument("--job-id", help="names the job; the same id resumes it (default: derived "
                   "from the model, the inputs and the settings)")
    b.add_argument("--work-dir", help="where job directories are kept (default: "
                   ".iei-match-jobs beside the output)")
    b.add_argument("--scheduler", help="threads (default), processes, or the address of a "
                   "running Dask scheduler, e.g. tcp://HOST:8786")
    b.add_argument("--workers", type=positive, help="threads or processes of the local "
                   "cluster (default: the number of CPUs)")
    b.add_argument("--partition-size", type=positive, default=1000,
                   help="needs (or programs) per partition")
    b.add_argument("--explain-top", type=positive, default=5,
                   help="rows per list that get top_factors (SHAP values)")
    b.add_argument("--no-explain", action="store_true",
                   help="leave out the matched_terms and top_factors columns")
    b.add_argument("--min-fit", type=_fit, help="leave out pairs whose fit (0-1) is below "
                   "this")
    b.add_argument("--cleanup", action="store_true",
                   help="remove the job directory once the outputs are written")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)

    a = sub.add_parser("allocate", help="turn scores into a plan that respects headcounts, "
                       "graduates and base capacities (exact solver)")
    a.add_argument("--scores", required=True, help="need_id, program_id, score (e.g. a batch "
                   "output)")
    a.add_argument("--needs", required=True, help="needs with headcount")
    a.add_argument("--programs", required=True, help="programs with graduates_per_year "
                   "(and org_id: the college)")
    a.add_argument("--output", required=True, help="need_id, program_id, assigned, score")
    a.add_argument("--bases", help="training bases: base_id, program_id, capacity")
    a.add_argument("--max-partners-per-college", type=positive,
                   help="needs a college may serve at most")
    a.add_argument("--min-score", type=_number, help="pairs scoring lower are not used")
    a.add_argument("--min-fit", type=_fit, help="pairs whose fit (0-1) is lower are not used "
                   "(needs the scores' fit column; default: pairs whose fit_level is low are "
                   "not used, 0 lets them in)")
    a.add_argument("--time-limit", type=_number, help="seconds for the solver when "
                   "--max-partners-per-college is given (default 120; the status says how "
                   "far from proven optimal the plan is when it stops there)")
    a.set_defaults(func=cmd_allocate)

    g = sub.add_parser("gap", help="demand vs supply by program category x province x level")
    g.add_argument("--needs", required=True, help="needs with headcount (and province, level, "
                   "category)")
    g.add_argument("--programs", required=True, help="programs with graduates_per_year")
    g.add_argument("--output", required=True, help="the table: .csv, .xlsx or .parquet")
    g.add_argument("--plot", help="a picture of it: .png or .html")
    g.add_argument("--scores", help="need_id, program_id, score: gives needs without a "
                   "category column the category of their best program")
    g.add_argument("--prefix-length", type=positive, default=2,
                   help="code letters that make a program category")
    g.add_argument("--min-score", type=_number, help="pairs scoring lower give no category")
    g.add_argument("--catalog", choices=("cn-vocational", "us-onet-cip"),
                   help="the catalog the codes come from: cn-vocational names the 专业大类 "
                   "and 专业类 and puts its three levels' codes in one numbering")
    g.set_defaults(func=cmd_gap)

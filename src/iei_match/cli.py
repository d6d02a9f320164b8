"""The ``iei-match`` command line: train, rank, partners, evaluate, match, models; and the
coordinator's batch, allocate and gap (in :mod:`iei_match.cli_coordinator`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import __version__
from .artifacts import data_fingerprint, list_versions, load_model, publish_model
from .bridge import bridge_text, language_note
from .bundled import CATALOGS, catalog_dir
from .cli_coordinator import add_commands
from .errors import IeiMatchError, InputError, ModelCompatibilityError, ModelNotFoundError
from .evaluate import ALLIANCE_SIZE, QUERIES, evaluate, evaluate_seeds, seed_summary
from .explanations import as_written, describe_feature, read_from
from .io import check_links, load_links, load_needs, load_programs, write_table
from .matcher import Matcher
from .training import train_model

DEFAULT_CATALOG = CATALOGS[0]  # cn-vocational


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {n}")
    return n


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


DENSE = {"auto": "auto", "on": True, "off": False}


def _share(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {value!r}") from None
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"expected a share at least 0 and below 1, got {x}")
    return x


def _fit_value(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}") from None
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {x}")
    return x


def _train(needs: pd.DataFrame, programs: pd.DataFrame, links: pd.DataFrame | None,
           model_dir: Path, seed: int, dense: str = "auto", holdout: float = 0.0) -> Path:
    result = train_model(needs, programs, links, params={"dense": DENSE[dense]},
                         test_size=holdout, random_state=seed, progress=True)
    for note in result.notes:
        _say(f"note: {note}")
    matcher, metrics = result.matcher, result.metrics
    assert matcher is not None  # no live model to compare with: always accepted
    path = publish_model(matcher, model_dir, metrics=metrics,
                         data_sha256=data_fingerprint(needs, programs, links))
    oof = metrics.get("fit_oof", {})
    calibrated = (f"; fit ECE {oof['ece']:.4f} out of fold, levels {metrics['fit_levels']}"
                  if oof else "; fit not calibrated (no links)")
    _say(f"trained in {metrics['fit_seconds']} s ({matcher.mode_}{calibrated}); "
         f"published {path}")
    if "holdout" in metrics:
        for direction, figures in metrics["holdout"].items():
            _say(f"held out: {direction} " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return path


def cmd_train(args) -> int:
    needs, programs = load_needs(args.needs), load_programs(args.programs)
    links = None
    if args.links:
        links = load_links(args.links)
        check_links(links, needs, programs, args.links)
    _train(needs, programs, links, Path(args.model_dir), args.seed, args.dense, args.holdout)
    return 0


def _write(frame: pd.DataFrame, output: str | None) -> None:
    if output:
        write_table(frame, output)
        _say(f"wrote {len(frame)} rows to {output}")
    else:
        frame.to_csv(sys.stdout, index=False)


def _rank_command(direction: str):
    def command(args) -> int:
        # Read the inputs first: a bad file is reported before the model is loaded.
        needs, programs = load_needs(args.needs), load_programs(args.programs)
        matcher = load_model(args.model_dir)
        explain = 0 if args.no_explain else args.explain_top
        if direction == "need":
            out = matcher.rank(needs, programs, k=args.top_k, explain=explain,
                               min_fit=args.min_fit)
        else:
            out = matcher.partners(programs, needs, k=args.top_k, explain=explain,
                                   min_fit=args.min_fit)
        _write(out, args.output)
        return 0

    return command


cmd_rank, cmd_partners = _rank_command("need"), _rank_command("program")


def cmd_evaluate(args) -> int:
    needs, programs, links = load_needs(args.needs), load_programs(args.programs), \
        load_links(args.links)
    check_links(links, needs, programs, args.links)
    peers = () if args.no_peers else None
    if args.seeds is not None:
        return _evaluate_seeds(args, needs, programs, links, peers)
    report = evaluate(needs, programs, links, test_size=args.test_size, random_state=args.seed,
                      k=args.top_k, peers=peers,
                      no_fit=not (args.no_peers or args.no_fit_test), queries=args.queries,
                      matcher=Matcher(random_state=args.seed, dense=DENSE[args.dense]),
                      progress=True)
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(report.round(4).to_string(index=False))
    for kind, aucs in report.attrs.get("no_fit", {}).items():
        figures = ", ".join(f"{m} {v:.4f}" for m, v in aucs.items() if m != "needs")
        print(f"no-fit detection ({kind} alliances of {ALLIANCE_SIZE} programs, "
              f"{aucs['needs']} needs), top-1 ROC AUC: {figures}")
    if args.plot:
        from .calibration_plot import write_reliability_plot

        write_reliability_plot(report.attrs["calibration"], args.plot,
                               title=f"{Path(args.needs).parent.name}: fit on held-out needs")
        _say(f"wrote the reliability diagram to {args.plot}")
    if args.output:
        write_table(report, args.output)
    return 0


def _evaluate_seeds(args, needs, programs, links, peers) -> int:
    """``evaluate --seeds``: one hold-out split per seed, each seed's table, then the spread
    of NDCG@10 over the seeds and iei-match's gain over the best peer."""
    if args.plot:
        raise InputError("--plot draws one split's fit: give --seed, not --seeds")
    report = evaluate_seeds(needs, programs, links, args.seeds, test_size=args.test_size,
                            k=args.top_k, peers=peers, no_fit=False, queries=args.queries,
                            matcher_for=lambda seed: Matcher(random_state=seed,
                                                             dense=DENSE[args.dense]),
                            progress=True)
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(report.round(4).to_string(index=False))
        print(f"\nNDCG@10 over seeds {', '.join(map(str, args.seeds))}:")
        print(seed_summary(report).round(4).to_string(index=False))
    if args.output:
        write_table(report, args.output)
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, e.g. 0,1,2; got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds, e.g. 0,1,2; got {text!r}")
    return seeds


def _default_model(models_root: Path, catalog: str):
    root = models_root / f"bundled-{catalog}"
    try:
        return load_model(root)
    except (ModelNotFoundError, ModelCompatibilityError) as exc:
        src = catalog_dir(catalog)
        why = ("first run" if isinstance(exc, ModelNotFoundError)
               else "the saved default model is of an older format")
        _say(f"{why}: training the default model on the bundled {catalog} catalog "
             f"(once; it is saved under {root})")
        needs, programs = load_needs(src / "needs.csv"), load_programs(src / "programs.csv")
        links = load_links(src / "links.csv")
        _train(needs, programs, links, root, seed=0)
        return load_model(root)


def cmd_match(args) -> int:
    text = " ".join(args.text).strip()
    if not text:
        raise InputError('describe the need, e.g. iei-match match "数控机床操作工，熟悉FANUC系统"')
    # The catalog is the one asked for, else the Chinese one: an English need is not moved
    # to another country's catalog behind the user's back; it is bridged, or warned about.
    catalog = args.catalog or DEFAULT_CATALOG
    language, warning = language_note(f"{args.title or ''} {text}",
                                      "zh" if catalog == "cn-vocational" else "en")
    how = "--catalog" if args.catalog else f"the default; --catalog {CATALOGS[1]} for the US one"
    print(f"catalog: {catalog} ({how}); the need is in "
          f"{ {'zh': 'Chinese', 'en': 'English'}.get(language, 'no language found') }")
    bridged = bridge_text(text).terms if language == "en" and catalog == "cn-vocational" else ()
    if bridged:
        print("bridged: " + ", ".join(f"{en} → {zh}" for en, zh in bridged))
    if warning:
        print(f"warning: {warning}")
    matcher = _default_model(Path(args.models_root), catalog)
    programs = load_programs(catalog_dir(catalog) / "programs.csv")
    title = args.title or text[:40]
    need = pd.DataFrame({"need_id": ["need"], "title": [title], "text": [text],
                         "level": [args.level or ""], "code": [args.code or ""]})
    if args.level:
        programs = programs[programs["level"] == args.level]
        if programs.empty:
            raise InputError(f"no program of level {args.level!r} in the {catalog} catalog")
    ranking = matcher.rank(need, programs, k=args.top_k, as_frame=False)
    via = read_from(title, text, bridge=matcher.language_ == "zh")
    info = programs.set_index("program_id")[["title", "level", "text"]]
    print(f"Programs for: {text}  ({catalog}, model {Path(matcher.model_dir_).name})")
    lang = "zh" if catalog == "cn-vocational" else "en"
    for match in ranking:
        title, level = info.loc[match.program_id, "title"], info.loc[match.program_id, "level"]
        level = f" [{level}]" if level else ""
        print(f"{match.rank:>3}. {match.program_id}  {title}{level}  fit {match.fit:.2f} "
              f"({match.fit_level})  score {match.score:.3f}")
        terms = as_written(match.matched_terms or [], text,
                           info.loc[match.program_id, "text"])
        terms = [f"{t} (← {via[t]})" if t in via else t for t in terms]
        print(f"     matched: {', '.join(terms) or '-'}")
        why = "; ".join(f"{describe_feature(name, lang, value)} {value:+.2f}"
                        for name, value in match.contributions.items())
        print(f"     why: {why or '-'}")
    if len(ranking) and not (ranking.fit_level != "low").any():
        print("No program fits this need well: every match above is of low fit.")
    return 0


def cmd_models(args) -> int:
    versions = list_versions(args.model_dir)
    if not versions:
        _say(f"no published model under {args.model_dir}")
        return 1
    for v in versions:
        print(f"{'*' if v['live'] else ' '} {v['version']}  {v['mode']}  {v['metrics']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iei-match", description=(
        "Match enterprise talent needs with college programs (industry-education integration)."))
    p.add_argument("--version", action="version", version=f"iei-match {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and publish it as a new version")
    t.add_argument("--needs", required=True, help="needs file (CSV, XLSX or Parquet)")
    t.add_argument("--programs", required=True, help="programs file")
    t.add_argument("--links", help="past links file (need_id, program_id, grade); "
                   "without it the model ranks by content only")
    t.add_argument("--model-dir", required=True, help="models root to publish into")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dense", choices=DENSE, default="auto", help="sentence-embedding "
                   "features: auto = when the embeddings extra is installed and the text is "
                   "not mostly Chinese")
    t.add_argument("--holdout", type=_share, default=0.0,
                   help="also hold out this share of the needs (e.g. 0.2) to measure the "
                   "ranking and the fit's calibration on needs the model did not see; the "
                   "figures go into the manifest")
    t.set_defaults(func=cmd_train)

    for name, helptext, func in (
        ("rank", "best programs for every need", cmd_rank),
        ("partners", "best needs for every program", cmd_partners),
    ):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("--model-dir", required=True, help="model directory or models root")
        r.add_argument("--needs", required=True)
        r.add_argument("--programs", required=True)
        r.add_argument("--top-k", type=_positive, default=10)
        r.add_argument("--output", help="CSV, XLSX or Parquet file (default: CSV to stdout)")
        r.add_argument("--no-explain", action="store_true",
                       help="leave out the matched_terms and top_factors columns")
        r.add_argument("--explain-top", type=_positive, default=5,
                       help="rows per list that get top_factors (SHAP values, ~1 ms a row)")
        r.add_argument("--min-fit", type=_fit_value, default=None,
                       help="leave out pairs whose fit (0-1) is below this")
        r.set_defaults(func=func)

    e = sub.add_parser("evaluate", help="hold out needs, train, and compare with the peers")
    e.add_argument("--needs", required=True)
    e.add_argument("--programs", required=True)
    e.add_argument("--links", required=True)
    e.add_argument("--test-size", type=float, default=0.2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--seeds", type=_seeds, default=None,
                   help="several hold-out splits, e.g. 0,1,2: each seed's table and the "
                        "spread of NDCG@10 over them (no no-fit test)")
    e.add_argument("--top-k", type=_positive, default=100)
    e.add_argument("--no-peers", action="store_true")
    e.add_argument("--queries", choices=QUERIES, default="full",
                   help="ask the held-out needs by title and text (full) or by their title "
                        "alone (title)")
    e.add_argument("--no-fit-test", action="store_true",
                   help="skip the no-fit detection test (30-program alliances)")
    e.add_argument("--dense", choices=DENSE, default="auto",
                   help="sentence-embedding features for iei-match (as for train)")
    e.add_argument("--output", help="also write the report to this file")
    e.add_argument("--plot", help="write the fit's reliability diagram (PNG) here")
    e.set_defaults(func=cmd_evaluate)

    m = sub.add_parser("match", help="rank bundled catalog programs for a free-text need "
                       "(trains the default model on first run)")
    m.add_argument("text", nargs="+", help="the need, in Chinese or English")
    m.add_argument("--title", help="a short title for the need")
    m.add_argument("--level", help="only programs of this level, e.g. 高职专科")
    m.add_argument("--code", help="the need's occupation code, if known (e.g. 6-12-03-00)")
    m.add_argument("--catalog", choices=CATALOGS, default=None,
                   help=f"the programs to match against (default: {CATALOGS[0]}; an English "
                        "need is bridged to Chinese terms, or warned about)")
    m.add_argument("--top-k", type=_positive, default=10)
    m.add_argument("--models-root", default="models", help="where default models are kept")
    m.set_defaults(func=cmd_match)

    v = sub.add_parser("models", help="list the published versions under a models root")
    v.add_argument("--model-dir", required=True)
    v.set_defaults(func=cmd_models)

    add_commands(sub, _positive)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except IeiMatchError as exc:
        _say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

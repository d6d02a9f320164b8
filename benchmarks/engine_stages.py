"""Where one recommendation's time goes in the engine: each stage of ``Matcher.rank``.

    python benchmarks/engine_stages.py --work W [--size 10000] [--requests 300]

The call is the one ``recommend_latency.py`` times (one need of the alliance of
``alliance_data.py`` against its prepared programs restricted to the need's level, k=10,
explained, ``min_fit`` at the model's ``medium``). Each stage is timed where it runs
("in place": its inputs and the catalog rows it reads as the request left them in the
caches) and, in a second pass over the same needs, called once more at once with the same
arguments ("repeated": the same work with warm caches and warm code), to show how much of
a stage's cost is the work and how much is reaching cold memory and code.

Stages (nested ones indented): the need read and vectorised (``Matcher._side``), its
nearest known needs, the candidates (retrieval by words and character n-grams), the pair
features (and within them the dot products of ``fused_dots.dots_many``: all but the one
with the programs' link history), the rankers' scores, the fit of the rows listed, the
matched terms, the top factors (TreeSHAP); "rest" is what ``rank`` spends outside them.
Prints a markdown table with the median and mean of each stage over the requests and the
load average.
"""

from __future__ import annotations

import random
import time
import warnings
from collections import defaultdict

import numpy as np
from alliance_data import EngineAlliance, machine, uptime_load
from recommend_latency import need_records

import iei_match.features as features_module
import iei_match.matcher as matcher_module
from iei_match.matcher import Matcher
from iei_match.memory import Memory

# (label, module or class, attribute, nested)
STAGES = [
    ("the need read and vectorised", Matcher, "_side", False),
    ("its nearest known needs", Memory, "neighbours", False),
    ("candidates (retrieval)", matcher_module, "candidate_pairs", False),
    ("pair features", matcher_module, "build_features", False),
    ("… of which the dot products in one pass (14 of 15)", features_module, "dots_many",
     True),
    ("rankers' scores", None, "score", False),
    ("fit of the listed rows", Matcher, "_fit_of_best", False),
    ("matched terms", Matcher, "_matched_terms", False),
    ("top factors (TreeSHAP)", Matcher, "_top_factors", False),
]


CACHES = ("_derived", "_reach", "_prefixes")  # what a side keeps of its first use


class Timer:
    """Wraps the stages' functions: each call's time added to its stage for the request.
    With ``repeat``, each call of a stage is made a second time at once and that one is
    timed (what the first call kept on a side, its derived arrays, reach and code
    prefixes, dropped first so that the work is the same; caches beyond the sides, such
    as the catalog's own, stay warm); a nested stage is not repeated but timed within the
    second call of the stage around it."""

    def __init__(self):
        self.now: dict[str, float] = defaultdict(float)
        self.repeat = False

    def wrap(self, label, func, nested=False):
        def timed(*args, **kwargs):
            sides = [a for a in args if all(hasattr(a, c) for c in CACHES)]
            kept = [[set(getattr(a, c)) for c in CACHES] for a in sides]
            t0 = time.perf_counter()
            out = func(*args, **kwargs)
            if self.repeat and nested:
                self.now[label] = time.perf_counter() - t0  # the last call: the warm one
                return out
            if self.repeat:
                for side, before in zip(sides, kept, strict=True):
                    for name, keys in zip(CACHES, before, strict=True):
                        cache = getattr(side, name)
                        for key in set(cache) - keys:
                            del cache[key]
                t0 = time.perf_counter()
                out = func(*args, **kwargs)
            self.now[label] += time.perf_counter() - t0
            return out
        return timed


def install(timer: Timer, matcher) -> None:
    for label, owner, name, nested in STAGES:
        if owner is None:  # the rankers' score: on the model's own ranker objects
            for ranker in matcher.rankers_.values():
                ranker.score = timer.wrap(label, ranker.score)
        else:
            setattr(owner, name, timer.wrap(label, getattr(owner, name), nested))


def run(engine, n, seed, timer, repeat) -> dict[str, list[float]]:
    matcher, rows = engine.matcher, engine.rows
    min_fit = float(matcher.fit_model_.thresholds_["medium"])
    rng = random.Random(seed)
    per: dict[str, list[float]] = defaultdict(list)
    timer.repeat = repeat
    for i in range(n + 3):
        row = rows[rng.randrange(len(rows))]
        need, restricted = need_records(row), engine.restricted(row)
        timer.now.clear()
        t0 = time.perf_counter()
        matcher.rank(need, restricted, k=10, explain=10, min_fit=min_fit, as_frame=False)
        total = time.perf_counter() - t0
        if i < 3:  # the first calls compile and warm caches
            continue
        per["total"].append(total)
        for label, *_ in STAGES:
            per[label].append(timer.now.get(label, 0.0))
    return per


def main(argv=None) -> None:
    p = EngineAlliance.arguments(__doc__)
    p.add_argument("--requests", type=int, default=300)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    engine = EngineAlliance.from_args(args)
    timer = Timer()
    install(timer, engine.matcher)
    load0 = uptime_load()
    in_place = run(engine, args.requests, args.seed, timer, False)
    repeated = run(engine, args.requests, args.seed, timer, True)
    load = (load0 + uptime_load()) / 2
    print(render(in_place, repeated, args, load))


def render(in_place, repeated, args, load) -> str:
    def ms(values) -> tuple[float, float]:
        return 1000 * float(np.median(values)), 1000 * float(np.mean(values))

    total_med, total_mean = ms(in_place["total"])
    top = [label for label, *_, nested in STAGES if not nested]
    rest = np.array(in_place["total"]) - sum(np.array(in_place[t]) for t in top)
    lines = [machine(),
             f"One need against {args.size:,} programs (k=10, explained, min_fit medium), "
             f"{args.requests} requests; load average {load:.1f}.", "",
             "| stage | in place, p50 (ms) | mean (ms) | share of the mean | repeated at once, "
             "p50 (ms) |", "|---|---:|---:|---:|---:|"]
    for label, *_ in STAGES:
        med, mean = ms(in_place[label])
        lines.append(f"| {label} | {med:.2f} | {mean:.2f} | {100 * mean / total_mean:.0f}% | "
                     f"{ms(repeated[label])[0]:.2f} |")
    lines.append(f"| rest of `rank` | {1000 * np.median(rest):.2f} | {1000 * rest.mean():.2f} "
                 f"| {100000 * rest.mean() / total_mean:.0f}% | |")
    lines.append(f"| **whole call** | **{total_med:.2f}** | {total_mean:.2f} | 100% | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

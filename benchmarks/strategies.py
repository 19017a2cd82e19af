"""Hyperband (and ASHA, halving) against the full grid on the "seed-48" workload (or another grid).

    PYTHONPATH=. python benchmarks/strategies.py [--grid seed48|grid81] [--epochs 9] [--steps 20]
        [--val-steps 5] [--seeds 10]

``--grid seed48`` (the default): ``halving.py``'s 48 combinations; ``--grid grid81``:
``grid81.py``'s 81 (3^4: lr x optimizer x width x activation).

Trains the full grid (every combination, ``epochs`` each) and one real Hyperband search
(``seed=0``), and checks that every Hyperband trial's curve equals the same combination's
curve in the full grid (a promoted trial continues its weights, so it must). Because it
does, any strategy's decisions for any seed can then be replayed exactly from the full
grid's curves without training again: the strategy is asked, and told the best objective
value over the first ``budget`` epochs of that combination's full-grid curve. For each
seed this prints the epochs spent as a share of the full grid's and the winner's rank in
the full grid (1 = the full grid's best). One worker (the strategies' deterministic case).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gridspec.strategies import Decision, Proposal, make_strategy  # noqa: E402


def replay(name: str, curves: dict[int, list[float]], epochs: int, eta: int, seed: int) -> tuple[int, int]:
    """Drive strategy ``name`` on recorded curves; returns (epochs trained, winner index)."""
    plan = make_strategy(name, size=len(curves), epochs=epochs, max_trials=None, seed=seed,
                         eta=eta, direction="min")
    spent, finishers = 0, {}
    while isinstance(proposal := plan.ask(), Proposal):
        score = min(curves[proposal.index][: proposal.epochs])
        spent += proposal.epochs - proposal.start_epoch
        if proposal.epochs == epochs:
            finishers[proposal.index] = score
        plan.tell(proposal, score)
    assert proposal is Decision.STOP
    return spent, min(finishers, key=lambda i: (finishers[i], i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=("seed48", "grid81"), default="seed48")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-steps", type=int, default=5)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    if args.grid == "seed48":
        from halving import build  # seed-48: the grid and its data
    else:
        from grid81 import build
    settings = dict(epochs=args.epochs, steps_per_epoch=args.steps, validation_steps=args.val_steps, seed=0)

    started = time.perf_counter()
    band = build.search(strategy="hyperband", eta=args.eta, **settings)
    band_wall = time.perf_counter() - started
    started = time.perf_counter()
    full = build.search(**settings)
    full_wall = time.perf_counter() - started

    curves = {t.number - 1: [float(v) for v in t.history["val_loss"]] for t in full.trials}
    same = all(np.allclose(t.history["val_loss"], curves[t.number - 1][: t.epochs], rtol=1e-5)
               for t in band.trials if t.ok)
    ranking = [t.number - 1 for t in full.ranked()]
    spent_full = sum(t.epochs for t in full.trials)
    spent_band = sum(t.epochs for t in band.trials)
    load = open("/proc/loadavg").read().strip()
    replayed, winner = replay("hyperband", curves, args.epochs, args.eta, 0)

    print(f"{args.grid}: {len(full.trials)} combinations, {args.epochs} epochs x {args.steps} steps, "
          f"{args.val_steps} validation steps, eta {args.eta}, 1 worker")
    print(f"load average at the end of training: {load}")
    print()
    print("| run | epochs trained | share of the full grid | wall s | winner | its rank in the full grid |")
    print("|---|---|---|---|---|---|")
    print(f"| full grid | {spent_full} | 100 % | {full_wall:.1f} | trial {full.best.number} | 1 |")
    print(f"| hyperband, seed 0 (trained) | {spent_band} | {100 * spent_band / spent_full:.1f} % | "
          f"{band_wall:.1f} | trial {band.best.number} | {ranking.index(band.best.number - 1) + 1} |")
    print()
    print(f"hyperband's curves equal the full grid's: {same}; the replay of seed 0 agrees with the "
          f"trained run: {replayed == spent_band and winner == band.best.number - 1}")
    finals = np.array([min(curves[i]) for i in range(len(curves))])
    firsts = np.array([curves[i][0] for i in range(len(curves))])

    def ranks(x):
        return np.argsort(np.argsort(x))

    rho = float(np.corrcoef(ranks(firsts), ranks(finals))[0, 1])
    print(f"the full grid: best val_loss {finals.min():.4g}, median {np.median(finals):.4g}, worst "
          f"{finals.max():.4g}; Spearman rank correlation of epoch 1's val_loss with the best over "
          f"{args.epochs} epochs: {rho:.2f}; the winner ranked {int(ranks(firsts)[ranking[0]]) + 1} after epoch 1")
    print("the full grid's top 5:", "; ".join(f"trial {t.number} {dict(t.params)} {t.score:.4g}"
                                             for t in full.ranked()[:5]))
    print()
    print("Replayed from the full grid's curves (no training), seeds 0 to", args.seeds - 1)
    print()
    print("| strategy | seed | epochs trained | share of the full grid | winner | its rank in the full grid |")
    print("|---|---|---|---|---|---|")
    for name in ("halving", "asha", "hyperband"):
        ranks, shares = [], []
        for seed in range(args.seeds if name != "halving" else 1):  # halving draws nothing
            spent, best = replay(name, curves, args.epochs, args.eta, seed)
            rank = ranking.index(best) + 1
            ranks.append(rank)
            shares.append(spent / spent_full)
            print(f"| {name} | {seed} | {spent} | {100 * spent / spent_full:.1f} % | trial {best + 1} | {rank} |")
        print(f"| **{name}** | all | | mean {100 * np.mean(shares):.1f} % | | top 3 in "
              f"{sum(r <= 3 for r in ranks)} of {len(ranks)}; worst {max(ranks)} |")


if __name__ == "__main__":
    main()

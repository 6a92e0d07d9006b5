"""Generation speed of TransformerLM with and without the key/value cache.

A GPT-sized model of the ``gpt`` training benchmark (vocab 256, d_model 128, 4 heads,
2 layers) with a context of 256 tokens continues a prompt until the context is full
(sampling with temperature 1). Without the cache every new token recomputes the whole
window; with it, every new token runs one position through the model. Prints tokens per
second (new tokens of all sequences) for both and their ratio (target: cache >= 5x).

    python bench/lm_generate.py [--context 256] [--prompt 32] [--batch 1 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

from _environment import use_threads_and_this_checkout

TARGET = 5.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, default=256, help="context length")
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="sequences")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (best kept)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    use_threads_and_this_checkout(args.threads)
    import numpy as np

    from tradenn.models import TransformerLM

    lm = TransformerLM(256, args.context, d_model=128, num_heads=4, num_layers=2, seed=0)
    steps = args.context - args.prompt
    print(
        f"TransformerLM vocab 256, d_model 128, 4 heads, 2 layers, float32; prompt "
        f"{args.prompt} + {steps} new tokens = context {args.context}; best of {args.repeats}\n"
    )
    print(f"{'batch':>5} {'no cache':>14} {'cache':>14} {'speedup':>8} target")
    for batch in args.batch:
        prompt = np.random.default_rng(0).integers(0, 256, (batch, args.prompt))
        rates = {}
        for use_cache in (False, True):
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                lm.generate(prompt, steps, seed=0, use_cache=use_cache)
                best = min(best, time.perf_counter() - start)
            rates[use_cache] = batch * steps / best
        speedup = rates[True] / rates[False]
        verdict = "ok" if speedup >= TARGET else "MISSED"
        print(
            f"{batch:>5} {rates[False]:>8.0f} tok/s {rates[True]:>8.0f} tok/s {speedup:>7.1f}x "
            f">= {TARGET:.0f}x {verdict}"
        )


if __name__ == "__main__":
    main()

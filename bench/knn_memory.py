"""Time and memory of an exact k-nearest-neighbour search over a large training set.

Default: 10^6 training rows x 50 features, 10^4 queries, k=10, euclidean, the default
memory budget (256 MB). The data are generated as float32 (200 MB); ``fit`` stores its own
standardized float64 copy (400 MB, the search computes in float64 for the precision of
the expanded ``|b|^2 - 2 a.b`` form), so fit peaks at input + copy, and after the input is
dropped the model alone holds 400 MB. The search itself should add at most the budget.

Prints, per phase, the wall time and the peak of numpy allocations (``tracemalloc``),
then the process's peak resident set size (``ru_maxrss``, which also counts the
interpreter, BLAS buffers and freed-but-not-returned heap). ``--check`` compares the
neighbours of a few queries with a direct (no GEMM) full scan.

    python bench/knn_memory.py [--train 1000000] [--features 50] [--queries 10000] [--k 10]
                               [--budget 256] [--metric euclidean] [--threads 2] [--check 20]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from _environment import use_threads_and_this_checkout

MB = 2**20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--features", type=int, default=50, help="features per row")
    parser.add_argument("--queries", type=int, default=10_000, help="query rows")
    parser.add_argument("--k", type=int, default=10, help="neighbours")
    parser.add_argument("--budget", type=float, default=256.0, help="max_memory_mb")
    parser.add_argument("--metric", default="euclidean", help="euclidean|manhattan|cosine")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    parser.add_argument("--check", type=int, default=20, help="queries to verify (0: none)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    use_threads_and_this_checkout(args.threads)
    import numpy as np

    from tradenn.models.knn import KNNRegressor

    n, f, nq, k = args.train, args.features, args.queries, args.k
    print(
        f"KNNRegressor: {n:,} training rows x {f} features (float32 input, float64 model), "
        f"{nq:,} queries, k={k}, metric={args.metric}, max_memory_mb={args.budget:g}, "
        f"{args.threads} BLAS threads\n"
    )
    tracemalloc.start()
    rng = np.random.default_rng(0)
    X = np.empty((n, f), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices: no float64 temporary of the whole
        rng.standard_normal(out=X[start : start + 100_000], dtype=np.float32)
    X *= np.linspace(0.5, 2.0, f, dtype=np.float32)  # unequal scales: standardize matters
    y = rng.standard_normal(n)
    queries = rng.standard_normal((nq, f)).astype(np.float32)
    print(f"data                     {tracemalloc.get_traced_memory()[0] / MB:9.0f} MB held")

    model = KNNRegressor(k=k, metric=args.metric, max_memory_mb=args.budget)
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    model.fit(X, y)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    print(
        f"fit          {elapsed:8.2f} s  peak {peak / MB:7.0f} MB "
        f"(+{(peak - before) / MB:.0f} MB over the data)"
    )
    del X
    held = tracemalloc.get_traced_memory()[0]
    print(f"input dropped            {held / MB:9.0f} MB held (model + y + queries)")

    tracemalloc.reset_peak()
    start = time.perf_counter()
    distances, indices = model.kneighbors(queries)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    outputs = distances.nbytes + indices.nbytes
    print(
        f"kneighbors   {elapsed:8.2f} s  peak {peak / MB:7.0f} MB "
        f"(+{(peak - held) / MB:.0f} MB over the model, of which {outputs / MB:.1f} MB "
        f"outputs; budget {args.budget:g} MB)"
    )
    blocks = model._block_shape(nq, k)
    print(f"             {n * nq / elapsed:,.0f} (query, row) pairs/s; blocks of {blocks}")
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"process peak RSS (ru_maxrss) {rss:9.0f} MB")

    if args.check:
        train = model._train  # the standardized rows the search ran on
        mismatches = 0
        for row in range(min(args.check, nq)):
            query = (queries[row] - model.mean_) / model.scale_
            direct = np.empty(n)
            for low in range(0, n, 100_000):  # plain differences, no expanded form
                rows = train[low : low + 100_000]
                direct[low : low + 100_000] = _direct_distances(rows, query, args.metric)
            expected = np.lexsort((np.arange(n), direct))[:k]
            mismatches += int(not np.array_equal(expected, indices[row]))
        print(f"check: {min(args.check, nq) - mismatches}/{min(args.check, nq)} queries agree")


def _direct_distances(rows, query, metric):
    """Distances of ``rows`` to ``query`` from the definitions (no expanded form)."""
    import numpy as np

    if metric == "cosine":
        norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
        return 1.0 - (rows @ query) / norms
    difference = rows - query
    if metric == "manhattan":
        return np.abs(difference).sum(axis=1)
    return np.sqrt(np.einsum("ij,ij->i", difference, difference))


if __name__ == "__main__":
    main()

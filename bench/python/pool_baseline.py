#!/usr/bin/env python3
"""Python baselines for taskfarm's pool benchmarks.

Runs the same workloads as bench/pool_rate.cpp on multiprocessing.Pool and
prints one JSON object: {"<workload>": {"seconds": [..], "tasks": n}, ...}.

usage: pool_baseline.py TASKS REPEATS WORKERS
"""
import json
import multiprocessing as mp
import sys
import time


def noop(x):
    return x


def main():
    n, reps, workers = (int(a) for a in sys.argv[1:4])
    ctx = mp.get_context("fork")
    out = {"python": sys.version.split()[0]}
    with ctx.Pool(workers) as pool:
        pool.map(noop, range(1000))  # warm-up: workers started and imported
        for name, chunksize in (("map_noop_auto", None), ("map_noop_chunk1", 1)):
            secs = []
            for _ in range(reps):
                t0 = time.perf_counter()
                res = pool.map(noop, range(n), chunksize=chunksize)
                secs.append(time.perf_counter() - t0)
                assert len(res) == n
            out[name] = {"tasks": n, "seconds": secs}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

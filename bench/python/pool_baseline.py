#!/usr/bin/env python3
"""Python baselines for taskfarm's pool benchmarks.

Runs the workloads of the benchmark engine (bench/src/pool_suites.cpp) on
multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor and prints one
JSON object:

    {"python": "3.11.7", "workers": 2,
     "workloads": {"<name>": {"tasks": n, "seconds": [one per run]}, ...}}

Workloads (the same inputs and tasks as the C++ side):
    map_noop_chunk1   Pool.map(noop, range(n), chunksize=1)
    map_noop_auto     Pool.map(noop, range(n))             (Python's automatic chunking)
    executor_submit   [ex.submit(noop, i) for i in range(n)], then every result()
    map_payload       Pool.map(len, [bytes of PAYLOAD] * m, chunksize=1)
    start_<method>    Pool(workers) created until apply_async(noop, (7,)).get() returned
    shutdown_<method> close() + join() of that pool           (method: fork, spawn)

usage: pool_baseline.py --tasks N --repeats R --workers W [--submit-tasks N]
                        [--payload-tasks M --payload-bytes B] [--start-repeats S]
                        [--no-spawn] [--no-rates]
       pool_baseline.py TASKS REPEATS WORKERS   (the map workloads only; bench/pool_rate.cpp)
"""
import argparse
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def noop(x):
    return x


def payload_size(b):
    return len(b)


def pool_rates(args, out):
    ctx = mp.get_context("fork")
    n = args.tasks
    blob = b"x" * args.payload_bytes
    blobs = [blob] * args.payload_tasks
    runs = {"map_noop_chunk1": [], "map_noop_auto": [], "map_payload": []}
    with ctx.Pool(args.workers) as pool:
        pool.map(noop, range(1000))  # warm-up: workers started and imported
        if blobs:
            pool.map(payload_size, blobs[:4], chunksize=1)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = pool.map(noop, range(n), chunksize=1)
            runs["map_noop_chunk1"].append(time.perf_counter() - t0)
            assert res == list(range(n))
            t0 = time.perf_counter()
            res = pool.map(noop, range(n))
            runs["map_noop_auto"].append(time.perf_counter() - t0)
            assert res == list(range(n))
            if blobs:
                t0 = time.perf_counter()
                sizes = pool.map(payload_size, blobs, chunksize=1)
                runs["map_payload"].append(time.perf_counter() - t0)
                assert sizes == [len(blob)] * len(blobs)
    out["map_noop_chunk1"] = {"tasks": n, "seconds": runs["map_noop_chunk1"]}
    out["map_noop_auto"] = {"tasks": n, "seconds": runs["map_noop_auto"]}
    if blobs:
        out["map_payload"] = {"tasks": len(blobs), "seconds": runs["map_payload"],
                              "payload_bytes": len(blob)}
    if args.submit_tasks:
        m = args.submit_tasks
        secs = []
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as ex:
            assert sum(f.result() for f in [ex.submit(noop, i) for i in range(200)]) == 199 * 100
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                futures = [ex.submit(noop, i) for i in range(m)]
                total = sum(f.result() for f in futures)
                secs.append(time.perf_counter() - t0)
                assert total == m * (m - 1) // 2
        out["executor_submit"] = {"tasks": m, "seconds": secs}


def startup(args, out):
    methods = ["fork"] + ([] if args.no_spawn else ["spawn"])
    for method in methods:
        ctx = mp.get_context(method)
        start, down = [], []
        for rep in range(args.start_repeats + 1):  # the first one warms caches, untimed
            t0 = time.perf_counter()
            pool = ctx.Pool(args.workers)
            value = pool.apply_async(noop, (7,)).get()
            t1 = time.perf_counter()
            pool.close()
            pool.join()
            t2 = time.perf_counter()
            assert value == 7
            if rep > 0:
                start.append(t1 - t0)
                down.append(t2 - t1)
        out["start_" + method] = {"tasks": 1, "seconds": start}
        out["shutdown_" + method] = {"tasks": 1, "seconds": down}


def main():
    argv = sys.argv[1:]
    if len(argv) == 3 and all(a.isdigit() for a in argv):  # the legacy form
        argv = ["--tasks", argv[0], "--repeats", argv[1], "--workers", argv[2],
                "--submit-tasks", "0", "--payload-tasks", "0", "--start-repeats", "0"]
    p = argparse.ArgumentParser(description="Python baselines for taskfarm's pool benchmarks")
    p.add_argument("--tasks", type=int, default=100000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--submit-tasks", type=int, default=20000)
    p.add_argument("--payload-tasks", type=int, default=100)
    p.add_argument("--payload-bytes", type=int, default=1 << 20)
    p.add_argument("--start-repeats", type=int, default=5)
    p.add_argument("--no-spawn", action="store_true")
    p.add_argument("--no-rates", action="store_true")
    p.add_argument("--json", action="store_true", help="accepted for clarity; the output is always JSON")
    args = p.parse_args(argv)
    workloads = {}
    if args.start_repeats > 0:  # first, as the C++ side does
        startup(args, workloads)
    if not args.no_rates:
        pool_rates(args, workloads)
    print(json.dumps({"python": sys.version.split()[0], "workers": args.workers,
                      "workloads": workloads}))


if __name__ == "__main__":
    main()

"""psutil reading the same process table as bench/process_bench.rs, in the same run.

Every round reads what lookout's table holds (pid, ppid, user, name, command line, state,
threads, CPU %, RSS, I/O counters) for every process, with psutil.process_iter, which keeps
its Process objects between rounds as lookout keeps its per-process state. CPU time of the
reading thread per round, in ms.
"""
import sys
import time

import psutil

ATTRS = ["pid", "ppid", "username", "name", "cmdline", "status", "num_threads",
         "cpu_percent", "memory_info", "io_counters"]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    t0 = time.thread_time()
    rows = list(psutil.process_iter(ATTRS))
    first = (time.thread_time() - t0) * 1e3
    cpu = []
    for _ in range(rounds):
        time.sleep(0.02)
        t = time.thread_time()
        rows = list(psutil.process_iter(ATTRS))
        cpu.append((time.thread_time() - t) * 1e3)
    cpu.sort()
    mean = sum(cpu) / len(cpu)
    pick = lambda p: cpu[min(len(cpu) - 1, round((len(cpu) - 1) * p))]
    print(f"psutil {psutil.__version__}  table of {len(rows)} processes: first read {first:.2} ms CPU; "
          f"steady read CPU ms: mean {mean:.2}, median {pick(0.5):.2}, p90 {pick(0.9):.2}, "
          f"max {pick(1.0):.2} over {rounds} rounds")


if __name__ == "__main__":
    main()

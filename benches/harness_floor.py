#!/usr/bin/env python3
"""plazo and the HTTP floors under the side-by-side harness's own ingest loader.

The side-by-side harness (`../shared/bench`, copied somewhere writable) measures plazo's
durable ingest with its own Python loader (`bench_plazo.put_invoices`: one asyncio thread,
64 keep-alive connections). This script drives that loader, unchanged, at three servers in
turn, round after round, so that their rates come from the same minutes of the same machine:

- `plazo`: the release binary, started as the harness starts it (`prepare_config`, the
  harness's 997 clients put first), on a fresh data directory each round;
- `floor+sled`: `cargo bench --bench load -- floor` (axum + raw sled, FLOOR_KEYS=4 keys of
  FLOOR_BYTES=105 bytes per request in four key regions, one batching thread, acknowledged
  after the flush that covers it: plazo's durability with none of its work);
- `floor`: the same axum server with no store at all (FLOOR_KEYS=0).

Usage (from the project root, after `cargo build --release` and
`cargo bench --bench load --no-run`):

    python3 benches/harness_floor.py <harness copy> <load bench binary> [rounds] [n] [plazo]

(`plazo` defaults to `target/release/plazo`; the configuration is the current directory's
`config/`, as the harness's `PLAZO_REPO`.)

It prints, per round and server, the rate, the latency and the loader's own CPU per PUT.
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

FLOOR_TOKEN = "bench-token-0123456789"  # benches/common/mod.rs TOKEN


def loader_run(b, port, n, prefix):
    base = time.time() + 365 * 86400
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    secs, lat, sts, errs = b.put_invoices(port, n, 64, prefix, lambda i: base + i * 0.25)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    lat.sort()
    ok = sts.get(201, 0)
    if ok != n or errs:
        raise SystemExit(f"port {port}: {ok} of {n} answered 201; statuses {sts}; errors {errs[:3]}")
    return {"rate": n / secs, "p50": lat[len(lat) // 2] * 1000,
            "p99": lat[int(len(lat) * 0.99)] * 1000, "loader_us": cpu / n * 1e6}


def floor_server(load_bin, port, keys):
    env = dict(os.environ, FLOOR_PORT=str(port), FLOOR_KEYS=str(keys), FLOOR_BYTES="105")
    p = subprocess.Popen([load_bin, "--bench", "floor"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("the floor server exited before serving")
        if line.startswith("http floor serving"):
            return p


def main():
    harness, load_bin = sys.argv[1], os.path.abspath(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    sys.path.insert(0, os.path.join(harness, "plazo"))
    import bench_plazo as b  # the harness's own loader and daemon set-up, unchanged

    repo = os.getcwd()
    plazo_bin = os.path.join(repo, "target", "release", "plazo")
    if len(sys.argv) > 5:
        plazo_bin = sys.argv[5]
    print(f"load average at start: {open('/proc/loadavg').read().strip()}")
    for r in range(1, rounds + 1):
        # plazo, as the harness runs it
        tmp = tempfile.mkdtemp(prefix="plazo-floor-")
        port = b.free_port()
        cfg, _data = b.prepare_config(repo, tmp, port, "http://127.0.0.1:9/remind", None)
        d = b.Daemon(plazo_bin, cfg, os.path.join(tmp, "daemon.log"), port)
        d.wait_ready(d.spawn())
        b.put_clients(port, 64)
        res = loader_run(b, port, n, "inv")
        d.proc.terminate()
        d.proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
        show(r, "plazo", res)
        # the two floors
        saved = b.TOKEN
        b.TOKEN = FLOOR_TOKEN
        for name, keys in (("floor+sled", 4), ("floor", 0)):
            port = b.free_port()
            p = floor_server(load_bin, port, keys)
            try:
                show(r, name, loader_run(b, port, n, f"inv{r}"))
            finally:
                p.kill()
                p.wait()
        b.TOKEN = saved
    print(f"load average at end: {open('/proc/loadavg').read().strip()}")


def show(r, name, res):
    print(f"round {r} {name:<10} {res['rate']:>7.0f} PUT/s  p50 {res['p50']:5.1f} ms  "
          f"p99 {res['p99']:5.1f} ms  loader {res['loader_us']:.0f} us/PUT", flush=True)


if __name__ == "__main__":
    main()

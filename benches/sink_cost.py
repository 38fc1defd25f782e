#!/usr/bin/env python3
"""What one POST costs the side-by-side harness's sink, by request shape and by rate.

In the harness's burst (`../shared/bench`, `side_by_side.sh`) the sink is one Python process
(aiohttp, one event loop) on the same 2 cores as the queue it measures, and its CPU per
message differs between the two sides. This script starts the harness's plazo sink
(`plazo/sink_plazo.py`, unchanged, in the harness's own venv) and sends it 20,000 POSTs of
each of four shapes from one asyncio client on 64 keep-alive connections, reading the sink's
CPU from `/proc` before and after each shape:

- `plazo-req`: plazo's webhook request as the sink receives it (plazo's headers, the body
  of a harness run's `sink_sample.json`);
- `plazo-body-node-hdr`: the same body with the two headers a Node `http.request` sends;
- `small-node`: a 67-byte body of the peer's shape with those two headers;
- `small-plazo-hdr`: that small body with plazo's headers.

Usage (a harness copy whose `plazo/venv` exists, i.e. after one `plazo/run.sh`):

    python3 benches/sink_cost.py <harness copy> <sink_sample.json> [rate]

`rate` paces the client to about that many POSTs/s in all (0, the default: as fast as the
sink answers). Each shape runs twice, in turn. It prints POSTs/s and the sink's µs of CPU
per POST.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")
N = 20000
CONC = 64

PLAZO_HEADERS = (
    b"content-type: application/json\r\n"
    b"webhook-id: msg_0b7967c2-fd18-8149-9f78-1975816870dc\r\n"
    b"webhook-timestamp: 1796662400\r\n"
    b"webhook-signature: v1,pBQNIYuSwdKU0Rw5bGqgtz0PcssKFU3rYor1mbBZPAs=\r\n"
    b"accept: */*\r\n"
    b"user-agent: plazo/0.1.0\r\n"
)
NODE_HEADERS = b"content-type: application/json\r\nConnection: keep-alive\r\n"
SMALL_BODY = json.dumps({"invoice_id": "fire-1", "client": "client-0001", "amount": 123.45}).encode()


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def request(headers, body, port):
    head = f"host: 127.0.0.1:{port}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    return b"POST /remind HTTP/1.1\r\n" + headers + head + body


async def send_all(port, req, rate):
    todo = iter(range(N))
    pause = CONC / rate if rate else 0

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in todo:
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if pause:
                await asyncio.sleep(pause)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONC)))
    return time.perf_counter() - t0


def main():
    harness, sample_path = sys.argv[1], sys.argv[2]
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    with open(sample_path) as f:
        body = json.dumps(json.load(f)["body"], ensure_ascii=False, separators=(",", ":")).encode()
    port_file = os.path.join(tempfile.mkdtemp(prefix="sink-cost-"), "port")
    sink = subprocess.Popen([os.path.join(harness, "plazo/venv/bin/python"),
                             os.path.join(harness, "plazo/sink_plazo.py"),
                             "--port-file", port_file, "--max-lifetime", "900"])
    try:
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            time.sleep(0.05)
        port = int(open(port_file).read())
        shapes = [
            ("plazo-req", request(PLAZO_HEADERS, body, port)),
            ("plazo-body-node-hdr", request(NODE_HEADERS, body, port)),
            ("small-node", request(NODE_HEADERS, SMALL_BODY, port)),
            ("small-plazo-hdr", request(PLAZO_HEADERS, SMALL_BODY, port)),
        ]
        for _ in range(2):
            for name, req in shapes:
                c0 = cpu_s(sink.pid)
                secs = asyncio.run(send_all(port, req, rate))
                used = cpu_s(sink.pid) - c0
                print(f"{name:22s} {N / secs:7.0f} POSTs/s; sink {used / N * 1e6:6.1f} µs per POST "
                      f"({len(req)} bytes on the wire)", flush=True)
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A slowloris client for bench/run.sh, against loopback only.

Holds COUNT connections to 127.0.0.1:PORT, each sending a request head one piece at a time
(`GET /healthz HTTP/1.1`, a Host line, then one more header byte every INTERVAL seconds) and
never finishing it. A connection the server closes is opened again, as an attacker would, so the
pressure stays at COUNT. Stops by itself after DURATION seconds, or earlier when the file STOP
appears.

Usage: slowloris.py PORT COUNT INTERVAL DURATION READY STOP
  READY is written (with the count) once COUNT connections are open at the same time.
Prints one line at the end:
  SLOWLORIS target=.. opened=.. closed_by_server=.. refused=.. open_at_end=.. max_open=..

Or: slowloris.py probe PORT COUNT
  A newcomer's view: COUNT requests to /healthz, one after another, each on a new connection
  (connect, send, read the whole answer), with a 10 s timeout each. Prints:
  PROBE requests=.. failures=.. p50_ms=.. p99_ms=.. max_ms=..
"""

import asyncio
import os
import resource
import sys
import time

HOST = "127.0.0.1"  # never anything but loopback


class Stats:
    def __init__(self):
        self.opened = 0
        self.closed_by_server = 0
        self.refused = 0
        self.open = 0
        self.max_open = 0


async def slow_client(port, interval, deadline, stats, stop):
    while time.monotonic() < deadline and not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            stats.refused += 1
            await asyncio.sleep(0.2)
            continue
        stats.opened += 1
        stats.open += 1
        stats.max_open = max(stats.max_open, stats.open)
        closed = False
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            await writer.drain()
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    # Any answer or EOF means the server gave up on this connection.
                    await asyncio.wait_for(reader.read(1024), timeout=interval)
                    closed = True
                    break
                except asyncio.TimeoutError:
                    pass
                writer.write(b"a")
                await writer.drain()
        except (ConnectionError, OSError):
            closed = True
        finally:
            stats.open -= 1
            if closed:
                stats.closed_by_server += 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


async def probe_once(port):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        if not answer.startswith(b"HTTP/1.1 200"):
            raise OSError(f"unexpected answer {answer[:40]!r}")
    finally:
        writer.close()


async def probe(port, count):
    times, failures = [], 0
    for _ in range(count):
        started = time.monotonic()
        try:
            await asyncio.wait_for(probe_once(port), timeout=10)
            times.append((time.monotonic() - started) * 1000)
        except (OSError, asyncio.TimeoutError):
            failures += 1
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] if times else float("nan")
    print(f"PROBE requests={count} failures={failures} p50_ms={pick(0.5):.2f} "
          f"p99_ms={pick(0.99):.2f} max_ms={(times[-1] if times else float('nan')):.2f}",
          flush=True)


async def main():
    if sys.argv[1] == "probe":
        await probe(int(sys.argv[2]), int(sys.argv[3]))
        return
    port, count, interval, duration = (int(sys.argv[1]), int(sys.argv[2]),
                                       float(sys.argv[3]), float(sys.argv[4]))
    ready_file, stop_file = sys.argv[5], sys.argv[6]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if count + 64 > hard:
        sys.exit(f"slowloris: {count} connections need a higher open-files limit than {hard}")
    stats = Stats()
    stop = asyncio.Event()
    deadline = time.monotonic() + duration
    tasks = []
    # Opened in batches, so the listen backlog is not the bottleneck being measured.
    for start in range(0, count, 200):
        for _ in range(min(200, count - start)):
            tasks.append(asyncio.create_task(slow_client(port, interval, deadline, stats, stop)))
        await asyncio.sleep(0.05)
    ready_written = False
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        if not ready_written and stats.open >= count:
            with open(ready_file, "w") as ready:
                ready.write(f"{stats.open}\n")
            ready_written = True
        await asyncio.sleep(0.1)
    open_at_end = stats.open
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"SLOWLORIS target={count} opened={stats.opened} closed_by_server={stats.closed_by_server} "
          f"refused={stats.refused} open_at_end={open_at_end} max_open={stats.max_open}", flush=True)


asyncio.run(main())

"""Measures the views of a running coordinator, for bench/scale/views: `coordinator status`,
`coordinator status --json` and GET /api/status (wall time of each, median of --repeat, and
bytes), then the coordinator's memory with --streams open /api/events streams (each opened after
the one before got its first event; stopped early when the coordinator's RSS passes --rss-cap-gib
or a stream waits longer than --event-timeout for its first event). The memory is the median of
VmRSS read every 0.1 s over --hold seconds without the streams, then over --hold seconds with
them all open (and read): the sweep goes on meanwhile, so single readings move. Prints one JSON
line.

    python3 bench/scale/views.py --label ours --pid PID --grpc 127.0.0.1:50051 \
        --http 127.0.0.1:8080 --cli target/release/coordinator
"""
import argparse
import asyncio
import http.client
import json
import statistics
import subprocess
import time


def rss(pid):
    """VmRSS of process `pid` in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cli(args, extra):
    """One `coordinator status` call: (ok, seconds, bytes of stdout, first line of stderr)."""
    started = time.perf_counter()
    try:
        p = subprocess.run([args.cli, "status", "--addr", args.grpc, *extra],
                           capture_output=True, timeout=args.call_timeout)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - started, 0, f"no answer in {args.call_timeout} s"
    seconds = time.perf_counter() - started
    err = p.stderr.decode(errors="replace").strip().splitlines()
    return p.returncode == 0, seconds, len(p.stdout), (err[0] if err else "")


def get(args, path):
    """One GET: (ok, seconds, bytes of the body, the status line if not 200)."""
    host, port = args.http.rsplit(":", 1)
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=args.call_timeout)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        return False, time.perf_counter() - started, 0, str(e)
    return r.status == 200, time.perf_counter() - started, len(body), f"{r.status} {r.reason}"


def repeat(n, call):
    """`call()` n times: the median time (ms), the bytes and errors of the calls."""
    runs = [call() for _ in range(n)]
    ok = [r for r in runs if r[0]]
    return {
        "calls": n,
        "ok": len(ok),
        "median_ms": round(statistics.median(r[1] for r in runs) * 1e3, 1),
        "bytes": max((r[2] for r in ok), default=0),
        "error": next((r[3] for r in runs if not r[0]), None),
    }


async def streams(args):
    """Opens event streams one after another; returns what the coordinator's memory did."""
    host, port = args.http.rsplit(":", 1)
    events = []
    tasks = []

    async def follow(i, reader):
        # Reads the stream to its end; notes when its first status event is whole (its data is
        # one line of JSON, ended by a blank line).
        seen, marked = b"", False
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            if events[i]:
                continue
            seen = seen[-16:] + chunk
            if not marked:
                at = seen.find(b"event: status\n")
                if at < 0:
                    continue
                marked, seen = True, seen[at + 14:]
            if b"\n\n" in seen:
                events[i] = 1

    window = []
    until = time.perf_counter() + args.hold
    while time.perf_counter() < until:
        window.append(rss(args.pid))
        await asyncio.sleep(0.1)
    before = statistics.median(window)
    peak = max(window)
    stopped = None
    writers = []
    started = time.perf_counter()
    for i in range(args.streams):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /api/events HTTP/1.1\r\nHost: {args.http}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        writers.append(writer)
        events.append(0)
        tasks.append(asyncio.create_task(follow(i, reader)))
        deadline = time.perf_counter() + args.event_timeout
        while events[i] == 0:
            peak = max(peak, rss(args.pid))
            if peak > args.rss_cap_gib * 2**30:
                stopped = f"the coordinator passed {args.rss_cap_gib} GiB"
                break
            if time.perf_counter() > deadline:
                stopped = f"stream {i + 1} got no event in {args.event_timeout} s"
                break
            await asyncio.sleep(0.05)
        if stopped:
            break
    opened_in = time.perf_counter() - started
    # Held open (and read) a while: what the streams cost while the sweep goes on.
    window = []
    until = time.perf_counter() + args.hold
    while time.perf_counter() < until:
        window.append(rss(args.pid))
        await asyncio.sleep(0.1)
    with_streams = statistics.median(window)
    peak = max(peak, *window)
    for t in tasks:
        t.cancel()
    for w in writers:
        w.close()
    return {
        "streams_asked": args.streams,
        "streams_opened": len(writers),
        "streams_with_an_event": sum(events),
        "opened_in_s": round(opened_in, 1),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_with_streams_mib": round(with_streams / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        "stopped": stopped,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--label", required=True)
    p.add_argument("--pid", required=True, help="the coordinator's process id")
    p.add_argument("--grpc", required=True)
    p.add_argument("--http", required=True)
    p.add_argument("--cli", required=True, help="the coordinator binary whose `status` to run")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument("--call-timeout", type=float, default=120.0)
    p.add_argument("--event-timeout", type=float, default=120.0)
    p.add_argument("--rss-cap-gib", type=float, default=6.0)
    args = p.parse_args()

    r = {"label": args.label}
    r["status"] = repeat(args.repeat, lambda: cli(args, []))
    r["status_json"] = repeat(args.repeat, lambda: cli(args, ["--json"]))
    r["api_status"] = repeat(args.repeat, lambda: get(args, "/api/status"))
    r["api_status_page"] = repeat(args.repeat, lambda: get(args, "/api/status?state=succeeded&limit=500"))
    r["events"] = asyncio.run(streams(args))
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()

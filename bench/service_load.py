"""HTTP load on the feed: Debian's ``wrk`` against a real ``intentrank serve`` on loopback.

``wrk`` (closed loop: ``--connections`` requests in flight over ``--threads`` threads; it has no fixed
request rate, unlike wrk2, so the achieved rate is reported next to the 200/s the issue asks for) posts
``/v1/feed`` bodies from a Lua script: each request a new user id and session, so every request is a
first page ranked from ``candidates.total`` = 1,000 candidates into 20 items. The server is
bench/service_server.py's (47,290 synthetic items; the default ranker architecture, or ``--tiny-model``).
With ``--swap-every S`` a thread calls ``POST /v1/models/reload`` (the served checkpoint loaded again and
published as a new version) every S seconds during the run: requests across swaps must not fail.
Prints JSON: achieved requests/s, latency p50/p90/p99 (wrk's --latency distribution), socket errors,
non-2xx responses, swaps done, the machine load, and the server's CPU time per request (user + system of
all its threads over the run / requests: what a request costs, robust to other load on the machine;
2 cores sustain at most about 2,000 / that many requests/s).

``--rate R`` paces the closed loop (each connection waits ``connections / R`` s minus the warm-up's median
latency between requests, wrk's Lua ``delay``), so the server sees about R requests/s instead of as many
as it can take; the achieved rate is what counts. ``--service JSON`` passes service settings (e.g. two-stage
scoring).

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_load.py [--seconds 60] [--connections 8]
[--threads 2] [--rate 200] [--swap-every 5] [--tiny-model] [--service '{"scoring": {"prerank": 200}}']``.
Issue 13's target: 200 req/s for 60 s, p99 ≤ 30 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from service_server import TOKEN, start, stop

LUA = r"""
local counter = 0
local tid = 0
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
init = function(args) counter = 0 end
delay = function() return DELAY_MS end
request = function()
  counter = counter + 1
  local user = (tid * 1000003 + counter) %% 1000000
  local body = string.format('{"user_id": %d, "session_id": "w%d-%d"}', user, tid, counter)
  return wrk.format("POST", "/v1/feed", {["Content-Type"] = "application/json"}, body)
end
"""

SOCKET_ERRORS = ("connect", "read", "write", "timeout")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk's duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, object]:
    """Figures of ``wrk --latency`` output."""
    lat = {f"p{q}_ms": _ms(v) for q, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(total.group(1)) if total else None,
        "requests_per_s": float(rps.group(1)) if rps else None,
        **lat,
        "socket_errors": dict(zip(SOCKET_ERRORS, map(int, sock.groups()) if sock else [0] * 4, strict=True)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads; Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each live thread of process ``pid`` (Linux /proc), by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--swap-every", type=float, default=0.0, help="Seconds between model reloads (0: none).")
    ap.add_argument("--tiny-model", action="store_true")
    ap.add_argument(
        "--rate", type=float, default=0.0,
        help="Pace the requests near this many per second: each connection waits connections/rate s minus "
        "the warm-up's median latency before its next request (wrk has no fixed-rate mode; 0: closed loop).",
    )  # fmt: skip
    ap.add_argument(
        "--service", default="{}", help='Service settings as JSON, e.g. \'{"scoring": {"prerank": 200}}\'.'
    )
    ap.add_argument("--items", type=int, default=47_290)
    ap.add_argument(
        "--profile", type=Path, default=None,
        help="Sample the server with py-spy during the run into this file (collapsed stacks, one per line "
        "with its count; threads apart; idle waits left out).",
    )  # fmt: skip
    args = ap.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        url, proc = start(tmpd, json.loads(args.service), items=args.items, tiny=args.tiny_model)
        swaps: list[int] = []
        swap_errors: list[str] = []
        stop_swaps = threading.Event()
        try:
            with httpx.Client(base_url=url, timeout=60) as c:  # warm-up: item features encoded once
                warm = []
                for k in range(25):
                    t = time.perf_counter()
                    c.post("/v1/feed", json={"user_id": k, "session_id": "warm"}).raise_for_status()
                    warm.append((time.perf_counter() - t) * 1e3)
            warm_ms = sorted(warm[5:])[len(warm[5:]) // 2]
            delay_ms = max(0, round(1e3 * args.connections / args.rate - warm_ms)) if args.rate > 0 else 0
            (tmpd / "feed.lua").write_text(LUA.replace("%%", "%").replace("DELAY_MS", str(delay_ms)))

            def swapper() -> None:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                with httpx.Client(base_url=url, timeout=60, headers=headers) as c:
                    while not stop_swaps.wait(args.swap_every):
                        r = c.post("/v1/models/reload")
                        if r.status_code == 200:
                            swaps.append(r.json()["version"])
                        else:
                            swap_errors.append(f"{r.status_code}: {r.text[:200]}")

            swap_thread = threading.Thread(target=swapper, daemon=True)
            if args.swap_every > 0:
                swap_thread.start()
            cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                   "--timeout", "10s", "-s", str(tmpd / "feed.lua"), url]  # fmt: skip
            spy = None
            if args.profile is not None:
                spy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                spy_cmd = [spy_exe, "record", "--pid", str(proc.pid), "--format", "raw", "--threads",
                           "--rate", "250", "--duration", str(max(1, args.seconds - 1)),
                           "--output", str(args.profile), "--nonblocking"]  # fmt: skip
                spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0, c0, th0 = time.time(), cpu_s(proc.pid), thread_cpu_s(proc.pid)
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            th1 = thread_cpu_s(proc.pid)
            if spy is not None:
                spy.wait(60)
            server_cpu = cpu_s(proc.pid) - c0
            stop_swaps.set()
            if args.swap_every > 0:
                swap_thread.join(60)
            load = os.getloadavg()
            with httpx.Client(base_url=url, timeout=60) as c:
                version = c.get("/v1/models").json()["version"]
        finally:
            stop(proc)
    if run.returncode != 0:
        raise SystemExit(f"wrk failed: {run.stderr[-1000:]}")
    out = {
        "tool": "wrk " + " ".join(cmd[1:5]) + " -s feed.lua (POST /v1/feed, a new user and session each)",
        "model": "tiny" if args.tiny_model else "default",
        "service": json.loads(args.service),
        "target_rate": args.rate or None,
        "delay_ms_per_connection": delay_ms,
        "warmup_median_ms": round(warm_ms, 2),
        "candidates": 1000,
        "started_unix": round(t0),
        **(figures := parse_wrk(run.stdout)),
        # what a request costs the server's cores (load-robust: CPU time, not waits on a shared machine)
        "server_cpu_ms_per_request": round(1e3 * server_cpu / (nreq := max(1, int(figures["requests"] or 0))),
                                           2),
        # of which the main thread's (the event loop: HTTP parsing, routing, validation, JSON, metrics); the
        # rest is the feed threads' (the slate itself), the store's and torch's
        "server_cpu_ms_per_request_event_loop": round(1e3 * (th1[proc.pid] - th0[proc.pid]) / nreq, 2),
        "server_cpu_ms_per_request_by_thread": sorted(
            (round(1e3 * (c - th0.get(t, 0.0)) / nreq, 2) for t, c in th1.items() if c > th0.get(t, 0.0)),
            reverse=True,
        ),
        "swap_every_s": args.swap_every,
        "swaps": len(swaps),
        "swap_errors": swap_errors[:3],
        "model_version_at_end": version,
        "load_average": load,
        "cpus": os.cpu_count(),
        "wrk_output": run.stdout,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

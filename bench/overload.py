"""Overload: far more connections than the workers serve at once; the excess is refused fast.

Run from the project root::

    .venv/bin/python bench/overload.py [--duration 60] [--connections 200] [--workers 2]
                                       [--backends postgresql]

Per backend it seeds the database as bench/portal_page.py does, serves the app with uvicorn
(``--workers`` processes, as deployed), opens the measured customer's link, and has wrk
request the home page over ``--connections`` keep-alive connections for ``--duration``
seconds. It prints the longest wait, p50 and p99, how many answers were pages (200), how
many were refused (503, with Retry-After) and anything else, and how many requests waited
more than 2 and 10 seconds. Goal: nobody waits more than 2 s, and every answer is a page or
a 503. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal_page import (
    SESSION_COOKIE,
    SetupError,
    choose_backends,
    free_port,
    fresh_database,
    open_link,
    seed,
    serve,
    server_env,
)

from portal.settings import load_settings

GOAL_MAX_WAIT_MS = 2000.0

# Counts the answers by status in each wrk thread, then reports them with the latency
# figures, including how many waited beyond a few thresholds (read off the histogram).
COUNTING_SCRIPT = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local function share_above(latency, limit_us)
  if latency.max <= limit_us then return 0 end
  local low, high = 0.0, 100.0
  for _ = 1, 40 do
    local middle = (low + high) / 2
    if latency:percentile(middle) > limit_us then high = middle else low = middle end
  end
  return (100.0 - high) / 100.0
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("relance status %d %d\\n", status, count))
  end
  io.write(string.format("relance latency max_us %d p50_us %d p99_us %d\\n",
    latency.max, latency:percentile(50), latency:percentile(99)))
  io.write(string.format("relance above 2s %.9f 10s %.9f\\n",
    share_above(latency, 2000000), share_above(latency, 10000000)))
  io.write(string.format("relance errors connect %d read %d write %d timeout %d\\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


@dataclass
class OverloadResult:
    backend: str
    seconds: float
    statuses: dict[int, int]
    max_ms: float
    p50_ms: float
    p99_ms: float
    over_2s: int
    over_10s: int
    errors: dict[str, int]

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())

    def goals(self) -> list[tuple[str, bool]]:
        only_pages_or_refusals = set(self.statuses) <= {200, 503} and not any(self.errors.values())
        return [
            (f"max wait < {GOAL_MAX_WAIT_MS / 1000:g} s", self.max_ms < GOAL_MAX_WAIT_MS),
            ("every answer a page (200) or a refusal (503)", only_pages_or_refusals),
        ]

    def summary(self) -> str:
        others = {s: n for s, n in self.statuses.items() if s not in (200, 503)}
        errors = ", ".join(f"{k} {v}" for k, v in self.errors.items() if v) or "none"
        return (
            f"{self.answers} answers in {self.seconds:g} s: 200 x {self.statuses.get(200, 0)}, "
            f"503 x {self.statuses.get(503, 0)}"
            f"{', other ' + str(others) if others else ''}; socket errors: {errors}; "
            f"wait max {self.max_ms:.0f} ms, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms; "
            f"over 2 s: ~{self.over_2s}, over 10 s: ~{self.over_10s}"
        )


def parse(output: str, backend: str, seconds: float) -> OverloadResult:
    statuses = {
        int(s): int(n) for s, n in re.findall(r"^relance status (\d+) (\d+)$", output, re.M)
    }
    latency = re.search(r"^relance latency max_us (\d+) p50_us (\d+) p99_us (\d+)$", output, re.M)
    above = re.search(r"^relance above 2s ([\d.]+) 10s ([\d.]+)$", output, re.M)
    errors = re.search(
        r"^relance errors connect (\d+) read (\d+) write (\d+) timeout (\d+)$", output, re.M
    )
    if not (statuses and latency and above and errors):
        raise SetupError(f"could not read wrk's output:\n{output}")
    answers = sum(statuses.values())
    return OverloadResult(
        backend,
        seconds,
        statuses,
        int(latency.group(1)) / 1000,
        int(latency.group(2)) / 1000,
        int(latency.group(3)) / 1000,
        round(float(above.group(1)) * answers),
        round(float(above.group(2)) * answers),
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)),
    )


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> OverloadResult:
    print(f"\n== {backend} ==", flush=True)
    port = free_port()
    with fresh_database(backend, workdir) as url:
        settings_env = {
            "PORTAL_DATABASE_URL": url,
            "PORTAL_ENVIRONMENT": "development",
            "PORTAL_SECRET_KEYS": secrets.token_urlsafe(36),
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
        }
        if args.max_in_flight is not None:
            settings_env["PORTAL_MAX_REQUESTS_IN_FLIGHT"] = str(args.max_in_flight)
        link, _other = seed(url, load_settings(settings_env), args.customers, 5)
        extra = ["--workers", str(args.workers)]
        with serve("app", [args.app_factory], port, server_env(settings_env), workdir, extra):
            cookie = open_link(port, link)
            script = workdir / "count-statuses.lua"
            script.write_text(COUNTING_SCRIPT)
            command = [
                args.wrk,
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.duration:g}s",
                "--timeout",
                f"{args.timeout:g}s",
                "-s",
                str(script),
                "-H",
                f"Cookie: {SESSION_COOKIE}={cookie}",
                f"http://127.0.0.1:{port}/",
            ]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=args.duration + args.timeout + 60,
                check=False,
            )
            if done.returncode != 0:
                raise SetupError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse(done.stdout, backend, args.duration)
    print(f"  {result.summary()}", flush=True)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (60)")
    parser.add_argument("--connections", type=int, default=200, help="wrk connections (200)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (2)")
    parser.add_argument(
        "--timeout", type=float, default=30, help="seconds before wrk gives up on a request (30)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="PORTAL_MAX_REQUESTS_IN_FLIGHT for the app (default: the app's default)",
    )
    parser.add_argument("--customers", type=int, default=2000, help="background customers")
    parser.add_argument(
        "--app-factory",
        default="portal.web.app:asgi",
        help="uvicorn factory of the app under test (as in portal_page.py)",
    )
    parser.add_argument("--backends", default="postgresql", help="comma-separated (postgresql)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path of wrk")
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(args.wrk) is None:
        print(f"setup failed: wrk not found ({args.wrk})", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    results = []
    try:
        backends, skipped = choose_backends(args.backends)
        with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
            for backend in backends:
                results.append(run_backend(backend, args, Path(tmp)))
    except SetupError as error:
        print(f"\nsetup failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped and databases dropped", file=sys.stderr)
        return 130
    print(
        f"\nOverload: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s on /, "
        f"uvicorn {args.workers} workers, {os.cpu_count()} CPUs shared with wrk"
    )
    for r in results:
        print(f"  {r.backend:<10} {r.summary()}")
        verdicts = "   ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in r.goals())
        print(f"  {'':<10} {verdicts}")
    for name in skipped:
        print(f"  {name:<10} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

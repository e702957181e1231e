#!/usr/bin/env python3
"""Summarises `perf script` output of the server under a warm load (benches/warm_path.sh):
for named stages of a request, the share of samples whose stack holds them (inclusive),
and, for the hot leaf functions (memory copies, malloc/free), which stage called them.

Usage: perf script -i perf.data | perf_stages.py
"""
import re
import sys
from collections import Counter

# Stage name -> regular expression searched in a frame's symbol with its generic arguments
# removed (they name other types: only the function's own path counts); the first
# matching stage, from the leaf upwards, is the "caller stage" of a leaf.
STAGES = [
    ("metrics (registry, labels)", r"metrics::|metrics_exporter_prometheus|metrics_util"),
    ("request id, telemetry::track", r"planscape::telemetry::"),
    ("tile service lookup (moka)", r"moka::|planscape::tiles::TileService::tile|planscape::cache::"),
    ("usage analytics count", r"planscape::analytics::"),
    ("tile handler, response headers", r"planscape::http::tiles::"),
    ("axum router, extractors", r"axum::routing|axum::extract|matchit|axum::handler|axum_core::extract"),
    ("CORS layer", r"tower_http::cors|planscape::http::tile_hits::add_cors"),
    ("hyper HTTP/1 parse and encode", r"hyper::proto::h1::role|httparse|hyper::proto::h1::Http1Transaction"),
    ("hyper write (writev; or sendmsg + sendfile)", r"hyper::proto::h1::io::Buffered::poll_flush|planscape::http::zero_copy::|__GI___writev|writev|sendfile|sendmsg"),
    ("hyper read", r"hyper::proto::h1::io::Buffered<T,B>::poll_read_from_io|__libc_recv|recv"),
    ("tokio scheduler, epoll", r"epoll_wait|tokio::runtime::io::driver|tokio::runtime::scheduler::multi_thread::worker::Context::park"),
]
LEAVES = [
    ("memory copy", r"memmove|memcpy|_copy_from_iter|_copy_to_iter|copy_user"),
    ("malloc/free", r"malloc|_int_free|cfree|free$|realloc|malloc_consolidate"),
]

def bare(symbol):
    """The symbol without its offset, object file and generic arguments."""
    symbol = re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", symbol)
    previous = None
    while previous != symbol:
        previous, symbol = symbol, re.sub(r"<[^<>]*>", "", symbol)
    return symbol


def samples(stream):
    stack = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            stack.append(bare(parts[1] if len(parts) > 1 else parts[0]))
    if stack:
        yield stack

total = 0
inclusive = Counter()
leaf_callers = Counter()
leaf_totals = Counter()
for stack in samples(sys.stdin):
    total += 1
    seen = set()
    for frame in stack:
        for name, pattern in STAGES:
            if name not in seen and re.search(pattern, frame):
                seen.add(name)
    for name in seen:
        inclusive[name] += 1
    leaf = stack[0]
    for lname, lpattern in LEAVES:
        if re.search(lpattern, leaf):
            leaf_totals[lname] += 1
            caller = next((n for f in stack[1:] for n, p in STAGES if re.search(p, f)), "other")
            leaf_callers[(lname, caller)] += 1
            break

print(f"samples: {total}")
print("| stage (inclusive) | share of server CPU |")
print("| --- | --- |")
for name, _ in STAGES:
    print(f"| {name} | {100.0 * inclusive[name] / max(total, 1):.1f} % |")
print()
print("| hot leaf | share | called from (share of all samples) |")
print("| --- | --- | --- |")
for lname, _ in LEAVES:
    callers = sorted(((c, n) for (l, n), c in leaf_callers.items() if l == lname), reverse=True)
    text = ", ".join(f"{n} {100.0 * c / max(total, 1):.1f} %" for c, n in callers[:4])
    print(f"| {lname} | {100.0 * leaf_totals[lname] / max(total, 1):.1f} % | {text} |")

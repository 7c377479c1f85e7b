"""Groups a `perf report --no-children --sort dso,symbol` listing (stdin) by subsystem: where the
coordinator's CPU time goes. Used by bench/scale/profile."""
import re
import sys

GROUPS = [
    ("SQLite (commits, WAL)", r"sqlite3|wal[A-Z]|pcache|btree|Btree|vdbe|Vdbe|pager|Pager|sqlite"),
    ("HTTP/2 and gRPC (h2, hyper, tonic, prost)", r"h2::|hyper|tonic|prost|http::|tower|axum|bytes::"),
    ("tokio (scheduling, channels, timers)", r"tokio|mio::|parking_lot|futures"),
    ("memory allocation", r"\bmi_|_mi_|mimalloc|_int_malloc|_int_free|\bmalloc|cfree|realloc|unlink_chunk|tcache"),
    ("our code (state machine, actor, service, auth)", r"sweep_|hmac|sha2"),
    ("JSON (results.json, rows)", r"serde|zmij|ryu|itoa"),
    ("kernel: network (loopback TCP)", r"tcp_|ip_|__dev|net_|sock|skb|loopback|napi|softirq|inet"),
    ("kernel: files and fsync", r"ext4|jbd2|fsync|folio|filemap|page_cache|block_|mark_buffer|copy_to_iter|blk|bio_|iowrite"),
    ("kernel: scheduling, futex, syscalls", r"futex|schedule|switch|wake|syscall|irq|epoll|sched|entry_SYSCALL|do_syscall|spin_"),
    ("libc (memcpy, futex wrappers, ...)", r"libc|memmove|memcpy|memset|memcmp|pthread"),
]
totals = {name: 0.0 for name, _ in GROUPS}
other = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    text = f"{dso} {sym}"
    for name, pattern in GROUPS:
        if re.search(pattern, text):
            totals[name] += pct
            break
    else:
        other += pct
print("| where | share of the coordinator's CPU samples |")
print("|---|---:|")
for name, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"| {name} | {pct:.1f} % |")
print(f"| other | {other:.1f} % |")

"""One JSON line describing where and with what the anchors ran."""
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({
    "machine": platform.node(),
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "mem_gib": round(mem / 2**20, 1),
    "kernel": platform.release(),
    "python": platform.python_version(),
    "ray": version("ray"),
    "optuna": version("optuna"),
    "sqlalchemy": version("sqlalchemy"),
    "sweep_commit": commit,
    "argv": sys.argv[1:],
}))

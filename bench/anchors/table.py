"""Prints the anchors' JSON lines (bench/anchors/run) as one Markdown table."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
env = next((r for r in rows if "machine" in r), None)
if env:
    print(f"{env['date']}: {env['nproc']} x {env['cpu']}, {env['mem_gib']} GiB, Linux {env['kernel']}; "
          f"Python {env['python']}, Ray {env['ray']}, Optuna {env['optuna']} (SQLAlchemy "
          f"{env['sqlalchemy']}), sweep {env['sweep_commit']}\n")
print("| tool | variant | trials | epochs | in parallel | wall s | overhead per trial (ms) | with start-up s |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if "tool" in r:
        print(f"| {r['tool']} {r['version']} | {r['variant']} | {r['trials']} | {r['epochs']} | {r['parallel']} "
              f"| {r['wall_s']:.2f} | {r['per_trial_ms']:.1f} | {r['total_s']:.2f} |")

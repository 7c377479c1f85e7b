"""Ray Tune: a grid search of --trials trivial trials with default settings (one trial per CPU,
a fresh actor per trial), or with reuse_actors=True. Times Tuner.fit(), and ray.init() + fit()."""
import os
import shutil
import time

import ray
from ray import tune

from common import arguments, record, trivial

p = arguments(__doc__)
p.add_argument("--reuse-actors", action="store_true")
args = p.parse_args()
epochs = args.epochs


def trainable(config):
    for epoch, loss, accuracy in trivial(config["x"], epochs):
        tune.report({"epoch": epoch, "loss": loss, "accuracy": accuracy})


storage = os.path.join(args.tmp, "ray_results")
shutil.rmtree(storage, ignore_errors=True)

start = time.perf_counter()
ray.init()
cpus = int(ray.cluster_resources().get("CPU", 0))
tuner = tune.Tuner(
    trainable,
    param_space={"x": tune.grid_search(list(range(args.trials)))},
    tune_config=tune.TuneConfig(metric="accuracy", mode="max", reuse_actors=args.reuse_actors),
    # Only where it writes (instead of ~/ray_results); everything else is Ray's default.
    run_config=tune.RunConfig(storage_path=storage),
)
fit = time.perf_counter()
results = tuner.fit()
end = time.perf_counter()
ray.shutdown()

ok = sum(1 for r in results if r.error is None and r.metrics.get("epoch") == epochs)
assert ok == args.trials, f"only {ok} of {args.trials} trials finished all {epochs} epochs"
record(
    args.jsonl, "ray-tune", "reuse_actors" if args.reuse_actors else "default", ray.__version__,
    args.trials, end - fit, end - start, epochs=epochs, parallel=cpus, succeeded=ok,
)

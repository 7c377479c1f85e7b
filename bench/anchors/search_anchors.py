"""Issue 17's anchors: Ray Tune's ASHAScheduler, Optuna's SuccessiveHalvingPruner and Optuna's
TPESampler on the same recorded Fashion-MNIST runs our `coordinator replay` and `search-bench`
read (bench/anchors/stopping runs all of them and prints the table).

  stopping: each recorded trial (a configuration and a seed) is one trial of the tool, in the
    grid's order, reporting its recorded test accuracy after every epoch; the tool stops it or
    not. Ray Tune: ASHAScheduler(grace_period, reduction_factor, max_t), WORKERS trials at once
    (ray.init(num_cpus=WORKERS), one CPU each), each epoch sleeping its recorded seconds times
    --time-scale so the trials interleave as on the workers. Optuna: SuccessiveHalvingPruner
    (min_resource, reduction_factor), one trial after another (n_jobs=1). Neither tool knows
    that seeds are one configuration: each judges each trial alone. What each "finds" is the
    configuration of its best trial that trained to the last epoch; it is scored by that
    configuration's mean over its seeds in the full sweep, as ours is.
  tpe: TPESampler(seed=s) (its defaults: 10 random start-up trials, 24 candidates), --tpe
    trials per seed on the categorical space of the recorded configurations, each trial a
    lookup of the recorded final test accuracy. Optuna may propose a configuration twice; a
    repeat counts as a trial, as it would cost one. With --tpe-workers W > 1, W trials are in
    flight at once (ask/tell; the oldest is told first, then one more asked), as W workers of
    one study would have them: Optuna's TPE fits on the finished ones (its default, no
    constant liar).

Prints one JSON object per line: {"tool": ..., ...}.
"""

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def config_key(params):
    return json.dumps({k: v for k, v in sorted(params.items()) if k != "seed"})


def recorded(results, experiment):
    trials = []
    for t in results["trials"]:
        if t["experiment"] != experiment or not t["epochs"]:
            continue
        trials.append(
            {
                "name": t["name"],
                "config": config_key(t["params"]),
                "values": [e["test_accuracy"] for e in t["epochs"]],
                "seconds": [e["seconds"] if e["seconds"] is not None else 1.0 for e in t["epochs"]],
            }
        )
    return trials


def seed_means(trials):
    sums = {}
    for t in trials:
        s = sums.setdefault(t["config"], [])
        s.append(t["values"][-1])
    return {k: sum(v) / len(v) for k, v in sums.items()}


def scored(tool, trials, means, trained, picked, seconds):
    full = sum(len(t["values"]) for t in trials)
    best = max(means.values())
    ranking = sorted(means.values(), reverse=True)
    value = means[picked] if picked is not None else None
    return {
        "tool": tool,
        "epochs_trained": trained,
        "epochs_full": full,
        "epochs_percent": 100.0 * trained / full,
        "found": value,
        "best_full": best,
        "gap": None if value is None else best - value,
        "rank": None if value is None else ranking.index(value) + 1,
        "configurations": len(means),
        "seconds": seconds,
    }


def ray_asha(trials, means, args):
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    def trainable(config, data):
        t = data[config["index"]]
        for e, v in enumerate(t["values"]):
            time.sleep(t["seconds"][e] * config["scale"])
            tune.report({"test_accuracy": v, "epoch": e + 1})

    epochs = max(len(t["values"]) for t in trials)
    start = time.monotonic()
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR")
    storage = tempfile.mkdtemp(prefix="ray-asha-")
    tuner = tune.Tuner(
        tune.with_parameters(trainable, data=trials),
        param_space={"index": tune.grid_search(list(range(len(trials)))), "scale": args.time_scale},
        tune_config=tune.TuneConfig(
            metric="test_accuracy",
            mode="max",
            scheduler=ASHAScheduler(
                time_attr="training_iteration",
                max_t=epochs,
                grace_period=args.min_epochs,
                reduction_factor=args.reduction,
            ),
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    grid = tuner.fit()
    seconds = time.monotonic() - start
    ray.shutdown()
    trained = 0
    best = None
    for r in grid:
        m = r.metrics or {}
        n = m.get("training_iteration", 0)
        trained += n
        i = r.config["index"]
        if n == len(trials[i]["values"]):
            v = trials[i]["values"][-1]
            if best is None or v > best[0]:
                best = (v, trials[i]["config"])
    return scored("ray-tune-asha", trials, means, trained, best and best[1], seconds)


def optuna_sha(trials, means, args):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.monotonic()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=args.min_epochs, reduction_factor=args.reduction
        ),
    )
    for i in range(len(trials)):
        study.enqueue_trial({"index": i})
    trained = [0]

    def objective(trial):
        t = trials[trial.suggest_int("index", 0, len(trials) - 1)]
        for e, v in enumerate(t["values"]):
            trial.report(v, e + 1)
            trained[0] += 1
            if trial.should_prune():
                raise optuna.TrialPruned()
        return t["values"][-1]

    study.optimize(objective, n_trials=len(trials))
    seconds = time.monotonic() - start
    best = trials[study.best_trial.params["index"]]["config"]
    return scored("optuna-sha", trials, means, trained[0], best, seconds)


def optuna_tpe(results, experiment, args):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keys = ["learning_rate", "hidden_width", "hidden_layers", "activation"]
    lookup = {}
    choices = {k: [] for k in keys}
    for t in results["trials"]:
        if t["experiment"] != experiment or t["test_accuracy"] is None:
            continue
        point = tuple(t["params"][k] for k in keys)
        for k, v in zip(keys, point):
            if v not in choices[k]:
                choices[k].append(v)
        lookup[point] = t["test_accuracy"]
    for seed in range(args.seeds):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        in_flight = []
        for _ in range(args.tpe):
            trial = study.ask()
            in_flight.append((trial, lookup[tuple(trial.suggest_categorical(k, choices[k]) for k in keys)]))
            if len(in_flight) >= args.tpe_workers:
                study.tell(*in_flight.pop(0))
        for told in in_flight:
            study.tell(*told)
        distinct = len({tuple(t.params[k] for k in keys) for t in study.trials})
        print(
            json.dumps(
                {
                    "tool": "optuna-tpe",
                    "seed": seed,
                    "space": len(lookup),
                    "tpe_trials": args.tpe,
                    "workers": args.tpe_workers,
                    "tpe_best": study.best_value,
                    "distinct": distinct,
                }
            ),
            flush=True,
        )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curves", help="the full sweep's results.json(.gz)")
    p.add_argument("--curves-experiment", default="mlp")
    p.add_argument("--space", help="the space's results.json(.gz)")
    p.add_argument("--space-experiment", default="space")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--reduction", type=int, default=3)
    p.add_argument("--time-scale", type=float, default=0.02)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--tpe", type=int, default=48)
    p.add_argument("--tpe-workers", type=int, default=1)
    p.add_argument("--tools", default="ray optuna tpe")
    args = p.parse_args()
    tools = args.tools.split()
    if args.curves:
        trials = recorded(load(args.curves), args.curves_experiment)
        means = seed_means(trials)
        if "optuna" in tools:
            print(json.dumps(optuna_sha(trials, means, args)), flush=True)
        if "ray" in tools:
            print(json.dumps(ray_asha(trials, means, args)), flush=True)
    if args.space and "tpe" in tools:
        optuna_tpe(load(args.space), args.space_experiment, args)


if __name__ == "__main__":
    sys.exit(main())

"""Optuna: --trials trivial trials with GridSampler over the same values, in one process
(n_jobs=1), with in-memory storage or a fresh SQLite file. Times optimize(), and
create_study() + optimize()."""
import os
import time

import optuna

from common import arguments, record, trivial

p = arguments(__doc__)
p.add_argument("--storage", choices=["memory", "sqlite"], default="memory")
args = p.parse_args()
epochs = args.epochs


def objective(trial):
    x = trial.suggest_int("x", 0, args.trials - 1)
    for epoch, loss, accuracy in trivial(x, epochs):
        trial.report(loss, epoch)
    return accuracy


storage = None
if args.storage == "sqlite":
    path = os.path.join(args.tmp, "optuna.db")
    if os.path.exists(path):
        os.remove(path)
    storage = f"sqlite:///{path}"

start = time.perf_counter()
sampler = optuna.samplers.GridSampler({"x": list(range(args.trials))})
study = optuna.create_study(storage=storage, sampler=sampler, direction="maximize")
run = time.perf_counter()
study.optimize(objective, n_trials=args.trials)
end = time.perf_counter()

done = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
xs = {t.params["x"] for t in done}
assert len(done) == args.trials and len(xs) == args.trials, f"{len(done)} trials, {len(xs)} distinct"
record(
    args.jsonl, "optuna", f"grid, {args.storage}", optuna.__version__,
    args.trials, end - run, end - start, epochs=epochs, parallel=1, succeeded=len(done),
)

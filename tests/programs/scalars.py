"""A program trial that reports scalars of its own through the client library, for the
end-to-end tests: each epoch, `lr_scaled` (the epoch times the learning rate) and `val_loss`
(0.5 / epoch) beside its test accuracy.
"""

import sweep

trial = sweep.trial()
lr = trial.params["lr"]
for epoch in range(1, trial.epochs + 1):
    trial.report(epoch, test_accuracy=10.0 * epoch, train_loss=1.0 / epoch,
                 lr_scaled=epoch * lr, val_loss=0.5 / epoch)

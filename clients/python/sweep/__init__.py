"""The client library of a sweep program trial (issue 19), standard library only.

A training program run by a sweep worker calls ``sweep.trial()`` once, then reports each epoch,
asks whether to stop, and marks checkpoints::

    import sweep

    trial = sweep.trial()
    lr = trial.params["learning_rate"]
    for epoch in range(trial.resume_epoch + 1, trial.epochs + 1):
        ...  # train one epoch, evaluate
        if trial.report(epoch, test_accuracy=acc, train_loss=loss):
            break  # early stopping, a cancel or a lost lease: stop now
        torch.save(state, os.path.join(trial.checkpoint_dir(), "state.pt"))
        trial.checkpoint(epoch)
    trial.save_weights("model.pt")

It talks to the worker over the Unix socket named in ``SWEEP_SOCKET``: one JSON object per line,
one JSON answer per line (see the repository's ARCHITECTURE.md, "The program channel"). Run
outside a sweep (no ``SWEEP_SOCKET``), it still works: the hyperparameters are the defaults given
to ``trial()``, reports are printed to stderr, and nothing asks the program to stop.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import time

__all__ = ["SweepError", "Trial", "trial"]

# The worker refuses longer request lines.
_MAX_REQUEST = 1 << 20


class SweepError(RuntimeError):
    """The worker refused a request (the trial then fails with this message), or is gone."""


def trial(defaults=None):
    """The running trial. ``defaults``: the hyperparameters outside a sweep (and for keys the
    sweep does not set)."""
    return Trial(defaults)


class Trial:
    """One attempt of a trial: its hyperparameters and its channel to the worker."""

    def __init__(self, defaults=None):
        self.params = dict(defaults or {})
        path = os.environ.get("SWEEP_PARAMS")
        if path:
            with open(path, encoding="utf-8") as f:
                self.params.update(json.load(f))
        #: The trial's epochs (``epochs`` in the grid); 0 when not run by a sweep and no default.
        self.epochs = int(os.environ.get("SWEEP_EPOCHS", self.params.get("epochs", 0)))
        #: The trial's seed.
        self.seed = int(os.environ.get("SWEEP_SEED", self.params.get("seed", 0)))
        self._resume_dir = os.environ.get("SWEEP_RESUME_DIR") or None
        self._checkpoint_dir = os.environ.get("SWEEP_CHECKPOINT_DIR")
        self._weights = os.environ.get("SWEEP_WEIGHTS")
        self._last = time.monotonic()
        self._sock = None
        self._file = None
        self._stop = False
        #: The last epoch of the checkpoint this attempt resumes from (0: from the start).
        self.resume_epoch = int(os.environ.get("SWEEP_RESUME_EPOCH", "0"))
        address = os.environ.get("SWEEP_SOCKET")
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(address)
            self._file = self._sock.makefile("rwb")

    def report(self, epoch, test_accuracy, train_accuracy=None, train_loss=None,
               confusion=None, **more):
        """Reports epoch ``epoch`` (1-based, in order; accuracies in percent). ``confusion``:
        the test split's confusion matrix (rows the true class; lists, or anything with
        ``tolist()``); ``more``: other scalars by name. Answers whether to stop now."""
        now = time.monotonic()
        request = {
            "op": "report",
            "epoch": int(epoch),
            "test_accuracy": float(test_accuracy),
            "seconds": now - self._last,
        }
        self._last = now
        if train_accuracy is not None:
            request["train_accuracy"] = float(train_accuracy)
        if train_loss is not None:
            request["train_loss"] = float(train_loss)
        if more:
            request["metrics"] = {str(k): float(v) for k, v in more.items()}
        if confusion is not None:
            rows = confusion.tolist() if hasattr(confusion, "tolist") else confusion
            request["confusion"] = [[int(c) for c in row] for row in rows]
        if self._sock is None:
            shown = {k: v for k, v in request.items() if k not in ("op", "confusion")}
            print(f"sweep: {json.dumps(shown)}", file=sys.stderr, flush=True)
            return False
        return self._ask(request)

    def should_stop(self):
        """Whether the program should stop now: early stopping or a cancel stopped the trial,
        its lease was lost, or the worker is shutting down (the trial resumes elsewhere from its
        last checkpoint)."""
        if self._sock is None:
            return False
        return self._ask({"op": "should_stop"})

    def checkpoint_dir(self):
        """The folder to write a checkpoint into; ``checkpoint(epoch)`` then uploads all of it."""
        if self._checkpoint_dir is None:
            self._checkpoint_dir = tempfile.mkdtemp(prefix="sweep-checkpoint-")
        return self._checkpoint_dir

    def resume_dir(self):
        """The folder holding the checkpoint this attempt resumes from (what was in
        ``checkpoint_dir()`` at epoch ``resume_epoch``), or None when it starts afresh."""
        return self._resume_dir

    def checkpoint(self, epoch):
        """Marks what ``checkpoint_dir()`` holds as the checkpoint after epoch ``epoch`` (the
        last one reported): the worker packs and uploads it, and a later attempt, on any worker,
        finds it in ``resume_dir()``. Answers whether to stop now."""
        if self._sock is None:
            return False
        return self._ask({"op": "checkpoint", "epoch": int(epoch)})

    def save_weights(self, path):
        """Marks the file ``path`` as the trial's final weights (uploaded when the program
        ends successfully)."""
        if self._weights is None:
            return
        if os.path.abspath(path) != os.path.abspath(self._weights):
            shutil.copyfile(path, self._weights)

    def _ask(self, request):
        try:
            line = json.dumps(request, allow_nan=False).encode() + b"\n"
        except ValueError as e:
            raise SweepError(f"cannot send {request['op']}: {e} (a value is NaN or infinite)")
        if len(line) > _MAX_REQUEST:
            raise SweepError(f"{request['op']} is {len(line)} bytes, over {_MAX_REQUEST}")
        try:
            self._file.write(line)
            self._file.flush()
            answer = self._file.readline()
        except OSError as e:
            raise SweepError(f"the worker is gone: {e}") from e
        if not answer:
            raise SweepError("the worker closed the channel")
        answer = json.loads(answer)
        if not answer.get("ok"):
            raise SweepError(answer.get("error", "refused"))
        self._stop = bool(answer.get("stop"))
        return self._stop


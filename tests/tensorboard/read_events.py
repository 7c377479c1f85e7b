"""Reads a sweep's OUT/tensorboard with TensorBoard's own reader and prints what it saw as JSON.

Usage: read_events.py LOGDIR. For the experiment (LOGDIR itself) and each run (LOGDIR/<name>):
every scalar series (step, value) through EventAccumulator, and the HParams plugin's content
decoded with TensorBoard's own plugin_data_pb2.
"""

import json
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def read(path):
    acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    scalars = {
        tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
    }
    try:
        contents = acc.PluginTagToContent("hparams")
    except KeyError:
        contents = {}
    hparams = {}
    for tag, content in contents.items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        hparams[tag] = json_format.MessageToDict(data, preserving_proto_field_name=True)
    return {"scalars": scalars, "hparams": hparams}


def main():
    logdir = sys.argv[1]
    runs = {".": read(logdir)}
    for name in sorted(os.listdir(logdir)):
        if os.path.isdir(os.path.join(logdir, name)):
            runs[name] = read(os.path.join(logdir, name))
    json.dump(runs, sys.stdout)


main()

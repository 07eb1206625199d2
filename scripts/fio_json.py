"""fio_json: fio's --output-format=json output, which may open with a
warning line.  Shared by bench.py and stripe_sweep.py beside it."""
import json
import sys


def die(prog, msg):
    print("%s: error: %s" % (prog, msg), file=sys.stderr)
    sys.exit(1)


def load_json(path, prog):
    with open(path) as f:
        text = f.read()
    start = text.find("{")  # fio may print a warning before its JSON
    if start < 0:
        die(prog, path + ": no JSON in it")
    return json.loads(text[start:])

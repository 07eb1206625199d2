"""docs_check: the checks t_docs.sh makes of docs/ against a running rawvec.

  python3 docs_check.py stats STATS.json docs/stats.md
      every key of the stats JSON is a field in the reference, and every
      field the reference lists is emitted (the JSON must come from a
      layout that emits every optional object)
  python3 docs_check.py links FILE.md...
      every relative link leads to a file, and its #anchor to a heading
  python3 docs_check.py headings DOC.md NAME...
      DOC.md has a heading for each NAME ("fail ADDR", "check, repair",
      "linear(M, M, ...)")

Each prints one line per problem and exits 1 if there was any.

How the stats reference is read: key paths are taken relative to the
device node they belong to (`target` and every element of a `members`
array), so the target and a member four levels down are one entry.
Array indices are collapsed (`super.devices[]`), and so are objects keyed
by numbers (the `hist` and `size_hist` buckets): those are documented by
their own field.  In docs/stats.md, the tables under "## Top level"
describe the top-level object and those under "## Device nodes" a device
node; a "###" heading that opens with `names` in backticks describes those
sub-objects of a node instead (`read_lat`, `super.devices[]`).  A table
row documents the fields its first cell names in backticks.
"""
import json
import os
import re
import sys


def stats_keys(d):
    """(scope, field, example path) for every key; scope is "top", "node"
    or a sub-object's path relative to its node."""
    out = []

    def walk(obj, scope, path):
        for k, v in obj.items():
            out.append((scope, k, path + k))
            if k == "target" and scope == "top":
                walk(v, "node", path + k + ".")
            elif k == "members" and scope == "node" and isinstance(v, list):
                for e in v:
                    walk(e, "node", path + k + "[].")
            elif isinstance(v, dict):
                if all(x.isdigit() for x in v):
                    continue  # per-bucket counts, documented by the field
                sub = k if scope in ("top", "node") else scope + "." + k
                walk(v, sub, path + k + ".")
            elif isinstance(v, list):
                sub = (k if scope in ("top", "node") else scope + "." + k) + "[]"
                for e in v:
                    if isinstance(e, dict):
                        walk(e, sub, path + k + "[].")

    walk(d, "top", "")
    return out


def doc_fields(path):
    """{(scope, field): line number} from the reference's tables."""
    fields = {}
    h2 = None
    scopes = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"(#+)\s+(.*)", line)
        if m:
            level, text = len(m.group(1)), m.group(2).strip()
            if level == 2:
                low = text.lower()
                h2 = ("top" if low.startswith("top level") else
                      "node" if low.startswith("device node") else None)
                scopes = [h2] if h2 else []
            elif level >= 3:
                if text.startswith("`"):
                    head = text.split(":")[0]
                    scopes = re.findall(r"`([^`]+)`", head)
                else:
                    scopes = [h2] if h2 else []
            else:
                scopes = []
            continue
        if not line.startswith("|") or not scopes:
            continue
        cell = line.split("|")[1].strip()
        if cell in ("field", "") or set(cell) <= set("-: "):
            continue
        for name in re.findall(r"`([^`]+)`", cell):
            for s in scopes:
                fields.setdefault((s, name), n)
    return fields


def check_stats(json_path, doc_path):
    d = json.load(open(json_path))
    keys = stats_keys(d)
    fields = doc_fields(doc_path)
    bad = 0
    seen = {}
    for scope, k, example in keys:
        seen.setdefault((scope, k), example)
    for (scope, k), example in sorted(seen.items()):
        if (scope, k) not in fields:
            where = {"top": "the top level", "node": "a device node"}.get(
                scope, "`%s`" % scope)
            print("stats field %s (e.g. %s) is not documented for %s in %s"
                  % (k, example, where, doc_path))
            bad += 1
    for (scope, k), n in sorted(fields.items(), key=lambda x: x[1]):
        if (scope, k) not in seen:
            print("%s:%d: documents %s.%s, which the stats file does not emit"
                  % (doc_path, n, scope, k))
            bad += 1
    kind_row = [l for l in open(doc_path, encoding="utf-8")
                if l.startswith("| `kind` |")]
    kinds = set(re.findall(r"`([^`]+)`", kind_row[0])) if kind_row else set()

    def walk_kinds(node):
        yield node.get("kind")
        for m in node.get("members", []):
            yield from walk_kinds(m)

    for kind in sorted(set(walk_kinds(d["target"]))):
        if kind not in kinds:
            print("kind %s is not among the kinds %s lists" % (kind, doc_path))
            bad += 1
    print("%d fields emitted, %d documented" % (len(seen), len(fields)),
          file=sys.stderr)
    return bad


def slug(text):
    """A heading's anchor, as GitHub makes it."""
    s = text.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    out, count, fence = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"#+\s+(.*)", line)
        if m:
            a = slug(m.group(1))
            n = count.get(a, 0)
            count[a] = n + 1
            out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


def check_links(files):
    bad = 0
    for f in files:
        text = open(f, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.isfile(dest):
                print("%s: link %s: no file %s" % (f, target, dest))
                bad += 1
            elif frag and dest.endswith(".md") and frag not in anchors(dest):
                print("%s: link %s: %s has no heading #%s" % (f, target, dest, frag))
                bad += 1
    return bad


def check_headings(doc, names):
    heads = [m.group(1).strip("` ") for m in
             (re.match(r"#+\s+(.*)", l) for l in open(doc, encoding="utf-8")) if m]
    bad = 0

    def names_it(head, name):
        # "fail ADDR", "check, repair", "linear(M, M, ...)"
        return any(p == name or p.startswith(name + " ") or p.startswith(name + "(")
                   for p in (x.strip() for x in head.split(",")))

    for name in names:
        if not any(names_it(h, name) for h in heads):
            print("%s has no heading for %s" % (doc, name))
            bad += 1
    return bad


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "stats":
        bad = check_stats(sys.argv[2], sys.argv[3])
    elif cmd == "links":
        bad = check_links(sys.argv[2:])
    elif cmd == "headings":
        bad = check_headings(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("docs_check: unknown command " + cmd)
    sys.exit(1 if bad else 0)

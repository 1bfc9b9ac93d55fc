#!/usr/bin/env python3
"""Checks spindle's invariant ids: each is defined once, and every cited id is defined.

An invariant id is `INV-` followed by capital letters naming its family (the
file or protocol it belongs to), a number, and an optional lower-case letter.

Definition. The one line that states an invariant: a `//` comment line whose
text is exactly three spaces, the id, two spaces, then the statement:

    //   INV-<FAMILY><n>  the statement, continued on the lines below,
    //             indented under its first word.

These lines make up the "Invariants" block at the top of the file that owns
the protocol (STYLE.md C.3). Anything else is not a definition, whatever it
says: a `// <id>:` comment at the line that maintains it, a mention in
prose, in a test, in a SPIN model or in a README.

Citation. Every other occurrence of an id, anywhere in the tree. A range
`INV-<F>1..<F>4` cites <F>1 to <F>4 of family <F>; `INV-<F>1/<F>2` cites
both (the second part must repeat the family).

The check fails, naming file:line, on
  - an id defined more than once (also within one file), and
  - an id cited but defined nowhere (a misspelling, a renamed or deleted
    invariant, or a definition not written in the form above).

Usage: check_invariants.py [ROOT]   (default: the repository this script is in)

Every file under ROOT is read as text, except the directories in SKIP_DIRS
(VCS data, fetched dependencies), any directory whose name starts with
`build` (build trees: build/test, build-asan, ...) and the self-test's fixture
(FIXTURE_DIR, which holds a planted duplicate and a dangling citation on
purpose); binary files are skipped. Standard library only. Exit status 0 if
the tree is clean, 1 if it is not, 2 on a usage error.
"""

import os
import re
import sys

# The id: family, number, optional letter. Not preceded by a word character,
# not followed by one (so the number 12 is not read as 1).
ID = re.compile(r"(?<![\w-])INV-([A-Z]+)([0-9]+)([a-z]?)(?![\w])")
# A definition line (see the docstring).
DEFINITION = re.compile(r"^\s*// {3}(INV-[A-Z]+[0-9]+[a-z]?) {2}\S")
# Something written like a definition but not in its form: a comment whose
# first word is the id, followed by two spaces. Reported as a hint when the
# id turns out to be undefined.
NEAR_DEFINITION = re.compile(r"^\s*(//|#|\*|/\*)\s*(INV-[A-Z]+[0-9]+[a-z]?) {2}\S")
# The tail of a range or an alternative after an id: `..F4`, `/T2`.
RANGE_TAIL = re.compile(r"(\.\.|/)([A-Z]+)([0-9]+)([a-z]?)(?![\w])")

SKIP_DIRS = {".git", "_deps", "node_modules", "__pycache__"}
# Relative to ROOT, with `/` separators.
FIXTURE_DIR = "tests/invariants/fixture"


def skipped(rel_dir, name):
    if name in SKIP_DIRS or name.startswith("build"):
        return True
    return (rel_dir + "/" + name if rel_dir else name) == FIXTURE_DIR


def files_under(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if rel_dir == ".":
            rel_dir = ""
        dirnames[:] = sorted(d for d in dirnames if not skipped(rel_dir, d))
        for name in sorted(filenames):
            yield os.path.join(dirpath, name), (rel_dir + "/" + name if rel_dir else name)


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace").splitlines()


def ids_cited(line):
    """Every id a line mentions, ranges and alternatives expanded."""
    out = []
    for m in ID.finditer(line):
        family, first, letter = m.group(1), int(m.group(2)), m.group(3)
        out.append("INV-%s%d%s" % (family, first, letter))
        pos = m.end()
        while True:
            tail = RANGE_TAIL.match(line, pos)
            if not tail or tail.group(2) != family:
                break
            last = int(tail.group(3))
            if tail.group(1) == ".." and last > first:
                out.extend("INV-%s%d" % (family, n) for n in range(first + 1, last + 1))
            else:
                out.append("INV-%s%d%s" % (family, last, tail.group(4)))
            pos = tail.end()
    return out


def check(root):
    """Returns (errors, number of definitions, number of citations)."""
    definitions = {}  # id -> "file:line" of its first definition
    citations = []  # (id, "file:line", line looks like a definition)
    errors = []
    for path, rel in files_under(root):
        lines = read_lines(path)
        if lines is None:
            continue
        for n, line in enumerate(lines, 1):
            if "INV-" not in line:
                continue
            where = "%s:%d" % (rel, n)
            d = DEFINITION.match(line)
            defined = d.group(1) if d else None
            if defined:
                if defined in definitions:
                    errors.append(
                        "%s: %s defined twice (also defined at %s)"
                        % (where, defined, definitions[defined])
                    )
                else:
                    definitions[defined] = where
            near = NEAR_DEFINITION.match(line)
            for cited in ids_cited(line):
                if cited == defined:
                    defined = None  # the definition itself, once
                    continue
                looks = bool(near) and near.group(2) == cited
                citations.append((cited, where, looks))
    for cited, where, looks in citations:
        if cited not in definitions:
            hint = ""
            if looks:
                hint = " (written like a definition; a definition reads `//   %s  text`)" % cited
            errors.append("%s: %s cited but never defined%s" % (where, cited, hint))
    return errors, len(definitions), len(citations)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        sys.stderr.write("usage: check_invariants.py [ROOT]\n")
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        sys.stderr.write("check_invariants.py: not a directory: %s\n" % root)
        return 2
    errors, n_defined, n_cited = check(root)
    for e in errors:
        print(e)
    if errors:
        print("check_invariants.py: %d problem(s) in %s" % (len(errors), root))
        return 1
    print("check_invariants.py: %d invariants, each defined once; %d citations, all defined"
          % (n_defined, n_cited))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

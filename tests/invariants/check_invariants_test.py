#!/usr/bin/env python3
"""Tests tools/check_invariants.py on the tree in fixture/ and on copies of it.

fixture/ holds two definitions (protocol.hpp), a planted duplicate and a
planted dangling citation (uses.cpp), and an id written almost like a
definition (wrong_form.hpp). The checker must fail on exactly those three
lines, naming them, and pass once they are gone.

This file lies in the tree the checker reads, so it spells no id out: each
is put together from INV and its family and number at run time.

Usage: check_invariants_test.py CHECKER   (the path of check_invariants.py)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture")
CHECKER = None  # set from argv


def inv(name):
    return "INV" + "-" + name


def run(root):
    p = subprocess.run(
        [sys.executable, CHECKER, root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True)
    return p.returncode, p.stdout.splitlines()


class CheckInvariantsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="check_invariants_")
        self.copy = os.path.join(self.tmp, "tree")
        shutil.copytree(FIXTURE, self.copy)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, rel, text):
        with open(os.path.join(self.copy, rel), "w") as f:
            f.write(text)

    def test_fixture_fails_naming_the_duplicate_and_the_dangling_citations(self):
        rc, out = run(FIXTURE)
        self.assertEqual(rc, 1, out)
        problems = out[:-1]
        self.assertEqual(problems, [
            "uses.cpp:1: %s defined twice (also defined at protocol.hpp:4)" % inv("FX1"),
            "uses.cpp:3: %s cited but never defined" % inv("FX9"),
            "wrong_form.hpp:1: %s cited but never defined (written like a definition; "
            "a definition reads `//   %s  text`)" % (inv("FX3"), inv("FX3")),
        ])
        self.assertIn("3 problem(s)", out[-1])

    def test_passes_once_the_planted_lines_are_gone(self):
        os.remove(os.path.join(self.copy, "wrong_form.hpp"))
        self.write("uses.cpp", "int maintains_both();  // %s..FX2: a range cites both.\n"
                   % inv("FX1"))
        rc, out = run(self.copy)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out, ["check_invariants.py: 2 invariants, each defined once; "
                               "2 citations, all defined"])

    def test_a_range_cites_every_id_in_it(self):
        os.remove(os.path.join(self.copy, "wrong_form.hpp"))
        self.write("uses.cpp", "// %s..FX3 and %s/FX4\n" % (inv("FX1"), inv("FX2")))
        rc, out = run(self.copy)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out[:-1], [
            "uses.cpp:1: %s cited but never defined" % inv("FX3"),
            "uses.cpp:1: %s cited but never defined" % inv("FX4"),
        ])

    def test_a_duplicate_within_one_file_and_a_longer_number_are_caught(self):
        os.remove(os.path.join(self.copy, "wrong_form.hpp"))
        self.write("uses.cpp", "//   %s  defined again, in another file.\n"
                   "// %s is not %s.\n" % (inv("FX2"), inv("FX12"), inv("FX1")))
        with open(os.path.join(self.copy, "protocol.hpp"), "a") as f:
            f.write("//   %s  the same file, twice.\n" % inv("FX1"))
        rc, out = run(self.copy)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out[:-1], [
            "protocol.hpp:6: %s defined twice (also defined at protocol.hpp:4)" % inv("FX1"),
            "uses.cpp:1: %s defined twice (also defined at protocol.hpp:5)" % inv("FX2"),
            "uses.cpp:2: %s cited but never defined" % inv("FX12"),
        ])

    def test_build_trees_and_the_fixture_are_not_read_from_a_repository_root(self):
        root = os.path.join(self.tmp, "repo")
        os.makedirs(os.path.join(root, "tests", "invariants"))
        shutil.copytree(FIXTURE, os.path.join(root, "tests", "invariants", "fixture"))
        os.makedirs(os.path.join(root, "build", "test"))
        with open(os.path.join(root, "build", "test", "generated.cpp"), "w") as f:
            f.write("// %s\n" % inv("FX9"))
        with open(os.path.join(root, "a.hpp"), "w") as f:
            f.write("//   %s  defined.\n// %s\n" % (inv("A1"), inv("A1")))
        rc, out = run(root)
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: check_invariants_test.py CHECKER [unittest args]\n")
        sys.exit(2)
    CHECKER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

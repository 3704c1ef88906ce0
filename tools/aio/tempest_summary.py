"""Results of a tempest run per group (compute, image, network, volume, share).

Reads the run's subunit v2 stream on stdin (``stestr last --subunit``) and prints one
line per group with the passed, failed and skipped counts, then the failed tests. A class
whose set-up failed counts as one failure under its group.
"""

import collections
import sys

import subunit
import testtools

GROUPS = (
    ("tempest.api.compute.", "compute"),
    ("tempest.api.image.", "image"),
    ("tempest.api.network.", "network"),
    ("tempest.api.volume.", "volume"),
    ("cinder_tempest_plugin.", "volume"),
    ("manila_tempest_tests.", "share"),
)
STATUS = {"success": "passed", "fail": "failed", "skip": "skipped",
          "xfail": "passed", "uxsuccess": "failed"}


def group_of(test_id):
    # "setUpClass (tempest.api.compute....)" names the class in parentheses
    name = test_id.split("(", 1)[-1]
    for prefix, group in GROUPS:
        if name.startswith(prefix):
            return group
    return "other"


def main():
    counts = collections.defaultdict(collections.Counter)
    failed = []

    def on_test(test):
        outcome = STATUS.get(test["status"])
        if outcome is None:
            return
        counts[group_of(test["id"])][outcome] += 1
        if outcome == "failed":
            failed.append(test["id"])

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()
    names = [g for _, g in GROUPS]
    order = sorted(counts, key=lambda g: names.index(g) if g in names else len(names))
    print("tempest results per group (passed/failed/skipped):")
    for group in order:
        c = counts[group]
        print(f"  {group:8} {c['passed']:3d} passed {c['failed']:3d} failed "
              f"{c['skipped']:3d} skipped")
    for test_id in failed:
        print(f"  FAILED {test_id}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

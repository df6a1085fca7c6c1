"""Per-operation reporting shared by the client-compatibility scripts.

Each script records operations with `Report.op(name, fn)`; an exception
(or a failed `check`) marks the operation FAIL with its message, and
`Report.finish()` prints the total and exits non-zero on any failure.
"""

import sys
import traceback


class CheckFailed(Exception):
    pass


def check(condition, message):
    """Fails the current operation with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


class Report:
    def __init__(self, client):
        self.client = client
        self.run = 0
        self.passed = 0
        self.failed = 0

    def op(self, name, fn, *args, **kwargs):
        """Runs one operation; returns its result, or None when it failed."""
        self.run += 1
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            if not isinstance(e, CheckFailed):
                traceback.print_exc(limit=3, file=sys.stdout)
            return None
        self.passed += 1
        print(f"PASS {name}")
        return result

    def finish(self):
        print(f"TOTAL {self.client}: {self.run} run, {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.run else 0)

"""Print the failed tests of stestr runs, short, for the end of a CI log.

    python tools/show-failures.py .stestr/12 .stestr/13 ...

CI shows the head and tail of a run's output; the failures of an early tox
environment would be lost in between. For each failed test this prints its
id, the end of its traceback and the last lines of its other attachments
(captured log, stderr). stestr keeps its runs as subunit v1 text.
"""

import sys

import subunit
import testtools

# CI keeps only a few thousand characters of the tail: stay short.
TRACEBACK_LINES = 20
LOG_LINES = 8
WIDTH = 200


class _Failures(testtools.TestResult):
    """Failed tests and their details."""

    def __init__(self):
        super().__init__()
        self.failed = []        # (test id, {attachment name: text})

    def _record(self, test, err=None, details=None):
        if details is None:
            details = {"traceback": self._exc_info_to_unicode(err, test)}
        else:
            details = {name: content.as_text() for name, content in details.items()}
        self.failed.append((test.id(), details))

    def addError(self, test, err=None, details=None):
        self._record(test, err, details)

    def addFailure(self, test, err=None, details=None):
        self._record(test, err, details)


def failures(path):
    result = _Failures()
    with open(path, 'rb') as stream:
        subunit.ProtocolTestCase(stream).run(result)
    return result.failed


def _traceback_last(item):
    return item[0] == 'traceback', item[0]


def _tail(text, lines):
    return '\n'.join(line[:WIDTH] for line in text.splitlines()[-lines:])


def main(paths):
    for path in paths:
        for test_id, parts in failures(path):
            print(f'===== FAILED {test_id} (run {path})')
            for name, text in sorted(parts.items(), key=_traceback_last):
                if not text.strip():
                    continue
                lines = TRACEBACK_LINES if name == 'traceback' else LOG_LINES
                print(f'--- {name} (last {lines} lines)')
                print(_tail(text, lines))


if __name__ == '__main__':
    main(sys.argv[1:])

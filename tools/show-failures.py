"""Print the failed tests of stestr runs, short, for the end of a CI log.

    python tools/show-failures.py .stestr/12 .stestr/13 ...

CI shows the head and tail of a run's output; the failures of an early tox
environment would be lost in between. For each failed test this prints its
id, the end of its traceback and the last lines of its other attachments
(captured log, stderr).
"""

import sys

import subunit
import testtools

# CI keeps only a few thousand characters of the tail: stay short.
TRACEBACK_LINES = 20
LOG_LINES = 8
WIDTH = 200


class _Failures(testtools.StreamResult):
    def __init__(self):
        super().__init__()
        self.details = {}
        self.failed = []
        self.unfinished = {}

    def status(self, test_id=None, test_status=None, file_name=None,
               file_bytes=None, **kwargs):
        if test_id is None:
            return
        if file_name is not None:
            parts = self.details.setdefault(test_id, {})
            parts[file_name] = parts.get(file_name, b'') + file_bytes
        if test_status == 'inprogress':
            self.unfinished[test_id] = True
        elif test_status is not None:
            self.unfinished.pop(test_id, None)
        if test_status == 'fail':
            self.failed.append(test_id)


def _traceback_last(item):
    return item[0] == 'traceback', item[0]


def _tail(text, lines):
    return '\n'.join(line[:WIDTH] for line in text.splitlines()[-lines:])


def main(paths):
    for path in paths:
        result = _Failures()
        with open(path, 'rb') as stream:
            subunit.ByteStreamToStreamResult(
                stream, non_subunit_name='stdout').run(result)
        for test_id in result.unfinished:
            print(f'===== NO RESULT (the worker died?) {test_id} (run {path})')
        for test_id in result.failed:
            parts = result.details.get(test_id, {})
            print(f'===== FAILED {test_id} (run {path})')
            for name, data in sorted(parts.items(), key=_traceback_last):
                text = data.decode('utf-8', 'replace')
                lines = TRACEBACK_LINES if name == 'traceback' else LOG_LINES
                print(f'--- {name} (last {lines} lines)')
                print(_tail(text, lines))


if __name__ == '__main__':
    main(sys.argv[1:])

"""A stand-in for the ``cloud-hypervisor`` binary, for tests on hosts without one (test
code, never shipped).

It takes the same command-line options the driver passes (``--api-socket``,
``--event-monitor``, ``--log-file``, ``--seccomp``), serves the Cloud Hypervisor REST API
on the UNIX socket as ``tests/common/specs`` and the research notes (BEHAVIOUR.md) say the
real v53 server does where a client can tell (status codes including the 500s for wrong
states, JSON-array error bodies, ``vmm.shutdown``'s bodiless 200, one request at a time,
at most 10 connections, the 51,200-byte body limit, ``Created`` after ``vm.shutdown``,
event-monitor records), validates every request against the official OpenAPI spec with
openapi-core (a violation is answered 400 and written to ``<api socket>.violations``,
which the test fixtures check), and runs the guest for real in QEMU under TCG from the
kernel, initramfs or firmware and the disks and tap fds it was given
(``tests.common.ch_standin.guest``).
"""

"""The stand-in VMM's guest (tests/common/ch_standin/guest.py, which the functional tests
boot every guest through), with a real QEMU under TCG: QEMU creates its QMP socket file
at bind() and listens a moment later, so a connect in that moment is refused; the
stand-in tries again instead of failing the boot (which ended the stand-in mid-request:
the intermittent "vm.boot: no answer" of functional-ch)."""
import errno
from unittest import mock

import fixtures
from qemu.qmp import ConnectError
from qemu.qmp import QMPError
from qemu.qmp import legacy
import testtools

from tests.common.ch_standin import guest as guest_mod
from tests.common.ch_standin import http
from tests.common.ch_standin import vmm as vmm_mod


class TestGuestStart(testtools.TestCase):
    def test_a_refused_qmp_connect_is_tried_again(self):
        workdir = self.useFixture(fixtures.TempDir()).path
        real_connect = legacy.QEMUMonitorProtocol.connect
        calls = []

        def connect(qmp, *args, **kwargs):
            calls.append(qmp)
            if len(calls) == 1:        # as between QEMU's bind() and listen()
                raise ConnectError("Failed to establish connection",
                                   ConnectionRefusedError(errno.ECONNREFUSED,
                                                          "Connection refused"))
            return real_connect(qmp, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch(
            "qemu.qmp.legacy.QEMUMonitorProtocol.connect", connect))
        guest = guest_mod.Guest(workdir, {"memory": {"size": 64 << 20},
                                          "serial": {"mode": "Null"}}, {}, mock.Mock())
        self.addCleanup(guest.stop)
        guest.start()
        self.assertEqual("running", guest.status())
        self.assertEqual(2, len(calls))


class TestGuestFailure(testtools.TestCase):
    """A request whose QMP command fails is answered (the VMM does not end)."""

    def test_a_qmp_failure_answers_500_and_the_vmm_stays(self):
        vmm = vmm_mod.VMM(self.useFixture(fixtures.TempDir()).path, None, mock.Mock())
        vmm.config = {"payload": {"kernel": "/k"}}
        vmm.guest = mock.Mock(**{"cmd.side_effect": QMPError("QEMU went away")})
        resp = vmm.handle(http.Request("PUT", "/api/v1/vm.pause", {}, None, []))
        self.assertEqual(500, resp.status)
        self.assertIn("QEMU went away", resp.body)
        self.assertFalse(vmm.exit_requested)

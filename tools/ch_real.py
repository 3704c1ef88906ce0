"""``tox -e functional-ch-real``: the Cloud Hypervisor functional tests against a real
``cloud-hypervisor`` (``HCI_CH_BINARY``; a firmware for images without a kernel in
``HCI_CH_FIRMWARE``), in nova's eventlet and native-threads modes, when this host can
run it: the binary is executable and answers ``--version``, and ``/dev/kvm`` opens and
creates a VM for a guest uid (the VMM runs as one). Otherwise it says why, runs nothing
and exits 0 (a skip, not a pass: the message says so).

Usage: python tools/ch_real.py [stestr filter...]
"""
import os
import subprocess
import sys

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
GUEST_UID, GUEST_GID = "1900000000", "1900000000"     # [hci_guests] defaults
TESTS = "./tests/functional/nova_cloudhypervisor"
SYSTEM_PYTHON = "/usr/bin/python3"      # reachable by a guest uid (tox's venv may not be)
KVM_PROBE = (
    "import fcntl, os, sys\n"
    "fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)\n"
    "v = fcntl.ioctl(fd, %d)\n"
    "if v != 12: sys.exit('KVM API version %%d, not 12' %% v)\n"
    "os.close(fcntl.ioctl(fd, %d, 0))\n" % (KVM_GET_API_VERSION, KVM_CREATE_VM))


def why_not():
    """None when the real binary can run here, else the reason."""
    binary = os.environ.get("HCI_CH_BINARY")
    if not binary:
        return "HCI_CH_BINARY is not set (the path of a cloud-hypervisor binary)"
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return "HCI_CH_BINARY=%s is not an executable file" % binary
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s --version failed: %s" % (binary, e)
    if out.returncode != 0 or "cloud-hypervisor" not in out.stdout:
        return "%s --version did not name cloud-hypervisor: %r" % (binary, out.stdout)
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist"
    probe = subprocess.run(["setpriv", "--reuid", GUEST_UID, "--regid", GUEST_GID,
                            "--clear-groups", SYSTEM_PYTHON, "-c", KVM_PROBE],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return ("/dev/kvm does not work for a guest uid (%s): %s"
                % (GUEST_UID, (probe.stderr.strip().splitlines() or ["?"])[-1]))
    return None


def main(filters):
    reason = why_not()
    if reason:
        print("functional-ch-real SKIPPED, no test ran: %s" % reason)
        return 0
    print("functional-ch-real: %s" % os.environ["HCI_CH_BINARY"], flush=True)
    rc = 0
    for patching in ("", "1"):
        env = dict(os.environ)
        if patching:
            env["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = patching
        rc |= subprocess.run([sys.executable, "-m", "stestr", "--test-path", TESTS, "run",
                              "--concurrency", "1", *filters], env=env).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

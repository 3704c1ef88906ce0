"""Loop block devices for tests (a volume's device node), removed in cleanup."""
import subprocess


def loop_device(test, backing):
    """A loop device over the file ``backing``, detached in ``test``'s cleanup. A loop
    device node keeps its ACL across uses: it starts and ends without one."""
    loop = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                          capture_output=True, text=True).stdout.strip()
    test.addCleanup(subprocess.run, ["losetup", "--detach", loop], check=False)
    subprocess.run(["setfacl", "-b", loop], check=True)
    test.addCleanup(subprocess.run, ["setfacl", "-b", loop], check=False)
    return loop

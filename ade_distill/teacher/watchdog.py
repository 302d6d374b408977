"""Run a server as a child and stop it when the process that asked for it dies.

``python -m ade_distill.teacher.watchdog PARENT_PID -- COMMAND...``: starts COMMAND, then
polls; when PARENT_PID is no longer this process's parent (it exited, was killed with SIGKILL,
or timed out), or on SIGTERM/SIGINT, the child gets SIGTERM (SIGKILL after a grace period).
The watchdog exits with the child's status. Polling the parent id, unlike a parent-death
signal, does not depend on which thread of the parent started the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

POLL_S = 0.5
GRACE_S = 10.0


def _stop(child: subprocess.Popen) -> int:
    if child.poll() is None:
        child.terminate()
        try:
            return child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m ade_distill.teacher.watchdog PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    child = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        code = child.poll()
        if code is not None:
            return code
        if stopping or os.getppid() != parent:
            _stop(child)
            return 0
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A child process's own peak memory.

`wait4`'s ru_maxrss is not it: Linux starts a forked child's high-water mark at the parent's
resident size and keeps it across exec, so a child of a test process that has grown to 1 GB
(one that loaded models in-process) reports 1 GB whatever it used itself. VmHWM in
/proc/PID/status is the high-water mark of the child's own address space since its exec.
"""
import os
import threading
import time


class PeakMemory:
    """Watches a running process's VmHWM until it exits; `mb` is the highest value read."""

    def __init__(self, pid: int, every: float = 0.005):
        self.mb = 0.0
        self._pid, self._every = pid, every
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            try:
                with open(f"/proc/{self._pid}/status") as status:
                    line = next((l for l in status if l.startswith("VmHWM:")), None)
            except OSError:
                return  # gone (and reaped)
            if line is None:
                return  # a zombie: its memory is gone, its peak read already
            self.mb = max(self.mb, int(line.split()[1]) / 1024)
            time.sleep(self._every)

    def result(self) -> float:
        """The peak, once the process has exited."""
        self._thread.join(timeout=5)
        return self.mb


def wait_with_peak(process) -> tuple[int, float]:
    """Waits for a Popen started just now; its exit code and its peak resident memory in MB."""
    peak = PeakMemory(process.pid)
    _, status = os.waitpid(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, peak.result()

"""Ending processes: children, the hard-exit watchdog and the terminal guard, on real processes and a real pty."""
import multiprocessing
import os
import threading
import time

from tfchat.core.system.lifecycle import end_children, on_terminal_lost, register_child


def test_end_children_stops_every_registered_child():
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=time.sleep, args=(60,), daemon=True) for _ in range(2)]
    for child in children:
        child.start()
        register_child(child)
    end_children()
    assert all(child.exitcode is not None for child in children)


def test_a_terminal_that_hangs_up_without_a_sighup_is_noticed():
    """The pty's other end closing is what a dropped SSH link does to the terminal tfchat reads."""
    master, slave = os.openpty()
    lost = threading.Event()
    on_terminal_lost(slave, lost.set, poll_s=0.05)
    time.sleep(0.2)
    assert not lost.is_set()  # a live terminal is left alone
    os.close(master)
    assert lost.wait(2.0)
    os.close(slave)

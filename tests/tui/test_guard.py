"""A native crash of the app's process leaves the terminal as it found it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios
import textwrap

CRASH = textwrap.dedent("""
    import os, signal, sys, tty
    from ecs_tui.guard import guarded

    def app():
        tty.setraw(sys.stdin.fileno())           # as Textual's driver does
        sys.stdout.write("\\x1b[?1049h\\x1b[?1003h")  # alternate screen, mouse reporting
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGSEGV)     # what a crash inside libtorch does

    sys.exit(guarded(app))
""")


def test_a_segfault_in_the_app_restores_the_terminal_and_says_so() -> None:
    leader, follower = pty.openpty()
    before = termios.tcgetattr(follower)
    proc = subprocess.run(
        [sys.executable, "-c", CRASH], stdin=follower, stdout=follower, stderr=subprocess.PIPE,
        timeout=60, text=True,
    )  # fmt: skip
    os.set_blocking(leader, False)
    screen = os.read(leader, 65536).decode(errors="replace")
    after = termios.tcgetattr(follower)
    os.close(leader)
    os.close(follower)
    assert proc.returncode == 128 + 11
    assert "ecs-tui died (SIGSEGV); terminal restored" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert screen.index("\x1b[?1049l") > screen.index("\x1b[?1049h")  # back on the main screen
    assert "\x1b[?1003l" in screen  # mouse reporting off
    assert after == before  # cooked mode again (echo, canonical input)


def test_a_normal_exit_passes_its_status_through() -> None:
    leader, follower = pty.openpty()
    code = "import sys; from ecs_tui.guard import guarded; sys.exit(guarded(lambda: sys.exit(3)))"
    proc = subprocess.run([sys.executable, "-c", code], stdin=follower, stdout=follower,
                          stderr=subprocess.PIPE, timeout=60, text=True)  # fmt: skip
    os.close(leader)
    os.close(follower)
    assert proc.returncode == 3 and proc.stderr == ""

"""Keep the terminal usable whatever kills the app.

The app trains in a thread of its own process, so a native crash inside PyTorch (SIGSEGV, an
abort from glibc), the OOM killer or a `kill -9` takes the whole process down at once: no
Python code runs, and the terminal is left in the alternate screen, in raw mode, with mouse
reporting on. A signal handler cannot fix that (after SIGSEGV nothing can be trusted to run), so
`guarded` forks instead: the child runs the app, the parent only waits. When the child dies by
a signal, the parent, which saved the terminal's settings before the fork, puts them back,
leaves the alternate screen, turns mouse reporting off and says what happened in one line. The
run directory needs nothing: its lock died with the child, so `ecs runs` says the run died.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable

RESTORE = (
    "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"  # mouse reporting off
    "\x1b[?2004l\x1b[?25h\x1b[?1049l\x1b[0m"  # bracketed paste off, cursor on, main screen
)
"""What a well-behaved exit of a Textual app sends; the parent sends it for a dead child."""


def guarded(app: Callable[[], object]) -> int:
    """Run `app()` in a child process on a terminal; return its exit status (128 + signal)."""
    try:
        import termios
    except ImportError:  # not a POSIX system
        app()
        return 0
    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError, ValueError, AttributeError):
        app()  # not a terminal: nothing to restore
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the app itself
        os._exit(_child(app))
    forward = lambda signum, _frame: os.kill(pid, signum)  # noqa: E731
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the app reads Ctrl-C as a key
    _, status = os.waitpid(pid, 0)
    if not os.WIFSIGNALED(status):
        return os.waitstatus_to_exitcode(status)
    sig = os.WTERMSIG(status)
    termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    os.write(sys.stdout.fileno(), RESTORE.encode())
    name = signal.Signals(sig).name
    why = f"ecs-tui died ({name}); terminal restored; `ecs runs` says how to resume"
    print(why, file=sys.stderr)
    return 128 + sig


def _child(app: Callable[[], object]) -> int:
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the child must exit through os._exit, never return
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code

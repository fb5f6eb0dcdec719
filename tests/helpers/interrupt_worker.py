"""Runs ``python -m MODULE ARGS`` and kills it with SIGKILL (or holds it) at its n-th
rename (``os.replace``/``os.rename``), for the process-level fault tests.

    python tests/helpers/interrupt_worker.py (--kill-at N | --hold-at N --release FILE)
        [--match NAME] MODULE ARGS...

Only renames whose destination's file name is NAME count (default: all). ``--kill-at``:
the process kills itself with SIGKILL just before that rename, as ``kill -9`` would
(nothing is cleaned up, no handler runs). ``--hold-at``: creates FILE.held, waits until
FILE exists, then renames and goes on.
"""

import argparse
import os
import runpy
import signal
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kill-at", type=int)
    p.add_argument("--hold-at", type=int)
    p.add_argument("--release")
    p.add_argument("--match")
    p.add_argument("module")
    p.add_argument("args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    count = 0

    def wrap(real):
        def rename(src, dst, **kwargs):
            nonlocal count
            if args.match is None or os.path.basename(os.fspath(dst)) == args.match:
                count += 1
                if count == args.kill_at:
                    sys.stdout.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                if count == args.hold_at:
                    open(args.release + ".held", "w").close()
                    while not os.path.exists(args.release):
                        time.sleep(0.05)
            return real(src, dst, **kwargs)
        return rename

    os.replace, os.rename = wrap(os.replace), wrap(os.rename)
    sys.argv = [args.module, *args.args]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

"""``python -m td3exp``: the training entrypoint (td3exp/app.py holds it, so launchers can pickle it by reference).

A single run's config is composed and validated before Hydra starts and before torch is imported (td3exp/cli.py), so
a mistake costs one line, exit code 2 and about a second, and leaves no run directory behind.
"""

import sys

from td3exp import cli

if __name__ == "__main__":
    cli.register()
    if cli.is_single_run(sys.argv[1:]):
        cli.preflight(sys.argv[1:])
    import signal

    from td3exp.app import main
    from td3exp.signals import STOP_SIGNALS, Interrupted

    try:
        main()
    except Interrupted as stopped:  # a sweep stopped by a signal: its jobs' checkpoints let the same command resume
        print(f"td3exp: {stopped}", file=sys.stderr, flush=True)
        sys.exit(5)
    finally:  # the run is over (its exit code is decided): a stop signal while the interpreter shuts down ends nothing
        for stop in STOP_SIGNALS:
            signal.signal(stop, signal.SIG_IGN)

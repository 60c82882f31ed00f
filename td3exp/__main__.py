"""``python -m td3exp``: the training entrypoint (td3exp/app.py holds it, so launchers can pickle it by reference)."""

from td3exp.app import main

if __name__ == "__main__":
    main()

"""``python -m td3exp.dashboard wandb --entity E --project P [--group G]``: save a W&B workspace with the standard
panels (needs network and ``wandb login``); prints its URL."""

from __future__ import annotations

import argparse
import sys

from td3exp.dashboard.wandb_workspace import build_workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m td3exp.dashboard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    wandb_cmd = commands.add_parser("wandb", help="save a W&B workspace with the standard panels")
    wandb_cmd.add_argument("--entity", required=True, help="W&B entity (user or team)")
    wandb_cmd.add_argument("--project", required=True, help="W&B project holding the runs")
    wandb_cmd.add_argument("--group", help="only this W&B group's runs (a sweep: its study or sweep directory)")
    wandb_cmd.add_argument("--name", default="td3exp runs", help="workspace name")
    args = parser.parse_args(argv)
    workspace = build_workspace(args.entity, args.project, args.group, args.name)
    try:
        workspace.save()
    except Exception as error:  # network, login or permission errors all end the same way: one line
        print(f"td3exp.dashboard: could not save the workspace to {args.entity}/{args.project}: "
              f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
              "(needs network and `wandb login`)", file=sys.stderr)
        return 2
    print(workspace.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

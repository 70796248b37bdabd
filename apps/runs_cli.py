"""`toolkit runs list|show`: inspect training run directories (status, metrics, history, files)."""

from __future__ import annotations

import json
import os

HELP = "list training runs and show one (status, config, metrics, history, plots)"


def add_arguments(parser) -> None:
    verbs = parser.add_subparsers(dest="runs_verb", required=True)
    listing = verbs.add_parser("list", help="every run under --run-dir with its status and headline metrics")
    listing.add_argument("--run-dir", default="runs", help="the run-directory root")
    show = verbs.add_parser("show", help="one run: status, config, metrics, last epochs, files")
    show.add_argument("path", help="a run directory (runs/<task>/<time>)")


def main(args) -> int:
    from apps.run_dirs import list_runs

    if args.runs_verb == "list":
        rows = list_runs(args.run_dir)
        if not rows:
            print(f"no runs under {args.run_dir!r}")
            return 0
        for row in rows:
            metrics = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row["metrics"].items())
            why = ""
            if row["status"] == "failed" and row.get("reason"):
                why = f"  [{row.get('stage') or '?'}] {_short(row['reason'])}"
            elif row.get("note"):
                why = f"  note: {_short(row['note'])}"
            print(f"{row['status']:<9} {row['path']}  {metrics}{why}".rstrip())
        return 0
    path = args.path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"run directory {path!r} does not exist")
    for name in ("status.json", "config.json", "metrics.json"):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            with open(file) as f:
                document = json.load(f)
            if name == "metrics.json":
                document = {k: v for k, v in document.items() if not isinstance(v, (list, dict))}
            print(f"== {name}\n{json.dumps(document, indent=2)}")
    history = os.path.join(path, "history.csv")
    if os.path.isfile(history):
        with open(history) as f:
            lines = f.read().splitlines()
        print("== history.csv (last 5 epochs)\n" + "\n".join([lines[0], *lines[1:][-5:]]))
    print("== files\n" + "\n".join(sorted(os.listdir(path))))
    return 0


def _short(text: str, width: int = 70) -> str:
    """The first line of a reason, cut to `width` characters."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."

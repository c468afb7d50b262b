"""``python -m core jobs [list | submit | cancel | use | devices]``: training runs without the page.

``list`` (the default) brings every run up to date and, like the Train page's live panel, starts
queued local runs when a slot is free: run it (or keep the page open) to move the queue along.
``submit --spec SPEC.json [--ray ADDRESS]`` starts a run as the page's Start button does;
``cancel RUN`` stops one; ``use RUN`` installs a finished run's model into the registry;
``devices [--ray ADDRESS]`` shows the GPUs of this computer or of a Ray cluster.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.commands import UsageError, load_settings, positive_int


def register(subparsers) -> None:
    """Add the ``jobs`` sub-command and its actions."""
    p = subparsers.add_parser(
        "jobs", help="list, start, cancel and use training runs", description=__doc__.split("\n\n")[1]
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="every run, brought up to date (starts queued runs)")
    submit = actions.add_parser("submit", help="start a training run from a spec file")
    submit.add_argument("--spec", required=True, metavar="SPEC.json", help="training spec (arch, data, tag, …)")
    submit.add_argument("--ray", metavar="ADDRESS", help="submit to the Ray cluster at this dashboard address")
    submit.add_argument("--parallel", action="store_true", help="local: start at once beside running jobs")
    submit.add_argument("--gpus", type=positive_int(), default=None, help="GPUs for the run")
    cancel = actions.add_parser("cancel", help="stop a queued or running run")
    cancel.add_argument("run_id", metavar="RUN", help="run id (its folder name)")
    cancel.add_argument("--wait", type=float, default=20.0, help="seconds to wait before SIGKILL (default 20)")
    use = actions.add_parser("use", help="install a finished run's model into the registry")
    use.add_argument("run_id", metavar="RUN", help="run id (its folder name)")
    use.add_argument("--replace", action="store_true", help="replace an installed model of the same name")
    devices = actions.add_parser("devices", help="GPUs, CPUs and memory of a runtime")
    devices.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster's dashboard address")
    p.set_defaults(run=run, action="list")


def _print_runs(runs) -> None:
    if not runs:
        print("no training runs yet")
    for r in runs:
        auc = "" if r.best_val_auc is None else f" best val AUC {r.best_val_auc:.3f}"
        epoch = f" epoch {r.epoch}/{r.epochs}" if r.epoch and not r.finished else ""
        print(f"{r.run_id}  {r.state}{epoch}  {r.backend}{auc}" + (f"  ({r.message})" if r.message else ""))


def run(args: argparse.Namespace) -> int:
    """Do the action; returns 0 (errors are DFIErrors: one ``error:`` line, exit 2)."""
    settings = load_settings()
    from core.jobs import service as jobs

    if args.action == "list":
        _print_runs(jobs.refresh_runs(settings))
    elif args.action == "submit":
        try:
            spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read training spec {args.spec}: {exc}") from None
        if not isinstance(spec, dict):
            raise UsageError(f"{args.spec} must hold a JSON object")
        backend = "ray" if args.ray else "local"
        info = jobs.submit(spec, backend, settings, address=args.ray, exclusive=not args.parallel, gpus=args.gpus)
        print(f"{info.state}: {info.run_id} in {info.dir}")
    elif args.action == "cancel":
        info = jobs.cancel(args.run_id, settings, wait_s=args.wait)
        print(f"{info.state}: {info.run_id}")
    elif args.action == "use":
        from core.training.install_run import use_run

        card = use_run(jobs.run_dir_of(args.run_id, settings), settings, replace=args.replace)
        print(f"installed {card.id}: {card.source}")
    elif args.action == "devices":
        from core.jobs.devices import local_devices
        from core.jobs.ray_cluster import ray_devices

        found = ray_devices(args.ray) if args.ray else local_devices()
        print(f"{found.where}: {found.summary()}")
        for gpu in found.gpus:
            memory = f"{gpu.memory_mb} MiB" if gpu.memory_mb else "memory unknown"
            print(f"  GPU {gpu.index} on {gpu.node}: {gpu.name}, {memory}")
    return 0

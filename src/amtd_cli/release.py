"""``amtd release NAMESPACE/POD [--restore] [--kubeconfig PATH]``: end a pod's quarantine.

By default the isolated pod and its NetworkPolicy are deleted; ``--restore`` puts the pod's
labels back and deletes the policy. Either way the release is recorded on the SecurityEvent that
quarantined the pod (amtd.act.quarantine.releasing). Exit 0 when released, 2 when the pod is not
quarantined (or the target is malformed), 1 when the API server fails.
"""

from __future__ import annotations

import argparse
import os
import sys

HELP = "end a pod's quarantine: delete it (default) or --restore its labels"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the subcommand's arguments."""
    parser.add_argument("target", metavar="NAMESPACE/POD", help="the quarantined pod")
    parser.add_argument(
        "--restore", action="store_true", help="put the labels back instead of deleting the pod"
    )
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig (default $KUBECONFIG)")


def fail(code: int, message: str) -> int:
    """Print an error and return the exit code."""
    print(f"amtd release: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Release the pod; see the module docstring for exit codes."""
    from amtd.act.quarantine.releasing import NotQuarantinedError, release_pod
    from amtd.kube.api import Cluster
    from amtd.kube.apierrors import ApiError
    from amtd.model.targets import parse_target
    from amtd.model.timestamps import format_now

    try:
        target = parse_target(args.target)
    except ValueError as error:
        return fail(2, str(error))
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # read by the client's kubeconfig loader
    try:
        cluster = Cluster.connect()
    except Exception as error:  # any configuration problem: say what it was
        return fail(1, f"cannot configure the Kubernetes client: {error}")
    try:
        execution = release_pod(cluster, target, args.restore, format_now())
    except NotQuarantinedError as error:
        return fail(2, str(error))
    except ApiError as error:
        return fail(1, f"the API server failed: {error}")
    print(f"{execution.reason}: {execution.message}")
    return 0

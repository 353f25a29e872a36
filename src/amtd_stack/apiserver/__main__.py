"""Run the stand-in by hand: `python -m amtd_stack.apiserver --port 8001 --kubeconfig /tmp/kc`."""

from __future__ import annotations

import argparse
import signal
import threading

from .server import start_apiserver


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the URL (and writes a kubeconfig if asked)."""
    parser = argparse.ArgumentParser(prog="python -m amtd_stack.apiserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", help="write a kubeconfig here")
    parser.add_argument("--user", default="admin", help="the kubeconfig's (administrator) user")
    parser.add_argument("--no-workloads", action="store_true", help="no deployment/pod emulation")
    parser.add_argument("--authorization", action="store_true", help="enforce tokens and RBAC")
    args = parser.parse_args(argv)
    server = start_apiserver(args.host, args.port, not args.no_workloads, args.authorization)
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig, user=args.user)
    print(server.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()

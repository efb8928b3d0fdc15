"""The server's safety options for ``gem-rag serve`` and ``gem-rag demo``: API key, allowed Host names, limits.

Listening beyond loopback (``--host 0.0.0.0`` or any other non-loopback address) requires an API key; the
commands refuse to start without one, before loading the model.

Example:
    >>> options = app_options(args)      # -> create_app keywords; SystemExit naming the flag when unsafe
    >>> app = create_app(model, pipeline, **options)
"""

from __future__ import annotations

import argparse
import logging
import os
import socket

from gem_rag.server.limits import MIB, ServerLimits

logger = logging.getLogger(__name__)

API_KEY_ENV = "GEM_RAG_API_KEY"
ALLOWED_HOSTS_ENV = "GEM_RAG_ALLOWED_HOSTS"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--api-key, --allowed-hosts, --max-body-mb, --max-upload-mb, --uploads-quota-mb."""
    defaults = ServerLimits()
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help=f"require 'Authorization: Bearer KEY' on every /v1 and /api request (default: "
                             f"${API_KEY_ENV}); required when --host is not a loopback address")
    parser.add_argument("--allowed-hosts", default=None, metavar="NAMES",
                        help="comma-separated host names the server answers to besides 127.0.0.1, localhost, ::1 "
                             f"and the --host address (default: ${ALLOWED_HOSTS_ENV}); '*' turns the Host check off")
    parser.add_argument("--max-body-mb", type=_mebibytes, default=defaults.max_body_bytes / MIB, metavar="MIB",
                        help=f"largest JSON request body (default: {defaults.max_body_bytes / MIB:g} MiB)")
    parser.add_argument("--max-upload-mb", type=_mebibytes, default=defaults.max_upload_bytes / MIB, metavar="MIB",
                        help=f"largest upload request (default: {defaults.max_upload_bytes / MIB:g} MiB)")
    parser.add_argument("--uploads-quota-mb", type=_mebibytes, default=defaults.uploads_quota_bytes / MIB,
                        metavar="MIB", help=f"most the uploads folder may hold, all uploads together (default: "
                                            f"{defaults.uploads_quota_bytes / MIB:g} MiB)")


def _mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    if not value * MIB >= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of MiB")
    return value


def app_options(args: argparse.Namespace) -> dict:
    """``create_app`` keywords from the parsed options; SystemExit when --host is beyond loopback without a key."""
    from gem_rag.server.app import is_loopback

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if api_key is not None and not api_key.strip():
        raise SystemExit(f"the API key is empty: give one with --api-key KEY (or {API_KEY_ENV}), or leave both out")
    if not is_loopback(args.host) and not api_key:
        raise SystemExit(f"--host {args.host} listens beyond this machine: anyone who can reach it could use the "
                         f"API and upload files. Give an API key with --api-key KEY (or set {API_KEY_ENV}); "
                         f"clients then send 'Authorization: Bearer KEY'")
    extra = args.allowed_hosts if args.allowed_hosts is not None else os.environ.get(ALLOWED_HOSTS_ENV, "")
    limits = ServerLimits(max_body_bytes=int(args.max_body_mb * MIB), max_upload_bytes=int(args.max_upload_mb * MIB),
                          uploads_quota_bytes=int(args.uploads_quota_mb * MIB))
    return {"api_key": api_key or None, "limits": limits,
            "allowed_hosts": [*hosts_for_bind(args.host), *(h.strip() for h in extra.split(",") if h.strip())]}


def hosts_for_bind(host: str) -> list[str]:
    """The Host names a server listening on ``host`` is reached by: the address itself, or for a wildcard
    address (0.0.0.0, ::) this machine's name and the addresses it resolves to (others: --allowed-hosts)."""
    if host not in WILDCARD_HOSTS:
        return [host]
    names = [socket.gethostname()]
    try:
        names += sorted({info[4][0] for info in socket.getaddrinfo(names[0], None)})
    except OSError as err:  # a name without an address: only what --allowed-hosts adds
        logger.info("%s has no address (%s)", names[0], err)
    return names


def startup_notes(options: dict, url: str) -> list[str]:
    """Lines to print at start about the API key (the key itself is never printed)."""
    if not options.get("api_key"):
        return []
    return [f"API key required on /v1 and /api: send 'Authorization: Bearer KEY'; open the page as {url}?key=KEY"]

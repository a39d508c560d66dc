"""`cli.py serve`: the local web page and HTTP API on the models."""

from __future__ import annotations

import sys

from commands.options import add_asr, add_checkpoint, add_diarize, add_runtime_options, runtime_settings
from core.options import COUNT, MEGABYTES, PORT, POSITIVE, QUEUE


def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web page and HTTP API on the models",
        description="Serve a web page (upload a clip, watch its sentiment and emotions beside the video) and an HTTP API "
        "(POST /api/predict, GET /api/models, GET /api/health; schema at /api/openapi.json). The models load once.",
    )
    add_checkpoint(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=PORT, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--max-upload-mb", type=MEGABYTES, default=200, help="largest clip accepted (default 200)")
    p.add_argument("--workers", type=int, default=1, choices=(1, 2), help="clips analysed at the same time, each worker with its own copy of the models (default 1)")
    p.add_argument("--max-queue", type=QUEUE, default=4, help="requests that may wait for a worker; more get 503 (default 4)")
    p.add_argument("--max-clip-seconds", type=POSITIVE, default=600, help="longest clip accepted, in seconds; longer ones get 413 (default 600)")
    p.add_argument("--max-utterances", type=COUNT, default=500, help="most utterances a transcript may have; more get 413 (default 500)")
    p.add_argument("--time-limit", type=POSITIVE, default=300, metavar="SECONDS",
                   help="a prediction (or preview) running longer is stopped, its worker process killed and replaced; the "
                        "client gets 503 (default 300)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a further host name the server answers to (repeat for several; '*' for any, which lets web pages of "
                        "other domains reach it by DNS rebinding); default: 127.0.0.1, localhost and ::1, plus this "
                        "machine's names and addresses with --host 0.0.0.0")
    add_asr(p, recorded=True)
    add_diarize(p, recorded=True)
    add_runtime_options(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from core.network import is_loopback
    from pipeline.serving.app import create_app, host_names
    from pipeline.serving.server import address, bind, run_server
    from pipeline.serving.worker import start_workers

    sock = bind(args.host, args.port)  # before the models load, so a taken port fails at once
    print(f"loading the models ({args.checkpoint or 'default'})...", file=sys.stderr)
    workers = start_workers(args.checkpoint, args.workers, asr=args.asr, runtime=runtime_settings(args), time_limit=args.time_limit,
                            diarize=args.diarize, speakers=args.speakers)
    try:
        app = create_app(workers, max_upload_mb=args.max_upload_mb, max_queue=args.max_queue, max_clip_seconds=args.max_clip_seconds,
                         max_utterances=args.max_utterances, allowed_hosts=host_names(args.host, args.allowed_host))
    except BaseException:
        for w in workers:
            w.close()
        raise
    url = address(sock)
    if is_loopback(args.host):
        print(f"serving on {url} (this machine only; --host 0.0.0.0 serves other machines too). Ctrl-C stops.", file=sys.stderr)
    else:
        print(f"serving on {url}\nwarning: --host {args.host} is reachable from other machines; the server has no authentication "
              "and runs anything uploaded through ffmpeg. Ctrl-C stops.", file=sys.stderr)
    run_server(app, sock)  # returns on SIGINT / SIGTERM with the signal re-raised: cli.py prints "interrupted", exit 130
    return 0

"""The ``iei-match`` command: the engine's commands plus ``serve``, ``demo`` and ``admin``."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from iei_match import cli as engine_cli
from iei_match.errors import IeiMatchError

from .errors import ServiceError
from .settings import PREFIX, Settings, SettingsError


def _settings(args) -> Settings:
    overrides = {}
    for name in ("data_dir", "database_url", "host", "port"):
        value = getattr(args, name, None)
        if value not in (None, ""):
            overrides[name] = value
    return Settings.from_env(**overrides)


def _database(settings: Settings):
    from .db.engine import Database, upgrade

    db = Database(settings.database_url)
    upgrade(db.engine)
    return db


# Seconds a worker process has to answer its supervisor's health check before it is killed
# and replaced. uvicorn's 5 s killed workers that were still importing the engine on a busy
# machine of 2 cores, over and over; a worker loads a model for seconds at its start.
WORKER_HEALTHCHECK_S = 120


def _serve(settings: Settings) -> int:
    import uvicorn

    from .app import create_app
    from .http_timeouts import protocol

    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # LightGBM threads yield the CPU
    print(f"serving on http://{settings.host}:{settings.port}/ (API docs at /docs); "
          f"data in {settings.data_dir}; {settings.workers} worker process"
          f"{'es' if settings.workers > 1 else ''}", file=sys.stderr, flush=True)
    # On SIGTERM uvicorn stops taking connections, finishes the requests in flight (up to
    # 30 s), shuts the app down and then raises SIGTERM again; that one ends the process
    # with status 0, as a stop that was asked for and carried out.
    signal.signal(signal.SIGTERM, _stopped)
    if settings.workers > 1:
        # Each worker is a new interpreter that builds the app from the environment: the
        # settings given on the command line go there first.
        os.environ.update({PREFIX + "DATA_DIR": str(settings.data_dir),
                           PREFIX + "DATABASE_URL": settings.database_url,
                           PREFIX + "HOST": settings.host, PREFIX + "PORT": str(settings.port),
                           PREFIX + "WORKERS": str(settings.workers)})
        # The supervisor accepts and hands each connection to the worker that holds the
        # fewest (handoff.py): with a shared listening socket, keep-alive clients that
        # connect together stay with one worker. It replaces this process (same id,
        # signals and exit status), without the engine this one has imported: 215 MB less.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [
            sys.executable, "-m", "iei_match_service.handoff", "--host", settings.host,
            "--port", str(settings.port), "--workers", str(settings.workers),
            "--healthcheck", str(WORKER_HEALTHCHECK_S)])
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="info", timeout_graceful_shutdown=30,
                http=protocol(settings.header_timeout_s))
    return 0


def _stopped(signum, frame) -> None:
    raise SystemExit(0)


def cmd_serve(args) -> int:
    return _serve(_settings(args))


def cmd_demo(args) -> int:
    from .demo import demo_keys, seed

    settings = _settings(args)
    db = _database(settings)
    with db.session() as s:
        orgs = seed(s)
        keys = demo_keys(s, orgs)
    db.dispose()
    print("Demo alliance ready. API keys (shown once; send as 'Authorization: Bearer <key>'):")
    for role, org, key in keys:
        print(f"  {role:<12} {org}\n               {key}")
    if args.no_serve:
        return 0
    print(f"Open http://{settings.host}:{settings.port}/ in a browser and sign in with one of "
          "these keys (在浏览器中打开上面的地址，用其中一个密钥登录).")
    return _serve(settings)


def cmd_create_org(args) -> int:
    from .api.orgs import add_organization
    from .schemas import OrgIn

    db = _database(_settings(args))
    with db.session() as s:
        org = add_organization(s, OrgIn(kind=args.kind, name=args.name,
                                        college_type=args.college_type,
                                        province=args.province, city=args.city,
                                        alliance_id=args.alliance))
        s.flush()
        org_id = org.id
    print(org_id)
    return 0


def cmd_create_key(args) -> int:
    from .auth import create_key

    db = _database(_settings(args))
    with db.session() as s:
        key = create_key(s, args.org, args.role)
    print(key)
    return 0


def cmd_list_keys(args) -> int:
    from sqlalchemy import select

    from .db.tables import ApiKey

    db = _database(_settings(args))
    with db.session() as s:
        rows = s.scalars(select(ApiKey).order_by(ApiKey.id)).all()
        print("prefix        role         org  created                    revoked")
        for k in rows:
            revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
            print(f"{k.prefix:<13} {k.role:<12} {k.org_id:>4}  "
                  f"{k.created_at.isoformat(timespec='seconds'):<26} {revoked}")
    return 0


def cmd_revoke_key(args) -> int:
    from .auth import revoke_key

    db = _database(_settings(args))
    with db.session() as s:
        key, already = revoke_key(s, args.prefix)
        when = key.revoked_at.isoformat(timespec="seconds")
    print(f"key {key.prefix} ({key.role}, organisation {key.org_id}) "
          f"{'was already revoked' if already else 'revoked'} at {when}")
    return 0


def cmd_import(args) -> int:
    from .auth import Principal
    from .imports import import_file

    db = _database(_settings(args))
    # The command line acts as an admin: whoever runs it can open the database anyway.
    who = Principal(key_id=0, role="admin", org_id=0)
    with db.session() as s:
        ids = import_file(s, who, args.kind, args.file, default_org=args.org)
    print(f"imported {len(ids)} {args.kind} (ids {ids[0]}-{ids[-1]})")
    return 0


def cmd_prune(args) -> int:
    from .housekeeping import prune

    settings = _settings(args)
    db = _database(settings)
    try:
        done = prune(settings, db)
    finally:
        db.dispose()
    print(f"removed {len(done['versions'])} model versions"
          f"{': ' + ', '.join(done['versions']) if done['versions'] else ''} and the files of "
          f"{len(done['jobs'])} jobs")
    return 0


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default $IEI_MATCH_DATA_DIR or "
                   "./iei-match-data)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default $IEI_MATCH_DATABASE_URL "
                   "or SQLite in the data directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = engine_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    for name, helptext, func in (
        ("serve", "serve the REST API (default http://127.0.0.1:8000/)", cmd_serve),
        ("demo", "seed a demo alliance, print a key for each role, and serve it", cmd_demo),
    ):
        p = sub.add_parser(name, help=helptext)
        _db_options(p)
        p.add_argument("--host", help="address to bind (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default 8000)")
        if name == "demo":
            p.add_argument("--no-serve", action="store_true", help="seed and print keys only")
        p.set_defaults(func=func)

    admin = sub.add_parser("admin", help="organisations, API keys (create, list, revoke) "
                           "and bulk import")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    o = asub.add_parser("create-org", help="create an organisation; prints its id")
    o.add_argument("--kind", required=True, choices=("enterprise", "college", "alliance"))
    o.add_argument("--name", required=True)
    o.add_argument("--alliance", type=int, help="id of the alliance it joins")
    o.add_argument("--college-type", choices=("中职", "高职", "职教本科", "本科", "技工院校"))
    o.add_argument("--province", default="")
    o.add_argument("--city", default="")
    _db_options(o)
    o.set_defaults(func=cmd_create_org)
    k = asub.add_parser("create-key", help="create an API key; prints it once")
    k.add_argument("--org", type=int, required=True)
    k.add_argument("--role", required=True,
                   choices=("enterprise", "college", "coordinator", "admin"))
    _db_options(k)
    k.set_defaults(func=cmd_create_key)
    lk = asub.add_parser("list-keys", help="list API keys by prefix (never the keys)")
    _db_options(lk)
    lk.set_defaults(func=cmd_list_keys)
    rk = asub.add_parser("revoke-key", help="revoke an API key at once, by its prefix")
    rk.add_argument("prefix", help="the key's prefix: the part after 'iem_' up to the next "
                    "'_' (as list-keys shows it)")
    _db_options(rk)
    rk.set_defaults(func=cmd_revoke_key)
    i = asub.add_parser("import", help="import a CSV/XLSX file: every row or none")
    i.add_argument("--kind", required=True,
                   choices=("needs", "programs", "bases", "organizations"))
    i.add_argument("--file", required=True)
    i.add_argument("--org", type=int, help="owner of rows without an org_id column")
    _db_options(i)
    i.set_defaults(func=cmd_import)
    pr = asub.add_parser("prune", help="remove old model versions and old jobs' files "
                         "(IEI_MATCH_KEEP_VERSIONS, IEI_MATCH_KEEP_JOB_DAYS)")
    _db_options(pr)
    pr.set_defaults(func=cmd_prune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (IeiMatchError, ServiceError, SettingsError) as exc:
        print(f"error: {exc.message if isinstance(exc, ServiceError) else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

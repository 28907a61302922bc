"""The production image's layout, checked without a container engine.

The Dockerfile's final stage is read, the files it copies are laid out the same way in a
scratch directory (with the project's dependencies, but not its source tree), and the
image's entrypoint and command are run there in production mode: migrations on start,
`/healthz` against the database, static files and htmx, a signed link opened, a page
rendered. A file the app needs at run time but the Dockerfile forgets to copy fails here.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal.company.models import Company
from portal.db import make_engine, make_session_factory, transaction
from portal.settings import PROJECT_ROOT
from tests.conftest import POSTGRES_URL, create_postgres_database
from tests.factories import make_customer, make_invoice

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
APP_DIR = "/app"  # the final stage's WORKDIR
SECRET = "image-layout-check-" + "k" * 40


@dataclass(frozen=True)
class FinalStage:
    copies: list[tuple[list[str], str, str | None]]  # (sources, destination, --from stage)
    user: str
    entrypoint: list[str]
    command: list[str]
    env: dict[str, str]
    healthcheck: str


def read_final_stage(text: str) -> FinalStage:
    """The instructions after the last FROM (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    copies: list[tuple[list[str], str, str | None]] = []
    user = entrypoint = command = healthcheck = None
    env: dict[str, str] = {}
    for line in instructions[last_from + 1 :]:
        keyword, _, rest = line.partition(" ")
        if keyword == "COPY":
            words = shlex.split(rest)
            stage = None
            if words[0].startswith("--from="):
                stage = words.pop(0).removeprefix("--from=")
            copies.append((words[:-1], words[-1], stage))
        elif keyword == "USER":
            user = rest.strip()
        elif keyword == "ENTRYPOINT":
            entrypoint = exec_form(rest)
        elif keyword == "CMD":
            command = exec_form(rest)
        elif keyword == "HEALTHCHECK":
            healthcheck = rest
        elif keyword == "ENV":
            env.update(dict(shlex.split(pair)[0].split("=", 1) for pair in rest.split()))
    if not (user and entrypoint and command and healthcheck):
        raise AssertionError("the final stage lacks USER, ENTRYPOINT, CMD or HEALTHCHECK")
    return FinalStage(copies, user, entrypoint, command, env, healthcheck)


def exec_form(text: str) -> list[str]:
    """An exec-form instruction's argument list."""
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AssertionError(f"not an exec-form list: {text}")
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lay_out(stage: FinalStage, root: Path) -> None:
    """Copy what the final stage copies, from the project (the assets stage's /app is
    the project too: it runs npm ci on the same package files)."""
    for sources, destination, _stage in stage.copies:
        for source in sources:
            origin = PROJECT_ROOT / source.removeprefix(APP_DIR + "/")
            target = root / destination.removeprefix("./").removeprefix(APP_DIR + "/")
            if destination.endswith("/") and not origin.is_dir():
                target = target / origin.name
            assert origin.exists(), f"the Dockerfile copies {source}, which does not exist"
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    (root / "var" / "documents").mkdir(parents=True)


def install_environment(root: Path) -> Path:
    """A virtual environment that sees the project's dependencies but not its source tree:
    ``portal`` is importable only from ``root``, as after the image's ``pip install -e .``."""
    venv = root / ".image-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # A plain path line: the dependencies' directory joins sys.path, but its .pth files
    # (among them the development checkout's editable install) are not run.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (site / "relance-image.pth").write_text(str(root) + "\n")
    launcher = venv / "bin" / "portal"
    # What pip writes for the [project.scripts] entry.
    launcher.write_text(
        f"#!{venv / 'bin' / 'python'}\n"
        "import sys\n"
        "from portal.cli import main\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )
    launcher.chmod(0o755)
    return venv


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if POSTGRES_URL:
        url, drop = create_postgres_database(POSTGRES_URL)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'image.db'}"


def get(
    port: int, path: str, cookie: str | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[None]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(timeout=20)


def wait_healthy(port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, _headers, _body = get(port, "/healthz")
            if status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the image's command never became healthy:\n{log.read_text()}")


def test_the_final_stage_runs_as_a_non_root_user_with_a_health_check() -> None:
    stage = read_final_stage(DOCKERFILE.read_text())
    uid = stage.user.split(":")[0]
    assert uid not in ("0", "root")
    assert "/healthz" in stage.healthcheck
    assert stage.env["PORTAL_ENVIRONMENT"] == "production"


def test_the_image_layout_migrates_serves_and_renders_a_portal_page(
    database_url: str,
) -> None:
    stage = read_final_stage(DOCKERFILE.read_text())
    # Outside pytest's private temporary directory, so nothing else is in reach.
    root = Path(tempfile.mkdtemp(prefix="relance-image-"))
    try:
        lay_out(stage, root)
        venv = install_environment(root)
        port = free_port()
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(root / "var"),
            **stage.env,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_SECRET_KEYS": SECRET,
            "PORTAL_BASE_URL": "https://pay.example.com",
            "PORTAL_MIGRATE_ON_START": "1",
            "WEB_CONCURRENCY": "2",
        }
        entrypoint = [str(root / stage.entrypoint[0].removeprefix(APP_DIR + "/"))]
        command = [
            part.replace("--host 0.0.0.0 --port 8000", f"--host 127.0.0.1 --port {port}")
            for part in stage.command
        ]
        log = root / "var" / "server.log"
        with running(entrypoint + command, env, root, log):
            wait_healthy(port, log)
            assert "applying database migrations" in log.read_text()

            engine = make_engine(database_url)
            try:
                with transaction(make_session_factory(engine)) as db:
                    company = db.query(Company).one()  # created by the app on start
                    customer = make_customer(db, company, reference="IMG-1", name="Image Check")
                    make_invoice(db, customer, number="IMG-INV-1", amount_minor=12_345)
            finally:
                engine.dispose()

            linked = subprocess.run(
                [*entrypoint, "portal", "link", "IMG-1"],
                cwd=root, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            link = linked.stdout.strip().splitlines()[-1]
            assert link.startswith("https://pay.example.com/l/")

            try:
                status, headers, _body = get(port, urlsplit(link).path)
            except OSError:
                raise AssertionError(log.read_text()) from None
            assert status == 303, _body
            jar: SimpleCookie = SimpleCookie()
            for value in headers.get_all("set-cookie") or []:
                jar.load(value)
            session = jar["__Host-relance_session"]
            assert "Secure" in (headers.get_all("set-cookie") or [""])[0]

            status, headers, body = get(port, "/", f"__Host-relance_session={session.value}")
            assert status == 200
            assert b"Image Check" in body
            assert b"IMG-INV-1" in body
            assert "max-age" in headers["strict-transport-security"]
            assert b"/static/vendor/htmx.min.js" in body

            for asset in (
                "/static/vendor/htmx.min.js",
                "/static/css/portal.css",
                "/static/js/copy.js",
            ):
                status, _headers, asset_body = get(port, asset)
                assert status == 200, asset
                assert asset_body, asset

        # Nothing was served from the development checkout.
        imported = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import portal; print(portal.__file__)"],
            cwd="/", env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert imported.stdout.strip() == str(root / "portal" / "__init__.py")
    finally:
        shutil.rmtree(root, ignore_errors=True)

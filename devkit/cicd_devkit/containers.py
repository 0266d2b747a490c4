"""Container images for the tests of the job pods, made on this machine (no registry).

Each image is a root file system of Debian's statically linked busybox (``busybox-static``):
a shell and the usual commands, ``wget``, ``nc`` and ``httpd`` among them, imported into
podman's store under a ``localhost/`` name. :data:`HTTPD_IMAGE` serves ``/www`` on port 8080
when it starts (a service container); :data:`BUSYBOX_IMAGE` has no command of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from cicd_orchestrator.actions import containers

BUSYBOX_IMAGE = "localhost/cicd-test-busybox:1"
HTTPD_IMAGE = "localhost/cicd-test-httpd:1"
#: a page the service image serves
SERVED = "served by the service container"
#: in the environment of CI: the container tests fail rather than skip when podman is missing
REQUIRE_VAR = "CICD_REQUIRE_CONTAINERS"
_BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")


def _static_busybox() -> str | None:
    for path in _BUSYBOX:
        if os.path.isfile(path):
            out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False)
            if "not a dynamic executable" in out.stdout + out.stderr:
                return path
    return None


def unavailable() -> str | None:
    """Why the job pods cannot be tested here, or None."""
    containers.forget_engine()
    try:
        engine = containers.detect_engine()
    except containers.EngineBusy as exc:
        return f"podman cannot be asked: {exc}"
    if engine is None or engine.name != "podman":
        return "podman does not answer 'info' here (make container-prerequisites)"
    if _static_busybox() is None:
        return "no statically linked busybox (Debian's busybox-static)"
    return None


def _import(podman: str, root: Path, name: str, changes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="cicd-image-") as tmp:
        archive = Path(tmp, "rootfs.tar")
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        argv = ["import"]
        for change in changes:
            argv += ["--change", change]
        containers.run_engine(podman, *argv, str(archive), name)


def build_images() -> None:
    """Make both images when podman's store lacks them."""
    engine = containers.detect_engine()
    busybox = _static_busybox()
    assert engine is not None and busybox is not None, unavailable()
    have = containers.run_engine(
        engine.executable, "images", "--format", "{{.Repository}}:{{.Tag}}"
    ).split()
    if BUSYBOX_IMAGE in have and HTTPD_IMAGE in have:
        return
    with tempfile.TemporaryDirectory(prefix="cicd-rootfs-") as tmp:
        root = Path(tmp, "root")
        for folder in ("bin", "tmp", "etc", "www", "root"):
            (root / folder).mkdir(parents=True)
        (root / "tmp").chmod(0o1777)
        shutil.copy2(busybox, root / "bin" / "busybox")
        applets = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "www" / "index.html").write_text(SERVED + "\n")
        env = "ENV PATH=/usr/local/bin:/usr/bin:/bin"
        _import(engine.executable, root, BUSYBOX_IMAGE, [env])
        serve = 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]'
        _import(engine.executable, root, HTTPD_IMAGE, [env, serve])

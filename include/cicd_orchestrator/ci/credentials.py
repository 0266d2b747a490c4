"""git over HTTPS with a token of the hosting (GitHub, GitLab): the token in git's environment.

``GIT_ASKPASS`` names a fixed script that prints ``$CICD_GIT_TOKEN`` when git asks for a
password (and ``$CICD_GIT_USERNAME`` for a user name). Neither the URL nor any command line
nor the script carries the token, and credential helpers are switched off so that git does
not store it.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import register_secret

TOKEN_ENV = "CICD_GIT_TOKEN"
USERNAME_ENV = "CICD_GIT_USERNAME"
#: the user name git gives when none is set (GitHub's, for a token of any kind)
DEFAULT_USERNAME = "x-access-token"

ASKPASS_SCRIPT = f"""#!/bin/sh
# git credential prompt helper of the CI/CD Failure Orchestrator: it answers git's prompts
# from the environment, so the token never appears in a URL or on a command line.
case "$1" in
  Username*|username*) printf '%s\\n' "${{{USERNAME_ENV}:-{DEFAULT_USERNAME}}}" ;;
  *) printf '%s\\n' "${{{TOKEN_ENV}}}" ;;
esac
"""

_lock = threading.Lock()


def askpass_path() -> Path:
    """The askpass script (written once per user into a private folder; it holds no secret)."""
    folder = Path(tempfile.gettempdir()) / f"cicd-orchestrator-{os.getuid()}"
    script = folder / "git-askpass.sh"
    with _lock:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
            raise ProviderError(f"{folder} is not a private folder of this user")
        try:
            current = script.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != ASKPASS_SCRIPT:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".askpass.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(ASKPASS_SCRIPT)
            os.chmod(tmp, 0o700)
            os.replace(tmp, script)
    return script


def git_credential_env(token: str, username: str = DEFAULT_USERNAME) -> dict[str, str]:
    """Environment that lets git authenticate with ``token`` over HTTPS."""
    register_secret(token)
    return {
        "GIT_ASKPASS": str(askpass_path()),
        TOKEN_ENV: token,
        USERNAME_ENV: username,
        "GIT_TERMINAL_PROMPT": "0",
        # no credential helper may store the token (an empty value resets the list)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
    }

"""How the GitHub provider talks to GitHub's REST API: requests through PyGithub's
``Requester``, conditional GETs, pages, downloads behind a redirect, and errors.

- Reads are conditional (ETag / If-None-Match, cached per URL): polling a branch with no new
  failure is answered ``304 Not Modified``, which GitHub does not count.
- The rate limit left is read from every answer; errors become ProviderError (redacted), a
  404 an unknown repository or run.
- A download (a log, a log archive) follows the API's redirect to a pre-signed URL and is
  streamed into a temporary file within a size limit.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from cicd_orchestrator.ci.github.archive import ArchiveLimits, copy_limited
from cicd_orchestrator.ci.github.auth import (
    DEFAULT_GIT_USERNAME,
    DEFAULT_TIMEOUT,
    install_log_filter,
    token_of,
)
from cicd_orchestrator.ci.github.ratelimit import EtagCache, retry_delay
from cicd_orchestrator.ci.hosted import HostedOptions, HostedProvider
from cicd_orchestrator.ci.retry import BackoffPolicy
from cicd_orchestrator.exceptions import ProviderError

if TYPE_CHECKING:
    from github import Github
    from github.Repository import Repository

_REDIRECTS = (301, 302, 303, 307, 308)


class GitHubOptions(HostedOptions["Github"], total=False):
    """The settings of the GitHub provider (keyword arguments of its constructor)."""

    #: the API's URL (default: the client's)
    base_url: str | None
    #: ETags and bodies of earlier answers (one per provider by default)
    etag_cache: EtagCache | None
    #: at most this many pages of runs are listed
    max_run_pages: int
    #: the limits a run's log archive is extracted within
    archive_limits: ArchiveLimits | None


class GitHubRest(HostedProvider["Github"]):
    """The REST plumbing of ``GitHubProvider``: it counts requests (``requests``), 304
    answers (``not_modified``) and the rate limit left (``rate_remaining``)."""

    service = "GitHub"
    default_timeout = DEFAULT_TIMEOUT
    default_git_username = DEFAULT_GIT_USERNAME

    def __init__(self, client: Github | None, options: GitHubOptions) -> None:
        super().__init__(client, options)
        self._base_url = options.get("base_url")
        self.etags = options.get("etag_cache") or EtagCache()
        self.requests = 0
        self.not_modified = 0
        self.rate_remaining: int | None = None
        self._repo_cache: dict[str, dict[str, Any]] = {}
        install_log_filter()

    @property
    def base_url(self) -> str:
        return (self._base_url or self.client.requester.base_url).rstrip("/")

    def _retry_delay(self, exc: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
        return retry_delay(exc, attempt, policy)

    def _client_token(self) -> str:
        return token_of(self.client)

    def _client_error(self) -> type[Exception]:
        from github import GithubException

        return GithubException

    def _error_text(self, exc: Exception) -> str:
        data = getattr(exc, "data", None)
        message = getattr(exc, "message", None) or (data if isinstance(data, dict) else {}).get(
            "message"
        )
        return str(message or exc)

    # ------------------------------------------------------------------ requests
    def _raw(
        self,
        verb: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], Any]:
        """One request through PyGithub's requester: (status, headers, JSON or None)."""
        requester = self.client.requester
        status, resp_headers, output = requester.requestJson(
            verb, path, params or None, dict(headers or {}), body
        )
        self.requests += 1
        remaining = resp_headers.get("x-ratelimit-remaining")
        if remaining is not None and str(remaining).isdigit():
            self.rate_remaining = int(remaining)
        data = _json_of(status, output)
        if status >= 400:
            raise requester.createException(status, resp_headers, data)
        return status, resp_headers, data

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """A conditional GET: the cached body when GitHub answers 304 Not Modified."""
        key = f"{path}?{urlencode(sorted((params or {}).items()))}"
        cached = self.etags.get(key)
        headers = {"If-None-Match": cached.etag} if cached else {}
        status, resp_headers, data = self._raw("GET", path, params, headers=headers)
        if status == 304 and cached is not None:
            self.not_modified += 1
            self.etags.hit()
            return cached.data, resp_headers
        etag = resp_headers.get("etag")
        if etag and data is not None:
            self.etags.put(key, etag, data)
        return data, resp_headers

    def _get_paged(
        self,
        path: str,
        key: str | None,
        params: dict[str, Any] | None = None,
        max_pages: int = 10,
        stop: Callable[[list[Any]], bool] | None = None,
    ) -> list[Any]:
        items: list[Any] = []
        for page in range(1, max_pages + 1):
            query = {**(params or {}), "per_page": 100, "page": page}
            data, headers = self._get(path, query)
            chunk = list((data or {}).get(key, []) if key else (data or []))
            items.extend(chunk)
            if 'rel="next"' not in str(headers.get("link", "")) or (stop and stop(chunk)):
                break
        return items

    def _download(self, path: str, what: str, limit: int) -> Path:
        """Follow the API's redirect to the download URL and stream the body into a temp file
        (the download URL is pre-signed: no credential is sent to it)."""
        import requests

        def fetch() -> Path:
            status, headers, _ = self._raw("GET", path)
            location = headers.get("location")
            if status not in _REDIRECTS or not location:
                raise ProviderError(f"{what}: expected a redirect to the download, got {status}")
            fd, name = tempfile.mkstemp(prefix="cicd-gh-", suffix=".download")
            target = Path(name)
            try:
                with (
                    os.fdopen(fd, "wb") as out,
                    requests.get(location, stream=True, timeout=self.timeout) as resp,
                ):
                    resp.raise_for_status()
                    resp.raw.decode_content = True
                    copy_limited(resp.raw, out, limit, what)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return target

        return self._retry(what, fetch)

    # ------------------------------------------------------------------ the repository
    def _repo_data(self, repo: str) -> dict[str, Any]:
        if repo not in self._repo_cache:
            data, _ = self._retry(f"get {repo}", lambda: self._get(f"/repos/{repo}"))
            self._repo_cache[repo] = data
        return self._repo_cache[repo]

    def _repo(self, repo: str) -> Repository:
        """PyGithub's Repository, built from the (conditionally fetched) repository data."""
        from github.Repository import Repository

        return Repository(self.client.requester, {}, self._repo_data(repo), completed=True)

    def _default_branch(self, repo: str) -> str:
        with self._errors(f"reading {repo}"):
            return str(self._repo_data(repo)["default_branch"])

    def _clone_url(self, repo: str) -> str:
        with self._errors(f"reading {repo}"):
            return str(self._repo_data(repo)["clone_url"])


def _json_of(status: int, output: Any) -> Any:
    """An answer's body as JSON (a short message for an error page that is not JSON)."""
    if not output:
        return None
    try:
        return json.loads(output)
    except ValueError:
        if status < 300:
            raise
        return {"message": str(output)[:200]}

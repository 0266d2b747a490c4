"""What the REST APIs of the GitHub- and GitLab-compatible servers share: a route table whose
handlers answer ``(status, payload, extra headers)``, and payloads built from the documented
examples of the service (``fixtures/``) with the server's URLs and a repository filled in."""

from __future__ import annotations

import abc
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from cicd_orchestrator.exceptions import UnknownRepositoryError, UnknownRunError

Result = tuple[int, Any, dict[str, str]]
Route = tuple[str, str, Callable[..., Result]]


class ApiError(Exception):
    """An error answer of the API (``status``, ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RoutedApi(abc.ABC):
    """Routes (method, path pattern, handler) and their dispatch; a handler gets the route's
    named groups (as ``arguments`` prepares them), ``query``, ``body`` and the ``user`` who
    asks. An unknown repository or run is a 404."""

    #: the messages of a 404 for a missing object, of an unknown path, of a wrong method
    GONE: ClassVar[str] = "Not Found"
    NO_ROUTE: ClassVar[str] = "Not Found"
    WRONG_METHOD: ClassVar[str] = "Not Found"

    def __init__(self) -> None:
        self.routes = [(m, re.compile(f"^{p}$"), handler) for m, p, handler in self.table()]

    @abc.abstractmethod
    def table(self) -> list[Route]:
        """(method, path pattern, handler) of every route."""

    def arguments(self, match: re.Match[str]) -> dict[str, Any]:
        """The handler's arguments from the route's match."""
        return match.groupdict()

    def body(self, body: Any) -> Any:
        """The handler's ``body`` from the request's JSON."""
        return body

    def dispatch(
        self, method: str, path: str, query: dict[str, str], body: Any, user: str = ""
    ) -> Result:
        allowed = False
        for verb, pattern, handler in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            if verb != method:
                allowed = True
                continue
            args = self.arguments(match)
            try:
                return handler(query=query, body=self.body(body), user=user, **args)
            except (UnknownRepositoryError, UnknownRunError) as exc:
                raise ApiError(404, self.GONE) from exc
        raise ApiError(405, self.WRONG_METHOD) if allowed else ApiError(404, self.NO_ROUTE)


@functools.cache
def read_fixture(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


class FixturePayloads:
    """Builds payloads for one server (its API and web URLs) from the documented examples."""

    FIXTURES: ClassVar[Path]
    #: (an example's URL, the attribute holding the server's URL), replaced in this order
    EXAMPLE_URLS: ClassVar[tuple[tuple[str, str], ...]]
    #: the repositories the examples name (replaced by the payload's repository)
    EXAMPLE_REPOS: ClassVar[tuple[str, ...]]

    def __init__(self, api_url: str, web_url: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.web_url = web_url.rstrip("/")

    def load(self, name: str, repo: str | None = None) -> dict[str, Any]:
        text = read_fixture(self.FIXTURES, f"{name}.json")
        for example, attribute in self.EXAMPLE_URLS:
            text = text.replace(example, getattr(self, attribute))
        if repo:
            for example in self.EXAMPLE_REPOS:
                text = text.replace(example, repo)
        data = json.loads(text)
        assert isinstance(data, dict)
        return data

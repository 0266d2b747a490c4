"""Servers that speak the GitHub, GitLab and Jenkins APIs on loopback, backed by the local CI
provider: the whole loop runs through PyGithub, python-gitlab and python-jenkins in tests,
the demo and the benchmarks, as it would against the real services."""

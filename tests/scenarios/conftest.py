"""The commit folders hold other projects' sources and tests: material for the local CI, never
tests of this project (``tests/integration/test_real_projects.py`` replays them)."""

collect_ignore_glob = ["*"]

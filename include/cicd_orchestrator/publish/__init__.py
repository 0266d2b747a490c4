"""Publishing: fix branches and pull requests, re-runs, the escalation issue, markers."""

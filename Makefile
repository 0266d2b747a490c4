# CI/CD Failure Orchestrator: `make demo`, `make test`, `make lint`, `make bench-*`.
SHELL := /bin/bash
# the project's modules keep their compiled bytecode: the many processes a run starts (a
# push's hook, the CI run processes, Airflow's tasks) then do not compile them again
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIOS ?= ../shared/scenarios
CIDIFF ?= ../shared/datasets/cidiff
# The runner tool folder: the tools repository commands may use (runner-tools.txt), in a
# virtual environment of its own, never the orchestrator's (see runner_tools.py). Made from
# the system's python (under /usr, which the command sandbox shows) when it has venv.
RUNNER_TOOLS := .venv-runner
RUNNER_STAMP := $(RUNNER_TOOLS)/.installed
RUNNER_PYTHON ?= $(shell /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null \
	&& echo /usr/bin/python3 || echo $(PYTHON))

.PHONY: venv runner-tools sandbox-prerequisites container-prerequisites demo test test-slow test-integration test-all lint \
	bench-fixrate bench-logs bench-load bench-overhead bench-pages clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml devkit/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e . -e devkit
	touch $(STAMP)

$(RUNNER_STAMP): runner-tools.txt constraints.txt
	rm -rf $(RUNNER_TOOLS)
	$(RUNNER_PYTHON) -m venv $(RUNNER_TOOLS)
	$(RUNNER_TOOLS)/bin/pip install -q -r runner-tools.txt -c constraints.txt
	touch $(RUNNER_STAMP)

venv: $(STAMP) $(RUNNER_STAMP)

runner-tools: $(RUNNER_STAMP)

# Repository commands run in a bubblewrap sandbox (include/cicd_orchestrator/sandbox.py):
# installs Debian's bubblewrap when missing (as root, or with sudo).
sandbox-prerequisites:
	@command -v bwrap >/dev/null || { \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		echo "installing Debian packages: bubblewrap"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	}

# Jobs with container:, services: or image: run in a podman pod of their own
# (include/cicd_orchestrator/actions/pod.py): installs Debian's podman, runc and
# busybox-static (the test images), gives podman's user namespaces an id range, and where
# the host's limits cannot be raised sets the containers' limits to the host's own.
container-prerequisites:
	@command -v podman >/dev/null && command -v runc >/dev/null && dpkg -s busybox-static >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		echo "installing Debian packages: podman runc busybox-static"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc \
			busybox-static >/dev/null; \
	}
	@sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	for f in /etc/subuid /etc/subgid; do \
		grep -q '^containers:' $$f 2>/dev/null || \
			echo "containers:2147483647:2147483648" | $$sudo tee -a $$f >/dev/null; \
	done; \
	conf=/etc/containers/containers.conf.d/50-cicd-orchestrator.conf; \
	test -e $$conf || { \
		files=$$(ulimit -Hn); procs=$$(ulimit -Hu); pids=$$(cat /proc/sys/kernel/pid_max); \
		[ "$$procs" = unlimited ] || [ "$$procs" -gt "$$pids" ] && procs=$$pids; \
		$$sudo mkdir -p $$(dirname $$conf); \
		printf '%s\n' '# written by make container-prerequisites' '[containers]' \
			"default_ulimits = [\"nofile=$$files:$$files\", \"nproc=$$procs:$$procs\"]" \
			'[engine]' 'runtime = "runc"' | $$sudo tee $$conf >/dev/null; \
	}

demo: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	$(BIN)/python scripts/demo.py

# The README's test command: the unit, DAG and security tests but the slow ones, on every core
# (pytest-xdist: most of their time is spent waiting on git, the sandbox and the test servers;
# an idle worker takes queued tests from a busy one, so the longest tests do not end alone).
# The slow tests and the tiers that start a real Airflow have targets of their own;
# `make test-all` (and CI) runs every tier.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 2 ? 4 : 2 * n )))
FAST_TESTS := tests/unit tests/dags tests/security
test: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10 -m "not slow" $(FAST_TESTS)

# the same folders' slow tests: whole attempts through each hosting, real tool installs, real
# containers, Airflow's start-up in a new interpreter, the 50 MB log, the cidiff pairs, the
# corpus scenarios
test-slow: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites container-prerequisites
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10 -m slow $(FAST_TESTS)

# real Airflow (scheduler, triggerer, API server) on a temporary home, one stack per module
test-integration: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites container-prerequisites
	$(BIN)/pytest -q --durations=10 tests/integration

test-all: test test-slow test-integration test-distributed

lint: $(STAMP)
	$(BIN)/ruff check include devkit dags plugins tests bench scripts
	$(BIN)/ruff format --check include devkit dags plugins tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench-fixrate: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	$(BIN)/python bench/bench_fixrate.py $(SCENARIOS)

# 50 sessions at once through the GitHub-compatible server (a canary token as the credential,
# looked for everywhere afterwards); `make bench-load-celery` does the same on the Celery set-up
bench-load: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	$(BIN)/python bench/bench_load.py --sessions $(or $(SESSIONS),50) --provider $(or $(PROVIDER),github) \
		$(if $(EXAMPLES),--examples $(EXAMPLES))

bench-load-celery: distributed-prerequisites
	$(BIN)/python bench/bench_load.py --sessions $(or $(SESSIONS),50) \
		--provider $(or $(PROVIDER),github) --executor celery $(if $(EXAMPLES),--examples $(EXAMPLES))

# one lint failure alone, its attempt DAG beside a trivial DAG of exactly its shape (bodies
# that return at once), medians of RUNS rounds on one standalone Airflow
bench-overhead: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	$(BIN)/python bench/bench_overhead.py --runs $(or $(RUNS),3) --provider $(or $(PROVIDER),local)

# each DAG file's parse in a task process beside a trivial DAG of the same shape and the
# former parse that imported every task body with the DAG
bench-parse: $(STAMP)
	$(BIN)/python bench/bench_parse.py --runs $(or $(RUNS),5)

bench-logs: $(STAMP)
	$(BIN)/python bench/bench_logs.py --cidiff $(CIDIFF)

# the sessions page and the metrics endpoint with 10,000 sessions in a metadata database of
# their own, side by side with the former unpaginated page
bench-pages: $(STAMP)
	$(BIN)/python bench/bench_pages.py --sessions $(or $(SESSIONS),10000)

clean:
	rm -rf $(VENV) $(RUNNER_TOOLS) .airflow var bench/results

# The distributed deployment without Docker: PostgreSQL, Redis and Airflow with the
# CeleryExecutor (api-server, scheduler, dag-processor, triggerer, two Celery workers) as
# processes on loopback, sessions on the examples; and `docker-compose config`. Installs
# Debian's postgresql, redis-server and docker-compose when missing (as root, or with sudo).
.PHONY: test-distributed distributed-prerequisites bench-load-celery
test-distributed: distributed-prerequisites
	$(BIN)/pytest -q tests/distributed

distributed-prerequisites: $(STAMP) $(RUNNER_STAMP) sandbox-prerequisites
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
		|| missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		echo "installing Debian packages:$$missing"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(BIN)/pip install -q -r tests/distributed/requirements.txt -c constraints.txt

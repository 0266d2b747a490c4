# The Airflow image of the CI/CD Failure Orchestrator: the official image of the pinned Airflow
# (it carries the Celery, Postgres and Redis providers and the FAB auth manager) plus the
# project's requirements, installed under the project's constraints, and the package itself.
# docker-compose.yaml builds it; it also serves as the image of a Kubernetes deployment.
FROM apache/airflow:3.3.2-python3.11

USER root
# git: the local CI provider, the workspaces (worktrees) and the fix branches use it;
# bubblewrap: the sandbox of repository commands (include/cicd_orchestrator/sandbox.py)
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

WORKDIR /opt/cicd
COPY --chown=airflow:0 requirements.txt constraints.txt runner-tools.txt ./
# The runner tool folder: the tools of repository commands (runner-tools.txt), in a virtual
# environment of their own, owned by root (read-only to the worker as to its sandbox), never
# the orchestrator's packages. Made from the image's python, under /usr, which the sandbox
# shows read-only.
USER root
RUN PIP_USER=false python -m venv /opt/cicd-runner-tools \
    && PIP_USER=false /opt/cicd-runner-tools/bin/pip install --no-cache-dir \
        -r runner-tools.txt -c constraints.txt
USER airflow
# The project's pins (requirements.txt) and, for every package the image does not have yet,
# the project's tested versions (constraints.txt); a package the image already carries keeps
# the image's version (built with Airflow's own constraints for its providers) unless
# requirements.txt pins it. apache-airflow is pinned again so nothing can move it.
RUN python -c "import importlib.metadata as m, re; \
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower(); \
have = {norm(d.metadata['Name']) for d in m.distributions()}; \
lines = [l.strip() for l in open('constraints.txt') if l.strip() and not l.startswith('#')]; \
print('\\n'.join(l for l in lines if norm(re.split('[=<>!~ ;]', l)[0]) not in have))" \
        > image-constraints.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r requirements.txt -c image-constraints.txt \
    && pip check

COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 include ./include
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import cicd_orchestrator.airflow.triggers"

# the project's DAGs and plugin in the image too (docker-compose.yaml mounts them over these)
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
RUN mkdir -p /opt/airflow/local-ci /opt/airflow/cicd-cache \
    && chmod -R g+rwX /opt/airflow/local-ci /opt/airflow/cicd-cache

WORKDIR /opt/airflow
ENV CICD_PROVIDER_POOL=cicd_provider_calls \
    CICD_LOCAL_ROOT=/opt/airflow/local-ci \
    CICD_CACHE_DIR=/opt/airflow/cicd-cache \
    CICD_RUNNER_TOOLS=/opt/cicd-runner-tools

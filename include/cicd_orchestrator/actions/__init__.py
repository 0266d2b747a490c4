"""The GitHub Actions engine: workflow parsing, ``${{ }}`` expressions, the job runner and
its scheduler, the raw job log. The local CI provider, validation and repair all use it.

Modules: ``workflow`` (files and their model), ``expressions``, ``run_info`` (a run and its
``github`` context), ``results`` (job records, a run's conclusion), ``joblog`` (the raw log
and workflow commands), ``step_process`` (one step's process and file commands),
``job_state`` (a running job and its contexts), ``steps`` (one step), ``runner`` (one job,
``JobRunner``), ``scheduler`` (a workflow's jobs and their ``needs``), ``matrix`` and
``triggers`` (job names, events and filters as GitHub forms them), ``setup_actions`` and
``toolchains`` (the setup actions and the machine's tools by version), ``containers`` (jobs
that need another system) and ``host`` (the folders and sandboxed commands of a job of the
GitLab CI and Jenkins engines, which run on this engine's process runner).
"""

"""The GitHub Actions engine: workflow parsing, ``${{ }}`` expressions, the job runner and
its scheduler, the raw job log. The local CI provider, validation and repair all use it.

Modules: ``workflow`` (files and their model), ``expressions``, ``run_info`` (a run and its
``github`` context), ``results`` (job records, a run's conclusion), ``joblog`` (the raw log
and workflow commands), ``step_process`` (one step's process and file commands),
``job_state`` (a running job and its contexts), ``steps`` (one step), ``runner`` (one job,
``JobRunner``) and ``scheduler`` (a workflow's jobs and their ``needs``).
"""

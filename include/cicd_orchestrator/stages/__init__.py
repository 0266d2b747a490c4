"""The stages of an attempt (opening, discovery, classification, fixing, monitoring, sweep)
as plain functions of the attempt object; Airflow's tasks call them, so do tests and
benchmarks. Validation lives in ``validation/``, publishing in ``publish/``."""

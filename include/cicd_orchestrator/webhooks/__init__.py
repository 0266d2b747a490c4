"""Webhook deliveries (GitHub, GitLab) turned into session requests: signature checks and
payload parsing, pure of Airflow (the plugin's routes call these)."""

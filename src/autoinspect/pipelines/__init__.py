"""The flows as plain functions, called alike by the CLI, the local runner and Airflow DAGs."""

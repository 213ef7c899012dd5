"""The DAG files Airflow parses: one DAG per file, named ``autoinspect_<file name>``."""

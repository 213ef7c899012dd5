#!/bin/sh
# Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d): one role and one database
# each for MLflow (tracking + registry), AutoInspect (prediction log, review queue, API keys) and Airflow.
set -eu

create() {
    # $1 = role and database name, $2 = password
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
SQL
}

create mlflow "$MLFLOW_DB_PASSWORD"
create autoinspect "$APP_DB_PASSWORD"
create airflow "$AIRFLOW_DB_PASSWORD"

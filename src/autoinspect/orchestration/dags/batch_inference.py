"""``autoinspect_batch_inference``: predictions for a folder of photos, one mapped task per shard.

``plan`` lists the photos (a folder on the workers' disk, or an ``s3://`` prefix) and cuts them into shards,
``pin_model`` turns an alias into one version for the whole run; ``predict_shard`` is mapped over the shards at run
time (dynamic task mapping), so a big folder spreads over the workers and a failed shard is retried alone;
``merge`` joins the shard files into ``<run folder>/predictions.jsonl`` and returns the counts. The run folder is
``<storage.results_url>/<run id>`` in object storage when set (workers then share no disk), else
``<home>/batch/<run id>``. The same functions run in-process with ``autoinspect batch FOLDER --shard-size N --out
FILE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from autoinspect.orchestration.defaults import DAG_ARGS

PARTS = "parts"
PREDICTIONS = "predictions.jsonl"


@dag(
    dag_id="autoinspect_batch_inference",
    schedule=None,
    params={
        "folder": Param(type="string", minLength=1, description="Folder on the workers' disk, or s3://bucket/prefix."),
        "shard_size": Param(500, type="integer", minimum=1, description="Photos per mapped task."),
        "model": Param("champion", type="string", description="Alias, version number or .onnx path."),
    },
    doc_md=__doc__,
    **DAG_ARGS,
)
def autoinspect_batch_inference() -> None:
    @task
    def plan() -> list[list[str]]:
        """The photos of the folder cut into shards (lists of paths): what ``predict_shard`` is mapped over."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.batch_inference import plan_shards

        params = get_current_context()["params"]
        folder = params["folder"] if params["folder"].startswith("s3://") else Path(params["folder"])
        endpoint = get_settings().storage.s3_endpoint_url
        return plan_shards(folder, int(params["shard_size"]), endpoint_url=endpoint)

    @task
    def pin_model() -> str:
        """The model as a version number, so a promotion during the run cannot split it between two models."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.batch_inference import pin_model

        return pin_model(get_settings(), get_current_context()["params"]["model"])

    @task
    def predict_shard(files: list[str], model: str) -> str:
        """One shard's photos through the Detector; the path of its JSON-lines file."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.batch_inference import predict_shard, run_folder

        settings = get_settings()
        out_dir = f"{run_folder(settings, get_current_context()['run_id'])}/{PARTS}"
        return predict_shard(settings, files, model=model, out_dir=out_dir)

    @task
    def merge(parts: Sequence[str]) -> dict[str, Any]:
        """All shard files, in shard order, into ``predictions.jsonl``; the counts by verdict, review and error."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.batch_inference import merge_shards, run_folder

        settings = get_settings()
        out = f"{run_folder(settings, get_current_context()['run_id'])}/{PREDICTIONS}"
        return merge_shards(list(parts), out, settings).model_dump(mode="json")

    merge(predict_shard.partial(model=pin_model()).expand(files=plan()))


autoinspect_batch_inference()

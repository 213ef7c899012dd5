"""Every page of the operator UI run by Streamlit's ``AppTest`` against the real API on loopback.

Each test drives the page as an operator would and checks what it rendered and, for actions, the API's state
afterwards; ``at.exception`` must stay empty, so a page that broke fails its test.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image
from served import KeyFactory, inspect_red, jpeg, wait_for_log
from streamlit.testing.v1 import AppTest

from autoinspect.config import Settings, get_settings
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Annotation, Box, Detection, Split, Verdict
from autoinspect.drawing import _free_spot, draw_regions
from autoinspect.evaluation.comparison import Answer, compare_models
from autoinspect.evaluation.label_issues import IssueKind, LabelIssue, LabelIssueReport
from autoinspect.pipelines.dataset import prepare_dataset
from autoinspect.pipelines.label_issues import LabelIssuesRun
from autoinspect.pipelines.label_issues import write_report as write_label_issues
from autoinspect.pipelines.labelled_photos import LabelledPhoto
from autoinspect.pipelines.model_comparison import write_report
from autoinspect.pipelines.monitoring import run_monitoring
from autoinspect.registry.aliases import alias_history
from autoinspect.store import PredictionEntry, PredictionLog, Route, Scope, make_engine
from autoinspect.training.base import TrainConfig
from autoinspect.ui import APP_PATH
from autoinspect.ui.client import ApiClient, ApiError, InspectAnswer
from autoinspect.ui.views.inspect import inspect_photos, visible
from autoinspect.ui.views.review import labels_from_rows

TIMEOUT = 60


def _app(page: str | None = None, *, key: str) -> AppTest:
    """The app signed in with ``key`` (through its sign-in form), on ``page``."""
    at = _sign_in(AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT).run(), key)
    assert "Signed in as tester" in "\n".join(c.value for c in at.sidebar.caption), _texts(at)
    if page is not None:
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception, at.exception
    return at


def _sign_in(at: AppTest, key: str) -> AppTest:
    at.text_input(key="signin-key").input(key)
    at.button(key="signin").click().run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = [
        element.value
        for kind in ("markdown", "caption", "success", "warning", "error", "info")
        for element in getattr(at, kind)
    ]
    parts += [f"{metric.label}={metric.value}" for metric in at.metric]
    return "\n".join(str(part) for part in parts)


def test_inspect_page_shows_the_verdict_and_filters_by_confidence(ui_env: KeyFactory) -> None:
    at = _app(key=ui_env(Scope.INSPECT))
    assert "Upload one or more photos" in _texts(at)
    at.file_uploader[0].set_value(("car.jpg", jpeg(red=True), "image/jpeg")).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Verdict=dent, scratch" in text and "Needs review" in text
    assert len(at.get("image")) == 1
    at.slider[0].set_value(0.8).run()  # the dent (0.7) hides, the scratch (0.9) stays; no new API call
    assert "1 detection(s) below 0.80 hidden" in _texts(at)
    at.file_uploader[0].set_value(("clean.jpg", jpeg(red=False), "image/jpeg")).run()
    assert "Verdict=None (no damage)" in _texts(at) and "Decided automatically" in _texts(at)
    bad = ("notes.jpg", b"a text file renamed", "image/jpeg")
    at.file_uploader[0].set_value([("car.jpg", jpeg(red=True), "image/jpeg"), bad]).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "notes.jpg was not inspected" in text and "Verdict=dent, scratch" in text, text


def test_inspect_function_batches_and_drawing_marks_the_boxes(ui_env: KeyFactory, server: str) -> None:
    key = ui_env(Scope.INSPECT)
    photos = [(f"car{i}.jpg", jpeg(red=i % 2 == 0, seed=i)) for i in range(5)]
    with ApiClient(server, key) as client:
        answers = inspect_photos(client, photos, vehicle_id="VIN1", batch_size=4)  # two batch calls: 4 + 1
    assert [getattr(answer, "verdict", None) for answer in answers] == [["dent", "scratch"], ["None"]] * 2 + [
        ["dent", "scratch"]
    ]
    first = answers[0]
    assert isinstance(first, InspectAnswer)
    drawn = draw_regions(photos[0][1], visible(first.detections, 0.0))
    plain = Image.open(io.BytesIO(photos[0][1])).convert("RGB")
    assert drawn.size == plain.size and drawn.tobytes() != plain.tobytes()
    with ApiClient(server, key) as client:  # one bad photo: the others are answered, it gets its own reason
        mixed = inspect_photos(
            client, [photos[0], ("notes.jpg", b"not a photo"), photos[1]], vehicle_id=None, batch_size=4
        )
    assert isinstance(mixed[0], InspectAnswer) and isinstance(mixed[2], InspectAnswer)
    assert isinstance(mixed[1], ApiError) and mixed[1].status == 422 and "not a recognised image" in mixed[1].detail
    box = Detection(label="dent", box=Box(x1=0.1, y1=0.1, x2=0.5, y2=0.5), confidence=0.3)
    assert visible([box], 0.5) == [] and visible([box], 0.3) == [box]


def test_inspect_page_inspects_a_vehicle_and_shows_what_is_new_since_its_last_inspection(
    ui_env: KeyFactory, server: str
) -> None:
    key = ui_env(Scope.INSPECT)
    sides = ["front", "rear", "left", "right"]
    with ApiClient(server, key) as client:  # the car left clean, every side photographed
        client.inspect_vehicle(
            "VIN-U", [(f"{s}.jpg", jpeg(red=False, seed=i)) for i, s in enumerate(sides)], views=sides
        )
    at = _app(key=key)
    photos = [("door.jpg", jpeg(red=True, seed=7), "image/jpeg"), ("nose.jpg", jpeg(red=False, seed=8), "image/jpeg")]
    at.file_uploader[0].set_value(photos).run()
    at.text_input[0].input("VIN-U").run()
    assert "Set the views, then click Inspect vehicle" in _texts(at)
    at.selectbox(key="view-0-door.jpg").set_value("left")
    at.selectbox(key="view-1-nose.jpg").set_value("front")
    at.button[0].click().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Vehicle verdict=dent, scratch" in text and "Damage on 1 of 2 usable photo(s)" in text, text
    assert "New damage since the inspection of" in text and "dent on left; scratch on left" in text, text
    assert "door.jpg (left)" in [header.value for header in at.subheader] and "2 inspection(s) of VIN-U" in text
    labels = [download.proto.label for download in at.get("download_button")]
    assert labels == ["Download the report (HTML, printable)", "Download the report (PDF)"]
    at.button[0].click().run()  # the same photos and views again: the stored inspection, not a second one
    with ApiClient(server, key) as client:
        history = client.inspections(vehicle_id="VIN-U")
        assert history["total"] == 2
        # what the PDF button downloads when clicked (AppTest cannot click a download)
        assert client.inspection_report_pdf(history["items"][0]["inspection_id"]).startswith(b"%PDF-")


def test_review_page_lists_a_flagged_answer_and_accept_removes_it(
    ui_env: KeyFactory, server: str, registry: Settings
) -> None:
    key = ui_env(Scope.INSPECT, Scope.REVIEW)
    request_id = inspect_red(server, key)
    wait_for_log(registry, 1)
    at = _app("Review queue", key=key)
    assert request_id in _texts(at)
    (editor,) = at.get("bidi_component")  # the stored photo in the box editor, the model's boxes pre-filled
    shown = json.loads(editor.proto.json)
    assert shown["image"].startswith("data:image/jpeg;base64,")
    assert {box["label"] for box in shown["boxes"]} == {"scratch", "dent"} and shown["boxes"] == shown["model"]
    at.button(key=f"accept-{request_id}").click().run()
    assert not at.exception, at.exception
    assert f"{request_id} accepted" in _texts(at) and "Nothing to review" in _texts(at)
    with ApiClient(server, key) as client:
        assert request_id not in {entry.request_id for entry in client.review_queue()}


def test_review_correction_table_is_checked_before_it_is_sent() -> None:
    rows = [{"label": "dent", "x1": 0.1, "y1": 0.2, "x2": 0.3, "y2": 0.4}, {"label": None, "x1": 0.1}]
    assert labels_from_rows(rows) == [("dent", Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4))]
    with pytest.raises(ValueError, match="box 1"):
        labels_from_rows([{"label": "dent", "x1": 0.5, "y1": 0.2, "x2": 0.3, "y2": 0.4}])


def test_review_page_without_the_review_scope_says_so(ui_env: KeyFactory) -> None:
    at = _app("Review queue", key=ui_env(Scope.INSPECT))
    assert "may not do that" in _texts(at) and "review" in _texts(at)


def test_models_page_promotes_and_rolls_back_as_the_signed_in_admin(
    ui_env: KeyFactory, server: str, registry: Settings
) -> None:
    key = ui_env(Scope.INSPECT, Scope.ADMIN)
    at = _app("Models", key=key)
    table = at.dataframe[0].value
    assert list(table["version"]) == [2, 1] and "champion" in table["aliases"].iloc[1]
    assert list(table["precision"]) == ["float32", "float32"]  # from the registry's tags, through the API
    assert "Champion=v1" in _texts(at)
    at.selectbox(key="version").set_value(1).run()
    assert at.button(key="promote").disabled  # v1 already is the champion
    at.selectbox(key="version").set_value(2).run()
    at.button(key="promote").click().run()
    assert not at.exception, at.exception
    assert "v2 promoted to champion" in _texts(at) and "Champion=v2" in _texts(at)
    with ApiClient(server, key) as client:
        assert client.deployment().champion == 2
    at.button(key="rollback").click().run()
    assert "champion rolled back" in _texts(at)
    with ApiClient(server, key) as client:
        assert client.deployment().champion == 1
    assert {move.actor for move in alias_history(registry)[-2:]} == {"tester"}  # the person, not the UI


def test_an_inspect_user_sees_no_admin_controls_and_the_api_refuses_them_anyway(
    ui_env: KeyFactory, server: str
) -> None:
    key = ui_env(Scope.INSPECT)
    at = _app("Models", key=key)
    assert "Champion=v1" in _texts(at) and "needs a key with the admin scope" in _texts(at)
    assert not [button for button in at.button if button.key in ("promote", "rollback", "apply-mode")]
    with ApiClient(server, key) as client, pytest.raises(ApiError) as refused:
        client.promote(2, "not mine to do")
    assert refused.value.status == 403


def test_every_page_warns_while_the_champion_is_a_demo(ui_env: KeyFactory, registry: Settings) -> None:
    key = ui_env(Scope.INSPECT)
    assert "demo" not in _texts(_app(key=key))
    client = MlflowClient(registry.tracking_uri)
    client.set_model_version_tag(registry.tracking.model_name, "1", "demo", "true")  # as `up` tags its demo
    for page in ("Inspect", "Models"):
        assert "is a **demo**" in _texts(_app(page, key=key))


def test_an_anonymous_visitor_gets_only_the_sign_in_form(ui_env: KeyFactory) -> None:
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT).run()
    assert not at.exception and "Sign in" in [header.value for header in at.header]
    assert not at.sidebar.radio and not at.file_uploader  # no page, no upload, no admin control
    _sign_in(at, "aik_not-a-real-key")
    assert "That key was refused" in _texts(at) and not at.sidebar.radio


def test_a_session_ends_after_the_idle_time(ui_env: KeyFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOINSPECT_UI__SESSION_MINUTES", "0.005")  # 0.3 s
    get_settings.cache_clear()
    at = _app(key=ui_env(Scope.INSPECT))
    time.sleep(0.5)
    at.run()
    assert "session expired" in _texts(at) and not at.sidebar.radio


def test_pages_explain_an_api_that_is_down(ui_env: KeyFactory, free_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ui_env(Scope.INSPECT)
    at = _app(key=key)
    monkeypatch.setenv("AUTOINSPECT_UI__API_URL", f"http://127.0.0.1:{free_port}")  # the API goes away
    get_settings.cache_clear()
    for page in ("Models", "Review queue"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert "cannot be reached" in _texts(at)
    with pytest.raises(ApiError) as raised:
        ApiClient(get_settings().ui.api_url, None).deployment()
    assert raised.value.status == 0


def test_monitoring_page_shows_live_figures_before_any_monitoring_run(
    ui_env: KeyFactory, server: str, registry: Settings
) -> None:
    key = ui_env(Scope.INSPECT)
    inspect_red(server, key)
    with httpx.Client(base_url=server, headers={"X-API-Key": key}) as http:
        http.post("/v1/inspect", files={"image": ("clean.jpg", jpeg(red=False))})
    wait_for_log(registry, 2)
    at = _app("Monitoring", key=key)
    text = _texts(at)
    assert "Live: the last 1 hour(s)" in [header.value for header in at.subheader]
    assert "Answers=2" in text and "Review share=50.0%" in text and "No monitoring run yet" in text, text
    verdicts = _app("Monitoring", key=key).dataframe[0].value
    assert dict(zip(verdicts["verdict"], verdicts["answers"], strict=True)) == {"dent, scratch": 1, "None": 1}


def test_monitoring_page_charts_the_runs(ui_env: KeyFactory, server: str, registry: Settings) -> None:
    key = ui_env(Scope.INSPECT)
    inspect_red(server, key)
    wait_for_log(registry, 1)
    first = run_monitoring(registry, until=datetime.now(UTC) - timedelta(seconds=1), hours=1)
    time.sleep(1.1)  # run folders are stamped by the second
    sampled = PredictionEntry(
        request_id="sampled-1", model_version="1", route=Route.CHAMPION, verdict="None", needs_review=False,
        max_score=0.05, latency_ms=5.0, sampled_for="random",
    )  # fmt: skip
    PredictionLog(make_engine(registry.store_url)).write([sampled])
    second = run_monitoring(registry, hours=1)
    assert first.folder != second.folder
    at = _app("Monitoring", key=key)
    text = _texts(at)
    assert "2 run(s)" in text and "Review rate=50.0%" in text, text
    samples = next(frame.value for frame in at.dataframe if "rule" in frame.value.columns)
    assert samples.to_dict("records") == [
        {"rule": "random", "sampled": 1, "reviewed": 0, "overridden": 0, "corrected": "n/a"}
    ]
    assert len(at.get("vega_lite_chart")) == 3
    assert "No alert sent" in text or at.dataframe


def test_data_page_lists_a_dataset_version_and_the_suspected_label_errors(
    ui_env: KeyFactory, registry: Settings
) -> None:
    key = ui_env(Scope.INSPECT)
    prepared = prepare_dataset(registry, None, profile=False)
    layout = DatasetStore.for_settings(registry).materialise(prepared.version, registry.checkouts_dir)
    photo = next(item for item in layout.items() if item.split is Split.TRAIN)
    issue = LabelIssue(
        image_id=photo.key,
        kind=IssueKind.MISSING_BOX,
        label="dent",
        box=Box(x1=0.1, y1=0.1, x2=0.3, y2=0.3),
        score=0.01,
    )
    report = LabelIssueReport(
        photos=2,
        classes=layout.names,
        confident_scores=dict.fromkeys(layout.names, 0.5),
        quality={photo.key: 0.02, "train/other.jpg": 0.9},
        flagged=[photo.key],
        issues=[issue],
    )
    run = LabelIssuesRun(
        dataset=prepared.version.ref,
        folds=2,
        config=TrainConfig(),
        fold_seconds=1.0,
        rank_seconds=0.1,
        report=report,
        splits={photo.key: "train"},
    )
    write_label_issues(run, layout, registry.label_issues_dir / prepared.version.digest[:12])
    at = _app("Data", key=key)
    issues = next(frame.value for frame in at.dataframe if "kind" in frame.value.columns)
    assert issues.to_dict("records") == [
        {"photo": photo.key, "split": "train", "kind": "missing box", "class": "dent", "score": 0.01, "model says": ""}
    ]
    assert "1 of 2 photos flagged" in _texts(at) and "missing box 1" in _texts(at)
    assert len(at.get("image")) == 1  # the contact sheet of the flagged photos
    table = at.dataframe[0].value
    assert prepared.version.ref.short in list(table["version"])
    assert int(table["images"].iloc[0]) == len(prepared.version.items)
    assert "Passed" in _texts(at) or "Failed" in _texts(at)
    splits = next(frame.value for frame in at.dataframe if "split" in frame.value.columns)  # a table, not JSON
    assert set(splits["split"]) == {"train", "val", "test"} and splits["images"].sum() == len(prepared.version.items)
    assert not at.json


def test_captions_of_overlapping_boxes_do_not_cover_each_other() -> None:
    first = (10.0, 10.0, 60.0, 24.0)
    second = _free_spot((12.0, 12.0, 62.0, 26.0), [first], height=200)
    assert second[1] >= first[3] and second[3] - second[1] == 14  # moved below, same size
    assert _free_spot((100.0, 10.0, 150.0, 24.0), [first], height=200) == (100.0, 10.0, 150.0, 24.0)  # free already


def test_models_page_shows_what_a_challenger_changes_photo_by_photo(ui_env: KeyFactory, registry: Settings) -> None:
    """The comparison continuous training writes for a challenger: counts, the photos listed, both answers drawn."""
    dent = Detection(label="dent", box=Box(x1=0.2, y1=0.2, x2=0.5, y2=0.5), confidence=0.9)
    truth = [Annotation(label="dent", box=dent.box)]
    photos = [
        LabelledPhoto(image_id=f"test/p{i}.jpg", rgb=np.full((60, 80, 3), 90, np.uint8), truth=t, attributes={})
        for i, t in enumerate([truth, [], []])
    ]
    dented, clean = Answer(Verdict.from_labels(["dent"]), [dent]), Answer(Verdict(), [])
    rows = [
        ("test/p0.jpg", Verdict.from_labels(["dent"]), clean, dented),  # fixed
        ("test/p1.jpg", Verdict(), clean, dented),  # regressed
        ("test/p2.jpg", Verdict(), clean, clean),
    ]
    write_report(compare_models("champion", "2", rows), photos, registry.comparisons_dir / "v2", "demo")
    at = _app("Models", key=ui_env(Scope.INSPECT))
    text = _texts(at)
    assert "on 3 test photos: 1 answered alike" in text and "regressed=1" in text and "fixed=1" in text, text
    listed = next(frame.value for frame in at.dataframe if "difference" in frame.value.columns)
    assert list(listed["photo"]) == ["test/p1.jpg", "test/p0.jpg"]  # the regression first
    assert list(listed["v2"]) == ["dent", "dent"] and list(listed["champion"]) == ["None", "None"]
    at.toggle(key="show-comparison").set_value(True).run()
    assert not at.exception, at.exception

"""The four handler functions called the way the SageMaker scikit-learn container calls them."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.serving.artifact import ArtifactError, FeatureSpec, ModelArtifact
from pipelines.serving.codec import InputError, Prediction
from tests.unit.serving.model_fixture import FEATURES, sample_rows

INFERENCE_PY = Path(__file__).resolve().parents[3] / "pipelines" / "serving" / "inference.py"


@pytest.fixture(scope="module")
def handlers():
    """Import inference.py from its file path, as the container imports its entry point."""
    spec = importlib.util.spec_from_file_location("inference", INFERENCE_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_container_call_sequence_csv(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(str(model_dir))
    rows = sample_rows(4)
    body = rows.to_csv(index=False, header=False)
    data = handlers.input_fn(body, "text/csv")  # the container passes str for text payloads
    prediction = handlers.predict_fn(data, model)
    payload, content_type = handlers.output_fn(prediction, "text/csv")
    assert content_type == "text/csv"
    lines = payload.decode().strip().splitlines()
    assert len(lines) == 4
    expected = model.model.predict_proba(rows)
    got = np.array([[float(x) for x in line.split(",")[1:]] for line in lines])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    labels = [int(line.split(",")[0]) for line in lines]
    assert labels == model.model.predict(rows).tolist()


def test_container_call_sequence_json_bytes(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    rows = sample_rows(3)
    body = json.dumps({"instances": rows.to_dict(orient="records")}).encode()
    prediction = handlers.predict_fn(handlers.input_fn(body, "application/json; charset=utf-8"), model)
    assert isinstance(prediction, Prediction)
    payload, content_type = handlers.output_fn(prediction, "application/json")
    decoded = json.loads(payload)
    assert content_type == "application/json"
    assert decoded["classes"] == [0, 1]
    np.testing.assert_allclose(
        [p["score"] for p in decoded["predictions"]], model.model.predict_proba(rows)[:, 1]
    )


def test_container_call_sequence_npy(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    rows = sample_rows(2)
    buffer = io.BytesIO()
    np.save(buffer, rows.astype(str).to_numpy().astype("U"), allow_pickle=False)
    prediction = handlers.predict_fn(handlers.input_fn(buffer.getvalue(), "application/x-npy"), model)
    np.testing.assert_allclose(prediction.scores, model.model.predict_proba(rows)[:, 1])


def test_output_fn_defaults_to_json_without_accept(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    prediction = handlers.predict_fn(
        handlers.input_fn(sample_rows(1).to_csv(index=False, header=False), "text/csv"), model
    )
    assert handlers.output_fn(prediction, None)[1] == "application/json"
    assert handlers.output_fn(prediction, "*/*")[1] == "application/json"
    with pytest.raises(InputError) as error:
        handlers.output_fn(prediction, "application/xml")
    assert error.value.status_code == 406


def test_input_fn_rejects_unknown_content_type(handlers) -> None:
    with pytest.raises(InputError) as error:
        handlers.input_fn(b"a,b", "application/xml")
    assert error.value.status_code == 415
    assert "application/xml" in error.value.message


def test_predict_fn_names_the_bad_feature(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    with pytest.raises(InputError, match="feature 'monthly_charges' row 0"):
        handlers.predict_fn(handlers.input_fn("1.0,abc,2,basic,north", "text/csv"), model)


def _copy(model_dir: Path, target: Path) -> Path:
    shutil.copytree(model_dir, target)
    return target


def test_model_fn_refuses_checksum_mismatch(handlers, model_dir: Path, tmp_path: Path, caplog) -> None:
    broken = _copy(model_dir, tmp_path / "m")
    with (broken / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(ArtifactError, match="does not match metadata model_sha256"),
    ):
        handlers.model_fn(broken)
    assert any("refusing to serve" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"model_file": "../model.joblib"}, "must be a plain file name"),
        ({"features": []}, "'features' must be a non-empty list"),
        ({"features": [{"name": "x", "kind": "text"}]}, "expected 'numeric' or 'categorical'"),
        ({"model_sha256": "abc"}, "64-character hex"),
    ],
)
def test_model_fn_refuses_bad_metadata(handlers, model_dir: Path, tmp_path: Path, change, message) -> None:
    broken = _copy(model_dir, tmp_path / "m")
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata.update(change)
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match=message):
        handlers.model_fn(broken)


def test_model_fn_needs_metadata(handlers, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"metadata\.json not found"):
        handlers.model_fn(tmp_path)


def test_feature_order_comes_from_metadata(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    assert model.feature_names == FEATURES


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_one_row_requests_match_rows_of_a_batch(handlers, model_dir: Path, content_type: str) -> None:
    """1-row requests take the small-batch path, 40-row requests the NumPy path: same answers."""
    model = handlers.model_fn(model_dir)
    rows = sample_rows(40, seed=5)
    rows.loc[rows.index[:6], "tenure_months"] = np.nan
    rows.loc[rows.index[6:12], "plan"] = None
    rows.loc[rows.index[12:18], "region"] = "atlantis"

    def body(frame) -> str:
        if content_type == "text/csv":
            return frame.to_csv(index=False, header=False)
        return json.dumps({"instances": json.loads(frame.to_json(orient="records"))})

    batch = handlers.predict_fn(handlers.input_fn(body(rows), content_type), model)
    np.testing.assert_allclose(batch.probabilities, model.model.predict_proba(rows), rtol=0, atol=1e-12)
    for index in range(len(rows)):
        one = handlers.predict_fn(handlers.input_fn(body(rows.iloc[[index]]), content_type), model)
        assert one.classes == batch.classes == (0, 1)
        assert one.labels.tolist() == batch.labels[index : index + 1].tolist()
        np.testing.assert_allclose(one.probabilities, batch.probabilities[index : index + 1], atol=1e-12)
        np.testing.assert_allclose(one.scores, batch.scores[index : index + 1], atol=1e-12)


def test_class_layout_is_computed_once_at_load(handlers, model_dir: Path) -> None:
    model = handlers.model_fn(model_dir)
    assert "class_layout" in vars(model)  # cached by model_fn, not by the first request
    layout = model.class_layout
    assert layout is model.class_layout
    assert layout.classes == (0, 1)
    assert layout.positive_index == 1
    assert layout.labels.tolist() == model.model.classes_.tolist()


class _ProbabilitiesOnly:
    """A classifier without ``classes_``: three columns of probabilities."""

    def predict(self, x):
        return np.zeros(len(x))

    def predict_proba(self, x):
        return np.tile([0.2, 0.5, 0.3], (len(x), 1))


@pytest.mark.parametrize(
    ("classes", "positive", "labels", "score"),
    [
        (("a", "b", "c"), "c", ["b"], 0.3),
        (("a", "b", "c"), "zz", ["b"], 0.3),  # not a class: the last column
        (("a", "b", "c"), "a", ["b"], 0.2),
        ((), 0, [1], 0.2),  # no classes anywhere: the column numbers
        ((), None, [1], 0.3),
    ],
)
def test_classes_from_metadata_when_the_model_has_none(handlers, classes, positive, labels, score) -> None:
    model = ModelArtifact(
        model=_ProbabilitiesOnly(),
        metadata={},
        features=(FeatureSpec("x", "numeric"),),
        task="multiclass_classification",
        classes=classes,
        positive_class=positive,
        model_dir=Path("."),
    )
    prediction = handlers.predict_fn(handlers.input_fn("1.5\n", "text/csv"), model)
    assert prediction.labels.tolist() == labels
    assert prediction.scores.tolist() == [score]
    assert prediction.classes == (classes or (0, 1, 2))

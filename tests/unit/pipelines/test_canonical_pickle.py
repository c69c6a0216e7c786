"""The canonical model pickle (``pipelines.train.dump_model``): the same data trained in processes that
did different things first gives the same ``model.joblib`` bytes, and the serving image can load it.

The cause found for the churn package's differing bytes on ``mlops reproduce``: the registered model
was trained in the (emulated) training container, a fresh process; the reproduction in a process that
had imported pulumi, which imports dill. ``import dill`` rewrites the pure-Python pickler's dispatch
table, which joblib copies when it is first imported, and ``slice`` objects
(``ColumnTransformer.output_indices_``) then pickled as ``dill._dill._load_type('slice')``.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest

from pipelines.contract import load_contract, resolve_contract_path
from pipelines.train import model_inputs

ROOT = Path(__file__).resolve().parents[3]
# what the training container runs: a fresh process that imports the training code and trains
TRAIN = """
import sys
from pathlib import Path
from pipelines.train import train
train(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), run_id="r", code_version="c")
"""
# modules the SageMaker scikit-learn serving image has (plus the model's own code/ package)
SERVING_MODULES = {"builtins", "copyreg", "_codecs", "numpy", "scipy", "sklearn", "joblib", "pipelines"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same small churn feature set trained in a fresh process (the training container) and in
    this one, which, like the reproduce process in the rehearsal, imported pulumi (so dill) before
    joblib (tests/conftest.py imports the Pulumi mock) and loads another model before training."""
    from joblib.numpy_pickle import NumpyPickler

    from pipelines.features.local import build_features_pandas, feature_spec
    from pipelines.synthetic import generate
    from pipelines.train import train
    from pipelines.validate import check_batch

    assert NumpyPickler.dispatch[type].__module__ == "dill._dill", (
        "this test needs a process whose joblib pickler dill changed (dill imported before joblib)"
    )
    root = tmp_path_factory.mktemp("canonical")
    contract = resolve_contract_path("churn")
    _, curated = check_batch(
        generate("churn", 400, 7).to_csv(index=False).encode(), "c.csv", load_contract(contract), "x"
    )
    assert curated is not None
    frame = build_features_pandas(curated, feature_spec(load_contract(contract)))
    (root / "train").mkdir()
    frame.to_parquet(root / "train" / "part-00000.parquet", index=False)
    subprocess.run(
        [sys.executable, "-c", TRAIN, str(contract), str(root / "train"), str(root / "fresh")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = (root / "fresh" / "model.joblib").read_bytes()
    joblib.load(io.BytesIO(fresh))
    here = train(contract, root / "train", root / "here", run_id="h", code_version="c")
    used = (here.model_dir / "model.joblib").read_bytes()
    assert here.metadata["model_sha256"] == hashlib.sha256(used).hexdigest()
    return {"contract": contract, "frame": frame, "fresh": fresh, "used": used}


def test_a_process_that_imported_dill_first_writes_the_fresh_process_bytes(trained: dict[str, Any]) -> None:
    """Fails before canonical pickling: this process wrote ``slice`` as ``dill._dill._load_type``."""
    assert hashlib.sha256(trained["used"]).hexdigest() == hashlib.sha256(trained["fresh"]).hexdigest()


def test_the_artifact_names_only_modules_the_serving_image_has(
    trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``joblib.load`` as the serving container does it; the dill-first model used to need dill there."""
    from joblib.numpy_pickle import NumpyUnpickler

    found: set[str] = set()
    original = NumpyUnpickler.find_class

    def find_class(self: Any, module: str, name: str) -> Any:
        found.add(module)
        return original(self, module, name)

    monkeypatch.setattr(NumpyUnpickler, "find_class", find_class)
    models = [joblib.load(io.BytesIO(trained[key])) for key in ("fresh", "used")]
    assert found, "the recording unpickler saw no global"
    assert {m.split(".")[0] for m in found} <= SERVING_MODULES, sorted(found)
    contract = load_contract(trained["contract"])
    inputs = model_inputs(trained["frame"], contract)
    assert (models[0].predict_proba(inputs) == models[1].predict_proba(inputs)).all()


def test_a_loaded_model_re_pickles_to_its_own_bytes(trained: dict[str, Any]) -> None:
    """Unpickling gives each object array its own dtype object and fresh strings; the canonical pickle
    writes equal values once whatever their identity, so the bytes come back (what ``bytes_reason``
    relies on when it re-pickles the registered model)."""
    from pipelines.train import dump_model

    loaded = joblib.load(io.BytesIO(trained["fresh"]))
    plain = io.BytesIO()
    joblib.dump(loaded, plain)
    assert plain.getvalue() != trained["fresh"]  # plain joblib.dump: the sharing of the loaded objects
    again = io.BytesIO()
    dump_model(loaded, again)
    assert again.getvalue() == trained["fresh"]


def test_dump_model_leaves_pickle_and_the_model_as_they_were(trained: dict[str, Any]) -> None:
    """No process-wide pickle state is changed, and the model's own objects are not replaced."""
    import pickle

    from pipelines.train import dump_model

    table = dict(pickle._Pickler.dispatch)
    model = joblib.load(io.BytesIO(trained["fresh"]))
    before = pickle.dumps(model)
    dump_model(model, io.BytesIO())
    assert pickle.dumps(model) == before
    assert dict(pickle._Pickler.dispatch) == table

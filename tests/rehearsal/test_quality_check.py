"""The drift stage's quality fragment: headline wording and request ids."""

from __future__ import annotations

from rehearsal.quality_check import inference_id, quality_headline


def test_headline_fragment() -> None:
    evidence = {
        "status": "ok",
        "coverage": 1.0,
        "metrics": {"auc": 0.812, "accuracy": 0.77},
        "estimate_vs_realized": {
            "accuracy": {"estimate": 0.78, "low": 0.74, "high": 0.81, "within_interval": True}
        },
    }
    assert (
        quality_headline(evidence)
        == "; quality auc 0.812, accuracy 0.770, CBPE accuracy 0.780 [0.740, 0.810]"
    )
    evidence["estimate_vs_realized"]["accuracy"]["within_interval"] = False
    assert quality_headline(evidence).endswith(" MISSED")
    assert quality_headline({"status": "insufficient_labels", "coverage": 0.2}) == (
        "; quality insufficient_labels (coverage 20%)"
    )
    assert quality_headline(None) == ""


def test_inference_ids_are_per_request_offset() -> None:
    assert inference_id("drift-244", 40) == "drift-244-000040"

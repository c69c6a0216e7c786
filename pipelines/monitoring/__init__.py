"""Monitoring: read SageMaker data capture, compute drift against the training baseline, publish
metrics, write reports (JSON, HTML, Model Monitor files) and decide on retraining."""

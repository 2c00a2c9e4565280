"""Logging a finished run to MLflow (optional: ``pip install mlflow``)."""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigError
from .config import ExperimentConfig

__all__ = ["flatten", "import_mlflow", "log_to_mlflow"]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"clv.horizon": "12M", "models.0.kind": "bgnbd", ...}``.

    Examples
    --------
    >>> flatten({"clv": {"horizon": "12M"}, "models": [{"kind": "bgnbd"}]})
    {'clv.horizon': '12M', 'models.0.kind': 'bgnbd'}
    """
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def import_mlflow() -> Any:
    """The ``mlflow`` module, or a :class:`ConfigError` naming ``tracking.mlflow``.

    The runner calls it before the run starts, so that a missing MLflow is reported
    at once rather than after the run has been written.
    """
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "tracking.mlflow: MLflow is not installed; pip install mlflow, or set "
            "tracking.mlflow.enabled: false",
            field="tracking.mlflow",
        ) from None
    return mlflow


def log_to_mlflow(config: ExperimentConfig, run: Any) -> None:
    """Log the configuration as params, the holdout metrics and fit statistics as metrics
    (``model.metric``), and the whole run directory as artifacts."""
    settings = config.tracking.mlflow
    assert settings is not None
    mlflow = import_mlflow()
    if settings.tracking_uri is not None:
        mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment)
    metrics: dict[str, float] = {}
    if run.metrics is not None:
        for model, row in run.metrics.to_dict(orient="index").items():
            metrics.update({f"{model}.{name}": float(value) for name, value in row.items()})
    for name, model in run.models.items():
        metrics[f"{name}.log_likelihood"] = float(model.log_likelihood_)
    with mlflow.start_run(run_name=settings.run_name or config.name):
        params = {key: str(value) for key, value in flatten(config.resolved()).items()}
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN is not loggable
        mlflow.log_artifacts(str(run.output_dir))

"""``din-tune/<dataset>`` is built next to din-train and din-score, one per registered dataset."""

from __future__ import annotations

from din_model.registry import dataset_names


def test_every_dataset_gets_a_tune_deployment_without_a_schedule() -> None:
    from flows.deployments import build_deployments, tune_parameters

    tune = [d for d in build_deployments() if d.flow_name == "din-tune"]
    assert sorted(d.name for d in tune) == sorted(dataset_names())
    for deployment in tune:
        assert deployment.parameters == tune_parameters(deployment.name)
        assert deployment.parameters["space"] == "default"
        assert deployment.parameters["trials"] == 20
        assert not deployment.schedules  # studies run on demand
        assert deployment.entrypoint == "flows.tune_flow.din_tune"

"""The CLI's flags reach the sessions as typed settings: none is dropped, none is misspelt."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from svcwatch.cli import cli
from svcwatch.cli.run import run
from svcwatch.session.settings import ClusterSettings, LabSettings, SessionSettings

# Flags these commands handle themselves; every other one must be a SessionSettings flag.
OWN_FLAGS = {"cli": {"theme", "captions", "script"}, "run": {"plain", "as_json", "duration"}}


def settings_flags() -> set[str]:
    return set(inspect.signature(SessionSettings.from_flags).parameters) - {"diagnosis"}


@pytest.mark.parametrize(("name", "command"), [("cli", cli), ("run", run)])
def test_every_session_flag_of_the_command_is_a_named_setting(name: str, command: object) -> None:
    params = {p.name for p in command.params if p.name}  # type: ignore[attr-defined]
    session_flags = params - OWN_FLAGS[name] - {"version", "help"}
    assert session_flags <= settings_flags(), sorted(session_flags - settings_flags())
    required = {
        n for n, p in inspect.signature(SessionSettings.from_flags).parameters.items()
        if p.default is inspect.Parameter.empty
    }  # fmt: skip
    assert required <= session_flags  # the command passes every flag the settings require


FLAGS: dict[str, Any] = dict(
    cluster=False, lab_name="talk", manifests=("a.yaml",), pods=3, scenario="wrong-port",
    sync_delay=1.0, keep=True, proxy_mode=None, interval=0.5, timeout=1.5, payload="hi",
    probe_target=None, context=None, kubeconfig=None, namespace=None, agent_image="img",
    take_over=False,
)  # fmt: skip


def test_a_misspelt_flag_is_an_error_not_dropped() -> None:
    # mypy --strict flags this call too (an unused ignore would fail `make check`).
    with pytest.raises(TypeError, match="keeep"):
        SessionSettings.from_flags(**FLAGS, keeep=True)  # type: ignore[call-arg]


def test_the_flags_land_in_the_chosen_backends_settings() -> None:
    lab = SessionSettings.from_flags(**FLAGS, record="t.svcrec").backend
    assert isinstance(lab, LabSettings)
    assert (lab.lab_name, lab.manifests, lab.pods, lab.keep) == ("talk", ("a.yaml",), 3, True)
    assert (lab.probes.interval, lab.probes.payload) == (0.5, "hi")
    cluster = SessionSettings.from_flags(**{**FLAGS, "cluster": True}).backend
    assert isinstance(cluster, ClusterSettings)
    assert (cluster.agent_image, cluster.scenario, cluster.probes.timeout) == (
        "img",
        "wrong-port",
        1.5,
    )

"""`svcwatch --cluster -n NS svc/NAME`: kubectl's way to name a Service, on the command line."""

from __future__ import annotations

import pytest

from svcwatch.cli import main, service_targets


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cluster", "-n", "shop", "svc/cart"], ["--cluster", "-n", "shop", "--service", "cart"]),
        (["run", "--cluster", "service/web-1"], ["run", "--cluster", "--service", "web-1"]),
        (["lab", "exec", "pod/x", "--", "svc/y"], ["lab", "exec", "pod/x", "--", "svc/y"]),
        (["cluster", "status", "svc/cart"], ["cluster", "status", "svc/cart"]),
        (["--cluster", "svc/Bad_Name"], ["--cluster", "svc/Bad_Name"]),
    ],
)
def test_kubectls_svc_name_form_names_the_service(args: list[str], expected: list[str]) -> None:
    assert service_targets(args) == expected


def test_a_service_without_cluster_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "-n", "shop", "svc/cart", "-d", "1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "svcwatch: error: svc/cart is a Service on a cluster: add --cluster "
        "(the lab has only its own demo Service)"
    )

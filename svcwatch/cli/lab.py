"""`svcwatch lab ...`: build, inspect, break and remove labs from the shell.

Every command works on one lab by name (`--name`, default `default`), found through the state
directory ($SVCWATCH_STATE_DIR, else the XDG state dir). Commands that change the EndpointSlice
write the lab's object store and then sync the rules, unless a running svcwatch holds the lab's
controller lease: then that process syncs, with its --sync-delay, as kube-proxy would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from svcwatch.cli.options import (
    lab_name_option,
    manifests_option,
    pods_option,
    proxy_mode_option,
)


def _state_root() -> Any:
    from svcwatch.locations import state_dir

    return state_dir()


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.group()
def lab() -> None:
    """Build and drive a lab: a mini k3s node made of network namespaces (needs root).

    \b
      sudo svcwatch lab up                       build (or reuse) the lab "default"
      sudo svcwatch lab up --proxy-mode nftables kube-proxy's nftables mode instead of iptables
      sudo svcwatch lab scenario wrong-port      break it: the slice points at port 12346
      sudo svcwatch lab status                   namespaces, addresses, the chain, drift
      sudo svcwatch lab exec node -- iptables-save -t nat
      sudo svcwatch lab down                     remove everything it made
    """


@lab.command()
@manifests_option
@lab_name_option
@pods_option
@proxy_mode_option
@json_option
def up(
    manifests: tuple[str, ...], lab_name: str, pods: int, proxy_mode: str | None, as_json: bool
) -> None:
    """Build the lab, or reuse it when it is already up (repairing what is broken in place).

    Builds the node and client namespaces, the cni0 bridge, the socat echo pod and PODS idle pods,
    installs kube-proxy's rules for the manifests' Service (iptables chains, or with --proxy-mode
    nftables its `table ip kube-proxy`), and prints each step. On an existing lab it checks the
    data plane (as `lab status` does) and repairs what is missing: a deleted cni0 or veth, flushed
    rules, a dead echo process. A lab from `lab up` stays when the svcwatch sessions using it
    quit. It never rebuilds a lab a running svcwatch uses.
    """
    from svcwatch.lab import LabNode, LabSpec
    from svcwatch.lab.sources import load_manifests

    found = load_manifests(manifests)
    spec = LabSpec.from_manifests(found, lab_name, idle_pods=pods)
    progress = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    node = LabNode.up(spec, found, _state_root(), progress=progress, proxy_mode=proxy_mode)
    echo = node.echo_pod
    summary = (
        f"lab {spec.name} is up: curl from `svcwatch lab exec client` to {spec.node_ip}:"
        f"{_node_port(node)} reaches {echo.name} at {echo.ip}:{echo.port} "
        f"(kube-proxy in {node.proxy.mode} mode)"
    )
    _emit(
        {
            "name": spec.name,
            "node_ip": spec.node_ip,
            "echo_pod": echo.name,
            "echo_ip": echo.ip,
            "proxy_mode": node.proxy.mode,
            "namespaces": [spec.node_ns, spec.client_ns, *(p.netns for p in node.pods)],
        },
        as_json,
        summary,
    )


def _node_port(node: Any) -> str:
    ports = [p.node_port for p in node.service().ports if p.node_port]
    return str(ports[0]) if ports else "-"


@lab.command()
@lab_name_option
@click.option("--all", "everything", is_flag=True, help="Remove every lab in the state directory.")
def down(lab_name: str, everything: bool) -> None:
    """Remove a lab: its echo processes, namespaces (and with them every link) and its state.

    A svcwatch still using the lab is told (its screen and `run` output say the lab was removed)
    and is never killed. `--all` also finds labs whose state directory was deleted."""
    from svcwatch.lab import LabNode

    if everything:
        names = LabNode.down_all(_state_root())
        click.echo(f"removed {len(names)} lab(s){': ' + ', '.join(names) if names else ''}")
    elif LabNode.down(lab_name, _state_root()):
        click.echo(f"lab {lab_name} removed")
    else:
        click.echo(f"no lab named {lab_name}: nothing to remove")


@lab.command(name="list")
@json_option
def list_(as_json: bool) -> None:
    """List the labs in the state directory, and labs whose namespaces outlived their state."""
    from svcwatch.lab import LabNode

    names = LabNode.list_names(_state_root())
    _emit(names, as_json, "\n".join(names) or "no labs")


@lab.command()
@lab_name_option
@json_option
def status(lab_name: str, as_json: bool) -> None:
    """Namespaces, interfaces, addresses, scenario, the Service's chain from the kernel, and
    problems: the data plane checked for real (bridge, veths on it, addresses, routes, rules equal
    to their rendering, the echo process listening). Exits 1 when there is a problem."""
    from svcwatch.lab import LabNode, require_lab_privileges
    from svcwatch.lab.status import describe, render_text

    require_lab_privileges()
    data = describe(LabNode.attach(lab_name, _state_root()))
    _emit(data, as_json, render_text(data))
    if data["problems"]:
        sys.exit(1)


@lab.command()
@click.argument("scenario_name", metavar="NAME")
@lab_name_option
def scenario(scenario_name: str, lab_name: str) -> None:
    """Switch the EndpointSlice to a scenario: happy, wrong-port, wrong-ip, mixed, not-ready, empty,
    pod-down or rollout-race."""
    from svcwatch.lab import LabNode, require_lab_privileges
    from svcwatch.model.scenario import get_scenario

    get_scenario(scenario_name)  # an unknown name fails before anything is touched
    require_lab_privileges()
    node = LabNode.attach(lab_name, _state_root())
    stored = node.set_scenario(scenario_name)
    _after_write(node, f"scenario {scenario_name}: slice {stored.key} rv={stored.resource_version}")


@lab.command(name="apply")
@click.option(
    "-f",
    "--filename",
    "slice_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="An EndpointSlice YAML file for the lab's Service.",
)
@lab_name_option
def apply_(slice_file: str, lab_name: str) -> None:
    """Replace the lab's EndpointSlice with the one in a file (kubectl apply -f, for the lab)."""
    from svcwatch.lab import LabNode, require_lab_privileges
    from svcwatch.lab.sources import read_slice_file

    found = read_slice_file(slice_file)  # bad YAML, IPs or ports fail before anything is touched
    require_lab_privileges()
    node = LabNode.attach(lab_name, _state_root())
    stored = node.apply_slice(found.slices[0])
    _after_write(node, f"applied {slice_file}: slice {stored.key} rv={stored.resource_version}")


def _after_write(node: Any, line: str) -> None:
    from svcwatch.lab.instances import controller_of

    holder = controller_of(node.spec.name, node.state_root)
    if holder is not None:
        click.echo(f"{line}; {_synced_by(node, holder.pid)}")
        return
    click.echo(f"{line}; {node.reconcile().text()}")


def _synced_by(node: Any, pid: int, wait: float = 3.0) -> str:
    """What the running svcwatch did with the write: say it synced only once the kernel shows
    it (no promise a broken watcher would not keep); else what to look at."""
    from svcwatch.lab import health

    deadline = time.monotonic() + wait
    while True:
        behind = [f for f in node.faults() if f.fix == health.RULES]
        if not behind:
            return f"rules synced by svcwatch (pid {pid}), which controls this lab"
        if time.monotonic() >= deadline:
            return (
                f"svcwatch (pid {pid}) controls this lab, but its rules do not show this change "
                f"after {wait:g} s (a --sync-delay, or its watcher is stuck: see its screen "
                "and `svcwatch lab status`)"
            )
        time.sleep(0.1)


@lab.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("target", metavar="node|client|pod/NAME")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@lab_name_option
def exec_(target: str, command: tuple[str, ...], lab_name: str) -> None:
    """Run a command inside a lab namespace (like `docker exec` into the k3d node) and exit with
    its status, e.g. `svcwatch lab exec node -- iptables-save -t nat`."""
    from svcwatch import netns
    from svcwatch.lab import LabNode, require_lab_privileges
    from svcwatch.lab.status import resolve_target

    require_lab_privileges()
    namespace = resolve_target(LabNode.attach(lab_name, _state_root()), target)
    sys.stdout.flush()
    netns.preexec_into(namespace)()  # this process is single-threaded here: the exec inherits it
    try:
        os.execvp(command[0], list(command))
    except FileNotFoundError:
        click.echo(f"svcwatch: error: command not found: {command[0]}", err=True)
        sys.exit(127)

"""Faults on a real cluster: scenario slices written to the one EndpointSlice svcwatch may edit.

`SliceEditor` attaches to a slice (refusing kube-system and slices svcwatch does not own, unless
--take-over), takes the happy-path baseline from it -- or from the original saved by a run that
crashed -- and then turns each scenario or edited YAML into a JSON merge patch of `endpoints` and
`ports`, the only two fields it ever changes. The original is saved to the state dir before the
first patch and written back by `restore()`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from svcwatch.cluster.api import ClusterApi, NotFound
from svcwatch.cluster.objects import (
    PATCHED_FIELDS,
    SavedSlice,
    check_editable,
    load_saved,
    refuse_protected,
    restore,
    save_original,
    saved_path,
)
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.manifest import parse_documents, parse_slice
from svcwatch.model.scenario import ScenarioContext, apply_scenario


def slice_from_body(body: dict[str, Any]) -> EndpointSlice:
    meta = body.get("metadata") or {}
    return parse_slice(body, f"EndpointSlice {meta.get('namespace')}/{meta.get('name')}")


def unused_address(baseline: EndpointSlice, taken: Iterable[str]) -> str | None:
    """The first address after the baseline's first endpoint that no known pod has."""
    first = next((e.address for e in baseline.endpoints if e.address), None)
    if first is None:
        return None
    used = set(taken) | {a for e in baseline.endpoints for a in e.addresses}
    candidate = ipaddress.ip_address(first)
    for _ in range(256):
        candidate += 1
        if str(candidate) not in used:
            return str(candidate)
    return None


class SliceEditor:
    """Patches one EndpointSlice on behalf of the dashboard, and puts it back."""

    def __init__(
        self, api: ClusterApi, context: str, namespace: str, name: str, *, take_over: bool = False
    ) -> None:
        refuse_protected(namespace)
        self.api = api
        self.context = context
        self.namespace = namespace
        self.name = name
        self.take_over = take_over
        self.adopted = False
        self.saved: SavedSlice | None = None
        self.baseline: EndpointSlice | None = None
        self.scenario: str | None = None

    def attach(self) -> EndpointSlice:
        """Read and check the slice; a crashed run's saved original becomes the baseline."""
        try:
            body = self.api.read("EndpointSlice", self.namespace, self.name)
        except NotFound:
            raise SetupError(
                f"EndpointSlice {self.namespace}/{self.name} does not exist: run `svcwatch "
                "cluster up` "
                "(or `kubectl apply -f manifests/`)"
            ) from None
        self.adopted = check_editable(body, take_over=self.take_over)
        path = saved_path(self.context, self.namespace, self.name)
        if path.exists():  # a previous run crashed mid-fault: its saved copy is the happy path
            self.saved = load_saved(path)
            body = {**body, **self.saved.original}
        self.baseline = slice_from_body(body)
        return self.baseline

    def scenario_slice(self, name: str, taken_addresses: Iterable[str] = ()) -> EndpointSlice:
        baseline = self._require_baseline()
        context = ScenarioContext(
            baseline=baseline, unused_ip=unused_address(baseline, taken_addresses)
        )
        return apply_scenario(name, context)

    def apply_scenario(self, name: str, taken_addresses: Iterable[str] = ()) -> dict[str, Any]:
        """Patch the slice to scenario `name`; the server's resulting object."""
        result = self.write(self.scenario_slice(name, taken_addresses))
        self.scenario = name
        return result

    def apply_text(self, text: str) -> dict[str, Any]:
        """Apply an edited slice (YAML): only its endpoints and ports; InputError when invalid."""
        docs = parse_documents(text, "edited slice")
        if len(docs) != 1 or not isinstance(docs[0], EndpointSlice):
            raise InputError("expected exactly one EndpointSlice", source="edited slice")
        edited = docs[0]
        if (edited.namespace, edited.name) != (self.namespace, self.name):
            raise InputError(
                f"svcwatch edits {self.namespace}/{self.name} only, not "
                f"{edited.namespace}/{edited.name}",
                source="edited slice",
                field="metadata",
            )
        result = self.write(edited)
        self.scenario = None
        return result

    def write(self, wanted: EndpointSlice) -> dict[str, Any]:
        """Save the original (first time only), then merge-patch endpoints and ports."""
        current = self.api.read("EndpointSlice", self.namespace, self.name)
        check_editable(current, take_over=self.take_over)  # the label may have changed meanwhile
        if self.saved is None:
            self.saved = save_original(self.context, current, adopted=self.adopted)
        manifest = wanted.to_manifest()
        patch = {field: manifest[field] for field in PATCHED_FIELDS}
        return self.api.merge_patch("EndpointSlice", self.namespace, self.name, patch)

    def restore(self) -> bool:
        """Put the original back (if anything was changed); True when a patch was sent."""
        if self.saved is None:
            return False
        done = restore(self.api, self.saved)
        self.saved = None
        self.scenario = None
        return done

    def _require_baseline(self) -> EndpointSlice:
        if self.baseline is None:
            raise RuntimeError("SliceEditor.attach() first")
        return self.baseline

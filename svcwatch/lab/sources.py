"""The manifests a lab is built from: `-f` files and directories, else the bundled manifests/.

A directory may hold more than the demo (an agent pod template, RBAC); only the kinds the lab
understands (Deployment, Service, EndpointSlice) are read, each validated by the model's parser.
"""

from __future__ import annotations

from collections.abc import Iterable

import yaml

from svcwatch.locations import manifest_files
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import ManifestSet, collect, parse_documents
from svcwatch.textfile import read_text_file

LAB_KINDS = ("Deployment", "Service", "EndpointSlice")


def load_manifests(paths: Iterable[str] | None = None) -> ManifestSet:
    """Parse the lab's objects from the given files; InputError naming file and field when bad."""
    objects = []
    for path in manifest_files(paths):
        text = read_text_file(path, field="-f")
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            parse_documents(text, str(path))  # raises the model's one-line YAML error (file, line)
            raise
        wanted = [d for d in docs if not isinstance(d, dict) or d.get("kind") in LAB_KINDS]
        if wanted:
            objects.extend(parse_documents(yaml.safe_dump_all(wanted), str(path)))
    return collect(objects)


def read_slice_file(path: str) -> ManifestSet:
    """An EndpointSlice file for `lab apply`: exactly the user's file, every kind checked."""
    found = collect(parse_documents(read_text_file(path, field="-f"), path))
    if len(found.slices) != 1:
        raise InputError(
            f"expected exactly one EndpointSlice, found {len(found.slices)}", source=path
        )
    return found

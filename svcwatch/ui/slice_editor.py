"""`e`: edit the EndpointSlice in $EDITOR, the way `kubectl edit` does.

The editor is another program, and it can fail: it exits non-zero (`:cq`), does not exist
(`EDITOR=nano` where there is no nano), is `false`, or the file comes back in another encoding.
Each is one line on screen (EditFailed), nothing is applied, and the dashboard keeps running.
An edit that is not a valid EndpointSlice reopens the editor with the error as a comment on top,
as kubectl edit does; saving it unchanged again gives up and shows the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import collect, dump_slice, parse_documents

if TYPE_CHECKING:
    from textual.app import App

Editor = Callable[[str], "str | None"]
ERROR_PREFIX = "# svcwatch: "


class EditFailed(Exception):
    """The edit could not be made or was given up: the one line to show, nothing applied."""


def edited_slice(app: App[None], slice_: EndpointSlice, editor: Editor) -> str | None:
    """`slice_` edited as YAML; None, with one line on screen, when cancelled or failed."""
    try:
        edited = edit_slice_text(dump_slice(slice_), editor)
    except EditFailed as exc:  # one line; nothing applied; the dashboard goes on
        app.notify(str(exc), title="Edit not applied", severity="error", timeout=10)
        return None
    if edited is None:
        app.notify("Edit cancelled, no changes made.", title="Edit")
    return edited


def external_editor(text: str) -> str | None:
    """`text` edited in $VISUAL/$EDITOR; None if saved unchanged or not saved. EditFailed (one
    line) when the editor fails, is missing, or writes something that is not UTF-8."""
    import click  # the CLI dependency, imported here only for its $EDITOR handling

    try:
        return click.edit(text, extension=".yaml", require_save=True)
    except click.ClickException as exc:  # non-zero exit, or no such editor (the shell's 127)
        raise EditFailed(f"the editor failed ({exc.format_message()}): nothing applied") from None
    except UnicodeDecodeError:
        raise EditFailed("the edited file is not UTF-8 text: nothing applied") from None
    except OSError as exc:
        raise EditFailed(f"could not edit: {exc.strerror or exc}: nothing applied") from None


def edit_slice_text(original: str, editor: Editor) -> str | None:
    """The user's edit of `original`, valid as one EndpointSlice; None when they changed
    nothing. Invalid: the editor reopens with the error on top; the same invalid text saved
    again raises EditFailed with that error."""
    shown, rejected = original, None
    while True:
        edited = editor(shown)
        if edited is None:
            return None
        body = _without_error_comment(edited)
        if body.strip() == original.strip():
            return None
        error = slice_error(body)
        if error is None:
            return body
        if body == rejected:
            raise EditFailed(error)
        rejected = body
        shown = "".join(f"{ERROR_PREFIX}{line}\n" for line in _error_lines(error)) + body


def slice_error(text: str) -> str | None:
    """Why `text` is not exactly one valid EndpointSlice, or None."""
    try:
        found = collect(parse_documents(text, "edited EndpointSlice"))
    except InputError as exc:
        return str(exc)
    if len(found.slices) != 1 or found.services or found.deployments:
        return "edited EndpointSlice: the edited text must be exactly one EndpointSlice"
    return None


def _error_lines(error: str) -> list[str]:
    return [
        "the edit was not applied:",
        *error.splitlines(),
        "fix it and save, or save it unchanged to give up",
    ]


def _without_error_comment(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith(ERROR_PREFIX):
        lines.pop(0)
    return "".join(lines)

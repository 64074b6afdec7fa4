"""The kit's one way to write a file: whole or not at all.

Every file goes first to a temporary file beside its target (same folder, so same filesystem and the rename
is atomic), is flushed to disk, and then renamed over the target. A reader never sees half a file, and a run
that fails or is killed mid-write leaves the earlier file as it was: results are never overwritten by a failed
run. Standard library only, so scripts that run before the virtualenv exists can use it.
"""

import contextlib
import json
import os
import secrets

TEMP_PREFIX = ".tmp-"


def fsync(path):
    """Puts a file's content, or a folder's entries, on disk: a new or renamed file survives a power loss only
    once both its content and its folder's entry are there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path):
    """An empty temporary file beside `path`; it keeps the target's extension because writers such as
    matplotlib's savefig pick the format from it. Created with the mode open() would give (the umask applies),
    not mkstemp's 0600, so a rewritten doc keeps the mode of any other file in the checkout."""
    folder, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, f"{TEMP_PREFIX}{name}-{secrets.token_hex(4)}{os.path.splitext(name)[1]}")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return temp


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path to write the new content to; on a clean exit it replaces `path`, on any error
    (Ctrl-C included) it is removed and `path` keeps its old content. For writers that want a path of their
    own (a plot's savefig); write_text, write_bytes and write_json cover the rest."""
    temp = _create_temp(path)
    try:
        yield temp
        fsync(temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync(os.path.dirname(os.path.abspath(path)))


def write_bytes(path, data):
    with replacing(path) as temp, open(temp, "wb") as handle:
        handle.write(data)
    return path


def write_text(path, text):
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, doc, indent=2):
    """The document as indented JSON ending in a newline, the form of every JSON file the kit writes."""
    return write_text(path, json.dumps(doc, indent=indent) + "\n")

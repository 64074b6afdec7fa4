"""The run's storage folder, local or remote alike: a folder every node sees locally, or an S3-compatible URI
(the in-cluster MinIO on Kubernetes). pyarrow's filesystems are what Ray Train itself uses for RunConfig
storage_path, so the kit reads and writes its own small files there the same way."""

import posixpath

from training.core import atomic_files


def _fs(uri):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def join(base, *parts):
    """Joins path parts onto a folder or a URI, keeping a URI's query string (endpoint, scheme) at the end."""
    path, sep, query = base.partition("?")
    return posixpath.join(path, *parts) + (sep + query if sep else "")


def make_dirs(uri):
    fs, path = _fs(uri)
    fs.create_dir(path, recursive=True)


def exists(uri):
    import pyarrow.fs

    fs, path = _fs(uri)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def write_text(uri, text):
    """A local path goes through the kit's atomic writer; an object store publishes an upload only once it is
    complete, so a remote file is already whole or absent and is written as Ray Train writes its own."""
    import pyarrow.fs

    fs, path = _fs(uri)
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        atomic_files.write_text(path, text)
        return
    with fs.open_output_stream(path) as stream:
        stream.write(text.encode())


def read_text(uri):
    """The file's text, or None when there is no such file."""
    if not exists(uri):
        return None
    fs, path = _fs(uri)
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()

"""The output file: one JSON line per image, written and flushed as soon as the image is
scored, so that a run stopped at any moment (Ctrl-C, a killed process, a lost machine)
loses at most the batch in flight.

Rerunning with the same file resumes: the rows already in it are kept and their images are
not evaluated again. A last line without its newline is a row cut off mid-write by the
stop; it is dropped (the file is truncated back to the last complete row) and that image
is evaluated again. Any other line that is not a row of this model is an error: the file is
not ours, or it was edited, and appending to it would mix results.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import OutputFileError

ROW_FIELDS = ("path", "label", "model")


class ResultsFile:
    """Append-only JSON-lines results of model ``model`` at ``path``."""

    def __init__(self, path, model: str):
        self.path = Path(path)
        self.model = model
        self._file = None

    def read_done(self) -> dict[str, dict]:
        """The rows already in the file by path (empty if there is no file), after dropping
        a cut-off last line."""
        if self.path.is_dir():
            raise OutputFileError(f"output {str(self.path)!r} is a folder; give a file name "
                                  f"such as results.jsonl")
        if not self.path.parent.is_dir():
            raise OutputFileError(f"the folder of output {str(self.path)!r} does not exist; "
                                  f"create it or choose another --output")
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):      # the stop cut the last row: evaluate that image again
            with open(self.path, "r+b") as f:
                f.truncate(complete)
        done = {}
        for number, line in enumerate(data[:complete].splitlines(), start=1):
            if not line.strip():
                continue
            row = _parse(line)
            if row is None:
                raise OutputFileError(
                    f"line {number} of {str(self.path)!r} is not a tinyinfer eval row; this file "
                    f"was not written by `tinyinfer eval` or was edited. Choose another "
                    f"--output, or remove the line to resume")
            if row["model"] != self.model:
                raise OutputFileError(
                    f"{str(self.path)!r} holds results of {row['model']}, not {self.model}; "
                    f"choose another --output to evaluate {self.model}")
            done.setdefault(row["path"], row)
        return done

    def append(self, rows: list[dict]) -> None:
        """Write ``rows`` and flush them to the operating system (which keeps them if this
        process is killed; fsync per batch would add a disk round trip for power loss)."""
        if self._file is None:
            try:
                self._file = open(self.path, "a", encoding="utf-8")
            except OSError as e:
                raise OutputFileError(f"cannot write output {str(self.path)!r} "
                                      f"({e.strerror}); choose another --output") from None
        self._file.write("".join(json.dumps(r) + "\n" for r in rows))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse(line: bytes) -> dict | None:
    try:
        row = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or not all(k in row for k in ROW_FIELDS):
        return None
    return row

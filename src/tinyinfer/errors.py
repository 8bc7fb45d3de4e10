"""Every error tinyinfer raises on bad input is a TinyInferError with a message that says
what was wrong and what to do about it. Subclasses also derive from the builtin error a
caller would naturally catch (ValueError, FileNotFoundError, KeyError)."""


class TinyInferError(Exception):
    """Base class of all tinyinfer errors."""


class InputError(TinyInferError, ValueError):
    """An array, shape, dtype or argument that a kernel or model cannot accept."""


class ImageError(TinyInferError, ValueError):
    """An image file or object that cannot be read or converted."""


class CheckpointError(TinyInferError, ValueError):
    """A checkpoint file that is malformed, truncated, unsafe or of an unknown format."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist."""


class WeightsMismatchError(TinyInferError, KeyError):
    """A checkpoint whose keys or shapes do not match the network."""

    def __str__(self):  # KeyError would repr() the message; show it as written
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(TinyInferError, KeyError):
    """An unknown model name."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(TinyInferError, FileNotFoundError):
    """Pretrained weights that are not on this machine and cannot be downloaded."""


class DatasetError(InputError):
    """An evaluation dataset (folder of class folders, or CSV of path,label rows) that cannot
    be read as labelled images."""


class OutputFileError(InputError):
    """An evaluation output file that cannot be written or holds something other than this
    model's rows."""


class SchedulerError(InputError):
    """A Dask --scheduler that is malformed or cannot be reached."""

"""Errors that carry a message a user can act on; the CLI prints them without a traceback."""


class AutoInspectError(Exception):
    """Base of every error raised on purpose by AutoInspect."""


class ConfigError(AutoInspectError):
    """Settings or a config file are invalid."""


class DataFormatError(AutoInspectError):
    """An annotation export or dataset folder cannot be read as the format it claims to be."""


class ImageDecodeError(AutoInspectError):
    """An image file cannot be decoded; the message says why (truncated, not an image, too large...)."""


class ImageTooLargeError(ImageDecodeError):
    """An image's header declares more pixels than allowed (a decompression bomb, or a photo far too large)."""


class DatasetVersionError(AutoInspectError):
    """A dataset version is unknown, or a change would break a rule such as the fixed test split."""

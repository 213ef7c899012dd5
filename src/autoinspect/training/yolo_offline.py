"""Prepares Ultralytics to run offline, quietly, and without writing outside folders that AutoInspect owns.

Out of the box Ultralytics reaches for the network and the current directory in many places: it checks whether it
is online and sends usage events, pip-installs missing requirements, downloads ``Arial.ttf`` before its first
plot, downloads ``yolo26n.pt`` for the AMP check on CUDA, starts its own MLflow run (``mlflow.autolog`` into
``./mlruns``), keeps a settings file under ``~/.config`` and logs to stdout through its own handler. Most of it is
decided by environment variables read once, when ``ultralytics`` is first imported, so :func:`prepare_ultralytics`
must run before that import: the backend imports Ultralytics only inside functions, after calling it.

Example:
    >>> config_dir = prepare_ultralytics(tmp / "ultralytics")  # doctest: +SKIP
    >>> from ultralytics import YOLO  # now offline, with fonts and settings under config_dir
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from PIL import Image

logger = logging.getLogger(__name__)

ULTRALYTICS_ENV: Mapping[str, str] = MappingProxyType(
    {
        "YOLO_OFFLINE": "1",  # no DNS probe; events, update checks and platform sync see "offline"
        "YOLO_AUTOINSTALL": "0",  # never pip-install an export requirement, fail instead
        "YOLO_VERBOSE": "False",  # no progress bars on stdout; its logger is routed to ours below
    }
)
"""Read by Ultralytics once, at import."""
INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
"""Ultralytics' own tracker callbacks, all switched off: AutoInspect tracks runs itself, through callbacks."""
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
"""Fonts Ultralytics downloads before plotting unless it finds them in its config folder."""
LOG_LEVEL = logging.WARNING
"""Ultralytics' records at this level and above reach the application's handlers; its per-epoch tables don't."""
_ULTRALYTICS_HANDLER = "ultralytics.utils.set_logging"
"""Name of the stdout handler that Ultralytics attaches to its logger at import."""


@contextmanager
def pil_untouched() -> Iterator[None]:
    """Undo, when the block ends, what Ultralytics changes in Pillow for the whole process.

    At import it wraps ``Image.open`` (a file Pillow cannot identify then sets off an attempt to install a HEIF
    plugin, which fails offline with ``ModuleNotFoundError`` instead of Pillow's own error), and its dataset
    checks remove the decompression-bomb limit (``Image.MAX_IMAGE_PIXELS = None``). A process that serves and
    trains (the local stack runs continuous training beside the API) would then answer a non-image with a 500 and
    decode bombs; every entry into Ultralytics goes through this block.
    """
    limit = Image.MAX_IMAGE_PIXELS
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit
        patches = sys.modules.get("ultralytics.utils.patches")
        original = getattr(patches, "_image_open", None)
        if original is not None:
            Image.open = original  # Pillow's own, as Ultralytics saved it before wrapping it


def prepare_ultralytics(config_dir: Path) -> Path:
    """Configure Ultralytics (environment, settings, fonts, logging) and return the config folder it really uses.

    That folder is ``<config_dir>/Ultralytics`` when this is the first import of Ultralytics in the process. After
    that, Ultralytics keeps the folder of its first import whatever ``config_dir`` says, so settings and fonts are
    (re)written there instead, even if it was deleted in between.
    """
    if "ultralytics" not in sys.modules:
        os.environ.update(ULTRALYTICS_ENV)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir.resolve())
    import ultralytics
    from ultralytics.utils import AUTOINSTALL, USER_CONFIG_DIR

    if AUTOINSTALL:
        logger.warning("ultralytics was imported before AutoInspect configured it: it may still try the network")
    used = Path(USER_CONFIG_DIR)
    used.mkdir(parents=True, exist_ok=True)
    _install_fonts(used)
    ultralytics.settings.update(
        sync=False,
        vscode_msg=False,
        openvino_msg=False,
        runs_dir=str(used / "runs"),
        weights_dir=str(used / "weights"),
        datasets_dir=str(used / "datasets"),
        **dict.fromkeys(INTEGRATIONS, False),
    )
    _route_logging()
    return used


def _install_fonts(folder: Path) -> None:
    """Put matplotlib's DejaVu Sans where Ultralytics looks for Arial, so its font check never downloads."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in FONT_NAMES:
        target = folder / name
        if not target.is_file():
            shutil.copyfile(source, target)


def _route_logging() -> None:
    """Send Ultralytics' records through the standard logging tree instead of its own stdout handler.

    Entry points configure logging (a CLI may print JSON on stdout); a library that prints there breaks them.
    """
    ultralytics_logger = logging.getLogger("ultralytics")
    for handler in [h for h in ultralytics_logger.handlers if h.get_name() == _ULTRALYTICS_HANDLER]:
        ultralytics_logger.removeHandler(handler)
    ultralytics_logger.propagate = True
    ultralytics_logger.setLevel(LOG_LEVEL)

"""The operator UI (Streamlit): inspect photos, work the review queue, watch monitoring, manage models and data.

It talks to the API over HTTP (:mod:`autoinspect.ui.client`) like any intake app, and reads what the pipelines
leave in the home folder (monitoring summaries, dataset versions, reports, stored photos). Run it with
``autoinspect ui``; ``app.py`` is the Streamlit script.
"""

import sys
from pathlib import Path

APP_PATH = Path(__file__).with_name("app.py")
"""The Streamlit script, as ``streamlit run`` needs it: a file path, not a module."""


def streamlit_command(port: int, max_upload_bytes: int) -> list[str]:
    """The command that serves the UI on loopback ``port`` (headless, no usage statistics sent), with its upload
    box sized to what the API accepts (``serving.max_upload_bytes``, whole megabytes, at least one) and without
    Streamlit's developer toolbar ("Deploy")."""
    return [
        *(sys.executable, "-m", "streamlit", "run", str(APP_PATH)),
        *("--server.address", "127.0.0.1", "--server.port", str(port)),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
        *("--server.maxUploadSize", str(max(1, max_upload_bytes // 1_000_000))),
        *("--client.toolbarMode", "viewer"),
    ]

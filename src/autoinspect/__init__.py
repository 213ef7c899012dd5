"""AutoInspect: finds scratches and dents in vehicle photos and runs the ML loop around the detector.

Importing the package has no side effects: no folders are made, no logging is configured and no model is
loaded. Entry points (the CLI, the API factory) do that explicitly.
"""

__version__ = "0.1.0"

"""One module per page of the operator UI; each exposes ``render(settings)``.

Not named ``pages``: Streamlit turns a ``pages/`` folder beside the script into its own multipage navigation.
"""

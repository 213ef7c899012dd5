"""The inspection report as a PDF: the same HTML report, laid out on A4 pages by WeasyPrint.

Why WeasyPrint: it lays out the HTML and CSS of the report itself, so the HTML and the PDF come from one
template and cannot drift apart; it is Python over Pango (no browser in the API image), actively maintained, and
installs from PyPI (the image adds Debian's Pango). It is imported on the first PDF only, so the API starts no
slower for it.

The report embeds its photos as ``data:`` URLs; the fetcher allows that protocol alone, so a report can never
make the API fetch an address or read a local file, whatever text a client put into it.
"""

from __future__ import annotations

PDF_MEDIA_TYPE = "application/pdf"
ALLOWED_PROTOCOLS = ("data",)


def render_pdf(html: str) -> bytes:
    """The report's HTML (:func:`~autoinspect.serving.inspection_report.render_report`) as PDF bytes."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=ALLOWED_PROTOCOLS)
    pdf: bytes = HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf

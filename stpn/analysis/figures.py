"""Matplotlib figures as PNG bytes (headless), for files and for the demo's HTML report."""
from __future__ import annotations

import base64
import io


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG (then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def html_img(png: bytes, width: int) -> str:
    """An ``<img>`` with the PNG embedded, ``width`` CSS pixels wide."""
    return f'<img style="width:{width}px" src="data:image/png;base64,{base64.b64encode(png).decode()}">'

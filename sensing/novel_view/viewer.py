"""A single self-contained HTML page that shows a 3D photo (.glb) with parallax.

The page embeds the glTF binary as base64 and carries its own compact WebGL2 renderer (package
data ``viewer_template.html``), so it opens from ``file://`` with no network and no CORS issues.
The camera orbits the scene's pivot (the median depth stored by
:func:`sensing.novel_view.mesh.glb_from_mesh`), looking at it, by at most ``max_shift`` baselines
sideways and up or down, following the pointer (mouse, pen, touch: its offset from the page centre)
and, on phones, the device orientation (tilt from the pose of the first reading).
"""

import base64
import html
import json
import os
from importlib import resources
from pathlib import Path

from sensing.errors import InputError
from sensing.fileio import write_bytes_atomic

_TEMPLATE = "viewer_template.html"
_GLB_MAGIC = b"glTF"


def viewer_html(
    glb: bytes,
    *,
    title: str = "glassdepth 3D photo",
    max_shift: float = 1.0,
    tilt_range_deg: float = 20.0,
    zoom: float = 1.05,
) -> str:
    """Return the viewer page for the glTF binary ``glb`` as text.

    Parameters
    ----------
    glb : the bytes of a .glb written by :func:`sensing.novel_view.mesh.glb_from_mesh`
    title : the page title (escaped)
    max_shift : largest camera offset, reached with the pointer at the page's edge, in units of
        the disparity's baseline (the mesh's ``disparity_baseline``): 1 moves a point by its
        disparity, as far as the layered depth image's ``max_shift`` should reach
    tilt_range_deg : phone tilt (degrees from where it was held first) that reaches the largest angle
    zoom : field-of-view reduction so that the image border stays out of view while orbiting
    """
    if not glb.startswith(_GLB_MAGIC):
        raise InputError("not a glTF binary (.glb): the data does not start with 'glTF'")
    if not (max_shift > 0 and tilt_range_deg > 0 and zoom >= 1):
        raise InputError(
            f"need max_shift > 0, tilt_range_deg > 0, zoom >= 1; got {max_shift}, {tilt_range_deg}, {zoom}"
        )
    config = {"max_shift": max_shift, "tilt_range_deg": tilt_range_deg, "zoom": zoom, "smoothing": 0.2}
    # "<" escaped so that no "</script>" can end the JSON block early
    config_text = json.dumps(config).replace("<", "\\u003c")
    template = resources.files("sensing.novel_view").joinpath(_TEMPLATE).read_text(encoding="utf-8")
    return (
        template.replace("__GLASSDEPTH_TITLE__", html.escape(title))
        .replace("__GLASSDEPTH_CONFIG__", config_text)
        .replace("__GLASSDEPTH_GLB_BASE64__", base64.b64encode(glb).decode("ascii"))
    )


def write_viewer(
    glb: bytes | str | os.PathLike,
    html_path: str | os.PathLike,
    *,
    title: str = "glassdepth 3D photo",
    max_shift: float = 1.0,
) -> Path:
    """Write the self-contained viewer page for ``glb`` (bytes, or the path of a .glb) atomically."""
    if not isinstance(glb, bytes):
        glb_path = Path(glb)
        if not glb_path.is_file():
            raise InputError(f"glTF binary not found: {glb_path}")
        glb = glb_path.read_bytes()
    page = viewer_html(glb, title=title, max_shift=max_shift)
    return write_bytes_atomic(html_path, page.encode("utf-8"))


__all__ = ["viewer_html", "write_viewer"]

